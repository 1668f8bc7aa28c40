"""Rocket.Chat-compatible REST endpoints for authentication, users, roles and permissions."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import authenticate
from django.db.models import Q
from django.http import HttpResponseRedirect
from django.utils import timezone
from rest_framework.request import Request
from rest_framework.response import Response

from accounts import actions, server_settings
from accounts.models import Permission, Role, User
from accounts.permissions import has_permission
from accounts.serialization import avatar_url, permission_json, role_json, user_json
from chat import rate_limits
from chat.api import ApiView, PublicApiView, bool_param, json_param, list_param, ok, pagination, param, str_param
from chat.api_errors import ApiError, NotAllowed, NotFound
from rooms.access import find_room
from rooms.actions.memberships import do_set_room_role
from rooms.serialization import iso


def find_user(request: Request, *, id_param: str = "userId", name_param: str = "username") -> User:
    """The user named by ``userId`` or ``username`` (or ``user``) in the request."""
    user_id = str_param(request, id_param)
    username = str_param(request, name_param) or str_param(request, "user")
    if not user_id and not username:
        raise ApiError('The required "userId" or "username" param was not provided', "error-user-param-not-provided")
    qs = User.objects.all()
    user = qs.filter(id=user_id).first() if user_id else qs.filter(username=str(username).lstrip("@")).first()
    if user is None:
        raise NotFound("User not found.", "error-invalid-user")
    return user


def check_admin(user: User, permission: str) -> None:
    if not has_permission(user, permission):
        raise NotAllowed("Not allowed", "error-not-allowed")


class LoginView(PublicApiView):
    def post(self, request: Request) -> Response:
        ident = str_param(request, "user") or str_param(request, "username")
        password = param(request, "password")
        if not ident or not isinstance(password, str):
            return Response({"status": "error", "error": "Unauthorized", "message": "Unauthorized"}, status=401)
        username = ident
        if "@" in ident and not ident.startswith("@"):
            found = User.objects.filter(email__iexact=ident).first()
            username = found.username if found else ident
        address = rate_limits.client_address(request.META)
        wait = rate_limits.login_wait(username, address)
        if wait is not None:
            raise rate_limits.RateLimited(wait)
        user = authenticate(request._request, username=username, password=password)
        if user is None:
            rate_limits.login_failed(username, address)
            return Response({"status": "error", "error": "Unauthorized", "message": "Unauthorized"}, status=401)
        assert isinstance(user, User)
        token = actions.do_login(user, "login")
        User.objects.filter(id=user.id).update(last_login=timezone.now())
        return Response({"status": "success", "data": {"authToken": token, "userId": user.id,
                                                       "me": user_json(user, private=True)}})


class LogoutView(ApiView):
    def post(self, request: Request) -> Response:
        token = request.auth if isinstance(request.auth, str) else ""
        if token:
            actions.do_logout(token)
        return Response({"status": "success", "data": {"message": "You've been logged out!"}})


class MeView(ApiView):
    def get(self, request: Request) -> Response:
        return ok(**user_json(request.user, private=True))


class InfoView(PublicApiView):
    def get(self, request: Request) -> Response:
        return ok(info={"version": "7.0.0", "build": {"concord": "1.0.0"}}, version="7.0.0",
                  product="Concord", federation={"matrix": bool(getattr(settings, "CONCORD_SERVER_NAME", ""))})


class UsersCreateView(ApiView):
    def post(self, request: Request) -> Response:
        check_admin(request.user, "create-user")
        roles = list_param(request, "roles") or ["user"]
        user = actions.do_create_user(param(request, "username"), param(request, "email"), param(request, "password"),
                                      param(request, "name", ""), roles=roles,
                                      active=bool_param(request, "active", True) is not False,
                                      is_bot="bot" in roles)
        return ok(user=user_json(user, private=True))


class UsersRegisterView(PublicApiView):
    def post(self, request: Request) -> Response:
        if server_settings.text("Accounts_RegistrationForm") != "Public":
            raise NotAllowed("Registration is disabled on this server", "error-user-registration-disabled")
        password = param(request, "pass") if param(request, "pass") is not None else param(request, "password")
        user = actions.do_create_user(param(request, "username"), param(request, "email"), password,
                                      param(request, "name", ""))
        return ok(user=user_json(user, private=True))


class UsersInfoView(ApiView):
    def get(self, request: Request) -> Response:
        user = find_user(request)
        private = user == request.user or has_permission(request.user, "view-full-other-user-info")
        return ok(user=user_json(user, private=private))


class UsersListView(ApiView):
    def get(self, request: Request) -> Response:
        offset, count = pagination(request)
        qs = User.objects.filter(is_active=True).prefetch_related("roles").order_by("username")
        query = json_param(request, "query")
        if isinstance(query, dict):
            name = query.get("username") or query.get("name")
            if isinstance(name, dict):
                name = name.get("$regex")
            if isinstance(name, str):
                qs = qs.filter(Q(username__icontains=name) | Q(name__icontains=name))
        term = str_param(request, "filter") or str_param(request, "term")
        if term:
            qs = qs.filter(Q(username__icontains=term) | Q(name__icontains=term))
        total = qs.count()
        private = has_permission(request.user, "view-full-other-user-info")
        users = [user_json(u, private=private) for u in qs[offset:offset + count]]
        return ok(users=users, count=len(users), offset=offset, total=total)


def _avatar_target(request: Request) -> User:
    """The user whose avatar changes: the caller (while ``Accounts_AllowUserAvatarChange`` is on,
    or with ``edit-other-user-avatar``), or (with ``edit-other-user-avatar``) the one named."""
    target = find_user(request) if (param(request, "userId") or param(request, "username")) else request.user
    if target != request.user:
        check_admin(request.user, "edit-other-user-avatar")
    elif not server_settings.flag("Accounts_AllowUserAvatarChange") \
            and not has_permission(request.user, "edit-other-user-avatar"):
        raise NotAllowed("Change avatar is not allowed", "error-not-allowed")
    return target


class UsersSetAvatarView(ApiView):
    def post(self, request: Request) -> Response:
        target = _avatar_target(request)
        image = request.FILES.get("image")
        if image is None:
            if param(request, "avatarUrl"):
                raise ApiError("Setting an avatar from a URL is not supported; upload the image",
                               "error-avatar-url-handling")
            raise ApiError('The "image" file is required', "error-invalid-params")
        actions.do_set_avatar(target, image)
        return ok()


class UsersResetAvatarView(ApiView):
    def post(self, request: Request) -> Response:
        target = _avatar_target(request)
        actions.do_reset_avatar(target)
        return ok()


class UsersGetAvatarView(ApiView):
    def get(self, request: Request) -> HttpResponseRedirect:
        user = find_user(request)
        return HttpResponseRedirect(avatar_url(user))


class UsersUpdateOwnView(ApiView):
    def post(self, request: Request) -> Response:
        data = param(request, "data") or {}
        if not isinstance(data, dict):
            raise ApiError('"data" must be an object', "error-invalid-params")
        user = actions.do_update_own_info(request.user, data)
        return ok(user=user_json(user, private=True))


class UsersUpdateView(ApiView):
    def post(self, request: Request) -> Response:
        user = find_user(request)
        if user != request.user:
            check_admin(request.user, "edit-other-user-info")
        data = param(request, "data") or {}
        if not isinstance(data, dict):
            raise ApiError('"data" must be an object', "error-invalid-params")
        user = actions.do_update_profile(user, name=data.get("name"), email=data.get("email"),
                                         status_text=data.get("statusText"))
        if "active" in data and user != request.user:
            User.objects.filter(id=user.id).update(is_active=bool(data["active"]))
            user.refresh_from_db()
        return ok(user=user_json(user, private=True))


class UsersSetStatusView(ApiView):
    def post(self, request: Request) -> Response:
        actions.do_update_profile(request.user, status=str_param(request, "status"),
                                  status_text=str_param(request, "message"))
        return ok()


class UsersGetPresenceView(ApiView):
    def get(self, request: Request) -> Response:
        user = find_user(request) if (param(request, "userId") or param(request, "username")) else request.user
        return ok(presence=user.status, connectionStatus=user.status, lastLogin=iso(user.last_login))


class PermissionsListAllView(ApiView):
    def get(self, request: Request) -> Response:
        perms = [permission_json(p) for p in Permission.objects.prefetch_related("roles").order_by("id")]
        return ok(update=perms, remove=[])


class PermissionsUpdateView(ApiView):
    def post(self, request: Request) -> Response:
        check_admin(request.user, "access-permissions")
        updates = param(request, "permissions")
        if not isinstance(updates, list):
            raise ApiError('"permissions" must be a list of {_id, roles}', "error-invalid-permissions")
        changed = actions.do_set_permission_roles(updates)
        return ok(permissions=[permission_json(p) for p in changed])


class RolesListView(ApiView):
    def get(self, request: Request) -> Response:
        return ok(roles=[role_json(r) for r in Role.objects.order_by("id")])


def _role_change(request: Request, granted: bool) -> Response:
    check_admin(request.user, "assign-roles")
    role_name = str_param(request, "roleName") or str_param(request, "roleId")
    role = Role.objects.filter(id=role_name).first()
    if role is None:
        raise ApiError("Role not found", "error-role-not-found")
    user = find_user(request)
    room_id = str_param(request, "roomId")
    if role.scope == "Subscriptions":
        if not room_id:
            raise ApiError(f'The role "{role.id}" needs a "roomId"', "error-invalid-params")
        room = find_room(room_id)
        do_set_room_role(room, user, role.id, granted, by=request.user)
    elif granted:
        actions.do_add_global_role(user, role)
    else:
        actions.do_remove_global_role(user, role)
    return ok(role=role_json(role))


class RolesAddUserView(ApiView):
    def post(self, request: Request) -> Response:
        return _role_change(request, True)


class RolesRemoveUserView(ApiView):
    def post(self, request: Request) -> Response:
        return _role_change(request, False)


