from django.urls import path

from accounts.api import users_more as more
from accounts.api import views as v

urlpatterns = [
    path("login", v.LoginView.as_view()),
    path("logout", v.LogoutView.as_view()),
    path("me", v.MeView.as_view()),
    path("info", v.InfoView.as_view()),
    path("users.create", v.UsersCreateView.as_view()),
    path("users.register", v.UsersRegisterView.as_view()),
    path("users.info", v.UsersInfoView.as_view()),
    path("users.list", v.UsersListView.as_view()),
    path("users.setAvatar", v.UsersSetAvatarView.as_view()),
    path("users.resetAvatar", v.UsersResetAvatarView.as_view()),
    path("users.getAvatar", v.UsersGetAvatarView.as_view()),
    path("users.update", v.UsersUpdateView.as_view()),
    path("users.updateOwnBasicInfo", v.UsersUpdateOwnView.as_view()),
    path("users.setStatus", v.UsersSetStatusView.as_view()),
    path("users.getPresence", v.UsersGetPresenceView.as_view()),
    path("users.checkUsernameAvailability", more.CheckUsernameAvailabilityView.as_view()),
    path("users.getPreferences", more.GetPreferencesView.as_view()),
    path("users.setPreferences", more.SetPreferencesView.as_view()),
    path("users.presence", more.PresenceView.as_view()),
    path("users.getStatus", more.GetStatusView.as_view()),
    path("users.listByStatus", more.ListByStatusView.as_view()),
    path("users.logoutOtherClients", more.LogoutOtherClientsView.as_view()),
    path("users.removeOtherTokens", more.RemoveOtherTokensView.as_view()),
    path("users.generatePersonalAccessToken", more.GeneratePersonalAccessTokenView.as_view()),
    path("users.regeneratePersonalAccessToken", more.RegeneratePersonalAccessTokenView.as_view()),
    path("users.getPersonalAccessTokens", more.GetPersonalAccessTokensView.as_view()),
    path("users.removePersonalAccessToken", more.RemovePersonalAccessTokenView.as_view()),
    path("permissions.listAll", v.PermissionsListAllView.as_view()),
    path("permissions.update", v.PermissionsUpdateView.as_view()),
    path("roles.list", v.RolesListView.as_view()),
    path("roles.addUserToRole", v.RolesAddUserView.as_view()),
    path("roles.removeUserFromRole", v.RolesRemoveUserView.as_view()),
]
