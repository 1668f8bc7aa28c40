"""More of Rocket.Chat's ``users.*``: username availability, preferences, presence and status,
listing by status, ending other sessions, and personal access tokens (shapes and error types as
Rocket.Chat's ``users.ts``)."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Q
from django.utils import timezone
from rest_framework.request import Request
from rest_framework.response import Response

from accounts import actions, server_settings
from accounts.api.views import find_user
from accounts.models import AuthToken, User
from accounts.permissions import has_permission
from accounts.preferences import effective
from accounts.serialization import user_json
from chat.api import ApiView, bool_param, list_param, ok, pagination, param, str_param
from chat.api_errors import PERMISSION_REQUIRED, ApiError, NotAllowed
from rooms.actions.memberships import do_delete_user
from rooms.api.room_common import date_param
from rooms.serialization import iso

STATUSES = ("online", "away", "busy", "offline")


class CheckUsernameAvailabilityView(ApiView):
    """``users.checkUsernameAvailability?username=``: ``result`` true when free (or one's own)."""

    def get(self, request: Request) -> Response:
        username = str_param(request, "username", max_length=300)
        if not username:
            raise ApiError("must have required property 'username' [invalid-params]", "invalid-params")
        if username == request.user.username:
            return ok(result=True)
        try:
            actions.check_username(username)
        except ApiError:
            return ok(result=False)
        return ok(result=not User.objects.filter(username__iexact=username).exists())


class GetPreferencesView(ApiView):
    """``users.getPreferences``: every preference (the defaults where none was set)."""

    def get(self, request: Request) -> Response:
        return ok(preferences=effective(request.user.preferences or {}))


class SetPreferencesView(ApiView):
    """``users.setPreferences {userId?, data}``: another user's need ``edit-other-user-info``."""

    def post(self, request: Request) -> Response:
        user_id = str_param(request, "userId") or request.user.id
        if user_id != request.user.id and not has_permission(request.user, "edit-other-user-info"):
            raise NotAllowed("Editing user is not allowed", "error-action-not-allowed")
        user = User.objects.filter(id=user_id, is_remote=False).first()
        if user is None:
            raise ApiError("User not found.", "error-invalid-user")
        user = actions.do_set_preferences(user, param(request, "data"))
        return ok(user={"_id": user.id, "settings": {"preferences": effective(user.preferences)}})


def _presence_json(user: User) -> dict[str, object]:
    return {"_id": user.id, "username": user.username, "name": user.display_name, "status": user.status,
            "utcOffset": user.utc_offset, "statusText": user.status_text, "avatarETag": user.avatar_etag or None}


class PresenceView(ApiView):
    """``users.presence?from=&ids=``: who is not offline (``full``: the whole list rather than
    the changes since ``from``, which must be within ten minutes)."""

    def get(self, request: Request) -> Response:
        qs = User.objects.filter(is_active=True).exclude(status="offline")
        ids = list_param(request, "ids")
        if ids:
            names = [i for raw in ids for i in str(raw).split(",") if i]
            return ok(users=[_presence_json(u) for u in qs.filter(id__in=names[:500])], full=False)
        since = date_param(request, "from")
        if since is not None and timezone.now() - since < timedelta(minutes=10):
            changed = User.objects.filter(updated_at__gte=since).exclude(id=request.user.id)
            return ok(users=[_presence_json(u) for u in changed[:1000]], full=False)
        return ok(users=[_presence_json(u) for u in qs.order_by("username")[:5000]], full=True)


class GetStatusView(ApiView):
    """``users.getStatus?userId=|username=`` (default: oneself)."""

    def get(self, request: Request) -> Response:
        has_target = str_param(request, "userId") or str_param(request, "username") or str_param(request, "user")
        user = find_user(request) if has_target else request.user
        return ok(_id=user.id, message=user.status_text, connectionStatus=user.status, status=user.status)


class ListByStatusView(ApiView):
    """``users.listByStatus?status=&hasLoggedIn=&type=&roles[]=&searchTerm=``, paged (``view-d-room``)."""

    def get(self, request: Request) -> Response:
        if not has_permission(request.user, "view-d-room"):
            raise NotAllowed("User does not have the permissions required for this action [error-unauthorized]",
                             "error-unauthorized")
        offset, count = pagination(request)
        qs = User.objects.filter(is_remote=False).prefetch_related("roles")
        status = str_param(request, "status")
        if status is not None:
            if status not in STATUSES and status not in ("active", "deactivated"):
                raise ApiError(f'"status" must be one of {", ".join(STATUSES)}, active, deactivated',
                               "invalid-params")
            qs = qs.filter(is_active=status != "deactivated") if status in ("active", "deactivated") \
                else qs.filter(status=status, is_active=True)
        logged_in = bool_param(request, "hasLoggedIn")
        if logged_in is not None:
            qs = qs.filter(last_login__isnull=not logged_in)
        kind = str_param(request, "type")
        if kind:
            qs = qs.filter(type=kind)
        roles = list_param(request, "roles")
        if roles:
            qs = qs.filter(roles__id__in=[str(r) for r in roles]).distinct()
        term = str_param(request, "searchTerm", max_length=200)
        if term:
            qs = qs.filter(Q(username__icontains=term) | Q(name__icontains=term) | Q(email__icontains=term))
        qs = qs.order_by("username")
        total = qs.count()
        private = has_permission(request.user, "view-full-other-user-info")
        users = [user_json(u, private=private) for u in qs[offset:offset + count]]
        return ok(users=users, count=len(users), offset=offset, total=total)


def _current_token(request: Request) -> str:
    token = request.auth if isinstance(request.auth, str) else ""
    if not token:
        raise ApiError("x-auth-token is required", "error-parameter-required")
    return token


class LogoutOtherClientsView(ApiView):
    """``users.logoutOtherClients``: every other login ends (personal access tokens stay)."""

    def post(self, request: Request) -> Response:
        token = _current_token(request)
        actions.do_logout_other_clients(request.user, token)
        return ok(token=token, tokenExpires="")


class RemoveOtherTokensView(ApiView):
    """``users.removeOtherTokens``: as ``logoutOtherClients``, answering only ``success``."""

    def post(self, request: Request) -> Response:
        actions.do_logout_other_clients(request.user, _current_token(request))
        return ok()


def _may_have_tokens(user: User) -> None:
    if not has_permission(user, "create-personal-access-tokens"):
        raise NotAllowed("Not authorized", "not-authorized")


class GeneratePersonalAccessTokenView(ApiView):
    def post(self, request: Request) -> Response:
        _may_have_tokens(request.user)
        token = actions.do_generate_personal_token(request.user, param(request, "tokenName"),
                                                   bypass_two_factor=bool(bool_param(request, "bypassTwoFactor")))
        return ok(token=token)


class RegeneratePersonalAccessTokenView(ApiView):
    def post(self, request: Request) -> Response:
        _may_have_tokens(request.user)
        return ok(token=actions.do_regenerate_personal_token(request.user, param(request, "tokenName")))


class GetPersonalAccessTokensView(ApiView):
    def get(self, request: Request) -> Response:
        _may_have_tokens(request.user)
        tokens = AuthToken.objects.filter(user=request.user, personal=True).order_by("created_at")
        return ok(tokens=[{"name": t.name, "createdAt": iso(t.created_at), "lastTokenPart": t.last_part,
                           "bypassTwoFactor": t.bypass_two_factor} for t in tokens])


class RemovePersonalAccessTokenView(ApiView):
    def post(self, request: Request) -> Response:
        actions.do_remove_personal_token(request.user, param(request, "tokenName"))
        return ok()


class DeleteUserView(ApiView):
    """``users.delete {userId | username, confirmRelinquish?}`` (``delete-user``)."""

    def post(self, request: Request) -> Response:
        if not has_permission(request.user, "delete-user"):
            raise NotAllowed(PERMISSION_REQUIRED, "error-unauthorized")
        user = find_user(request)
        if user.is_remote:
            raise ApiError("Remote users are not deleted here: they belong to their own server", "error-invalid-user")
        do_delete_user(user, by=request.user, confirm_relinquish=bool(bool_param(request, "confirmRelinquish")))
        return ok()


class DeleteOwnAccountView(ApiView):
    """``users.deleteOwnAccount {password, confirmRelinquish?}``: only where the server allows it
    (the setting ``Accounts_AllowDeleteOwnAccount``, by default ``CONCORD_ALLOW_DELETE_OWN_ACCOUNT``,
    off as in Rocket.Chat); ``password``
    is the account's password in clear (Rocket.Chat's own clients send its SHA-256: they would need
    to send the password itself here)."""

    def post(self, request: Request) -> Response:
        if not server_settings.flag("Accounts_AllowDeleteOwnAccount"):
            raise NotAllowed("Not allowed", "error-not-allowed")
        password = param(request, "password")
        if not isinstance(password, str) or not password or not request.user.check_password(password):
            raise ApiError("Invalid password", "error-invalid-password")
        do_delete_user(request.user, by=request.user,
                       confirm_relinquish=bool(bool_param(request, "confirmRelinquish")))
        return ok()
