"""Routes of ``chat.*``, ``rooms.get/info/media/mediaConfirm/upload``, ``subscriptions.*`` and
``integrations.*``."""

from django.urls import path

from rooms.api import integrations as integ
from rooms.api import media, rooms_more
from rooms.api import messages as m
from rooms.api import subscriptions as s

urlpatterns = [
    path("chat.postMessage", m.PostMessageView.as_view()),
    path("chat.sendMessage", m.SendMessageView.as_view()),
    path("chat.update", m.UpdateView.as_view()),
    path("chat.delete", m.DeleteView.as_view()),
    path("chat.react", m.ReactView.as_view()),
    path("chat.getMessage", m.GetMessageView.as_view()),
    path("chat.getMessageEditHistory", m.EditHistoryView.as_view()),
    path("chat.getThreadMessages", m.ThreadMessagesView.as_view()),
    path("chat.getThreadsList", m.ThreadsListView.as_view()),
    path("chat.syncThreadsList", m.SyncThreadsListView.as_view()),
    path("chat.syncThreadMessages", m.SyncThreadMessagesView.as_view()),
    path("chat.followMessage", m.FollowView.as_view()),
    path("chat.unfollowMessage", m.UnfollowView.as_view()),
    path("chat.getMessageReadReceipts", m.ReadReceiptsView.as_view()),
    path("chat.search", m.SearchView.as_view()),
    path("chat.pinMessage", m.PinView.as_view()),
    path("chat.unPinMessage", m.UnpinView.as_view()),
    path("chat.getPinnedMessages", m.PinnedMessagesView.as_view()),
    path("chat.starMessage", m.StarView.as_view(starred=True)),
    path("chat.unStarMessage", m.StarView.as_view(starred=False)),
    path("chat.getStarredMessages", m.StarredMessagesView.as_view()),
    path("chat.reportMessage", m.ReportMessageView.as_view()),
    path("chat.ignoreUser", m.IgnoreUserView.as_view()),
    path("chat.getMentionedMessages", m.MentionedMessagesView.as_view()),
    path("chat.getDeletedMessages", m.DeletedMessagesView.as_view()),
    path("chat.syncMessages", m.SyncMessagesView.as_view()),
    path("rooms.get", s.RoomsGetView.as_view()),
    path("rooms.info", s.RoomsInfoView.as_view()),
    path("rooms.favorite", s.FavoriteView.as_view()),
    path("rooms.isMember", rooms_more.IsMemberView.as_view()),
    path("rooms.images", rooms_more.ImagesView.as_view()),
    path("rooms.open", rooms_more.OpenView.as_view()),
    path("rooms.hide", rooms_more.HideView.as_view()),
    path("rooms.nameExists", s.NameExistsView.as_view()),
    path("rooms.invitations", s.InvitationsView.as_view()),
    path("rooms.delete", s.RoomsDeleteView.as_view()),
    path("rooms.autocomplete.channelAndPrivate", s.RoomsAutocompleteView.as_view()),
    path("rooms.media/<str:rid>", media.RoomsMediaView.as_view()),
    path("rooms.mediaConfirm/<str:rid>/<str:file_id>", media.RoomsMediaConfirmView.as_view()),
    path("rooms.upload/<str:rid>", media.RoomsUploadView.as_view()),
    path("subscriptions.get", s.SubscriptionsGetView.as_view()),
    path("subscriptions.getOne", s.SubscriptionsGetOneView.as_view()),
    path("subscriptions.read", s.SubscriptionsReadView.as_view()),
    path("subscriptions.unread", s.SubscriptionsUnreadView.as_view()),
    path("integrations.create", integ.CreateView.as_view()),
    path("integrations.list", integ.ListView.as_view()),
    path("integrations.get", integ.GetView.as_view()),
    path("integrations.update", integ.UpdateView.as_view()),
    path("integrations.remove", integ.RemoveView.as_view()),
    path("integrations.history", integ.HistoryView.as_view()),
]
