"""``channels.*`` and ``groups.*`` (and the room-level reads that ``dm.*`` shares with them).

Every view is written once and routed per family with ``as_view(kind=CHANNELS|GROUPS|DMS)``; see
:mod:`rooms.api.room_common` for why. Views only parse parameters, fetch with permission and call
one ``do_*`` action; answers follow Rocket.Chat's shapes (``{channel: ...}``, ``{group: ...}``).
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import User
from accounts.permissions import has_permission
from chat import rate_limits
from chat.api import bool_param, json_param, list_param, ok, pagination, param, str_param
from chat.api_errors import ApiError, NotAllowed
from federation.api.rest import invite_remote, is_matrix_room_ref, join_matrix_room, revoke_if_invited, via_param
from federation.hooks import history_page_short
from rooms.access import access_room_for_read, find_room, hidden_history, membership_of
from rooms.actions.memberships import (
    do_add_member,
    do_join,
    do_kick,
    do_leave,
    do_set_open,
    do_set_room_role,
)
from rooms.actions.rooms import (
    do_change_room_setting,
    do_create_room,
    do_delete_room,
    do_set_archived,
    do_set_custom_fields,
    do_set_default,
    do_set_join_code,
    do_set_room_type,
)
from rooms.api.room_common import (
    RoomApiView,
    check_permission,
    date_param,
    joined_room,
    room_answer,
    room_for_read,
    target_user,
    target_users,
    text_param,
    users_by_names,
)
from rooms.api.room_reads import (
    HistoryQuery,
    room_counters,
    room_files,
    room_history,
    room_members,
    room_messages,
    room_moderators,
    room_roles,
    rooms_page,
    unread_info,
)
from rooms.models import Membership, Room
from rooms.serialization import is_federated, message_json

MAX_ROOM_NAME = 100


# --- creating, listing, reading ------------------------------------------------------------------


class CreateView(RoomApiView):
    """``channels.create`` / ``groups.create``: name, members[], readOnly, extraData{broadcast, topic...}."""

    def post(self, request: Request) -> Response:
        check_permission(request.user, self.kind.create_permission)
        name = str_param(request, "name", required=True, max_length=MAX_ROOM_NAME) or ""
        members = users_by_names(list_param(request, "members"))
        extra = param(request, "extraData") or {}
        if not isinstance(extra, dict):
            raise ApiError('"extraData" must be an object', "error-invalid-params")
        room = do_create_room(
            request.user, self.kind.type, name, members=members,
            read_only=bool(bool_param(request, "readOnly", False)), broadcast=bool(extra.get("broadcast", False)),
            topic=str(extra.get("topic") or ""), description=str(extra.get("description") or ""),
            announcement=str(extra.get("announcement") or ""),
        )
        return ok(**room_answer(self.kind, room))


class InfoView(RoomApiView):
    """``*.info``: the room, if the caller may see it."""

    def get(self, request: Request) -> Response:
        return ok(**room_answer(self.kind, room_for_read(request, self.kind)))


class PublicListView(RoomApiView):
    """``channels.list``: every public channel (``query``'s ``name`` filters, as a fragment)."""

    def get(self, request: Request) -> Response:
        check_permission(request.user, "view-c-room")
        offset, count = pagination(request)
        rooms, total = rooms_page(Room.objects.filter(type=self.kind.type), offset=offset, count=count,
                                  name=_name_filter(request))
        return ok(**_list_answer(self.kind.list_key, rooms, offset, total))


class JoinedListView(RoomApiView):
    """``channels.list.joined`` / ``groups.list``: the rooms of this type the caller has joined."""

    def get(self, request: Request) -> Response:
        offset, count = pagination(request)
        qs = Room.objects.filter(type=self.kind.type, memberships__user=request.user,
                                 memberships__state=Membership.JOINED)
        rooms, total = rooms_page(qs, offset=offset, count=count, name=_name_filter(request))
        return ok(**_list_answer(self.kind.list_key, rooms, offset, total))


class AllListView(RoomApiView):
    """``groups.listAll``: every private group (needs ``view-room-administration``)."""

    def get(self, request: Request) -> Response:
        check_permission(request.user, "view-room-administration")
        offset, count = pagination(request)
        rooms, total = rooms_page(Room.objects.filter(type=self.kind.type), offset=offset, count=count,
                                  name=_name_filter(request))
        return ok(**_list_answer(self.kind.list_key, rooms, offset, total))


def _list_answer(key: str, rooms: list[dict[str, Any]], offset: int, total: int) -> dict[str, Any]:
    return {key: rooms, "count": len(rooms), "offset": offset, "total": total}


def _name_filter(request: Request) -> str:
    query = json_param(request, "query")
    if query is None:
        return ""
    if not isinstance(query, dict):
        raise ApiError('"query" must be a JSON object', "error-invalid-params")
    name = query.get("name") or query.get("fname") or ""
    if isinstance(name, dict):
        name = name.get("$regex") or ""
    if not isinstance(name, str):
        raise ApiError('"query.name" must be a string', "error-invalid-params")
    return name


class HistoryView(RoomApiView):
    """``*.history``: messages newest first; ``latest``, ``oldest``, ``inclusive``, ``count``,
    ``offset``, ``unreads``, ``showThreadMessages``. A short page of a federated room (scrolling
    back past what we hold) first fetches older history from another server."""

    def get(self, request: Request) -> Response:
        room = room_for_read(request, self.kind)
        offset, count = pagination(request, default_count=20)
        sub = membership_of(request.user, room)
        query = HistoryQuery(latest=date_param(request, "latest"), oldest=date_param(request, "oldest"),
                             inclusive=bool(bool_param(request, "inclusive", False)), offset=offset, count=count,
                             show_thread_messages=bool(bool_param(request, "showThreadMessages", False)),
                             hidden=hidden_history(room, sub))
        messages = room_history(room, query)
        if len(messages) < count and query.oldest is None:
            if history_page_short(room):  # older history fetched from another server
                messages = room_history(room, query)
        extra = unread_info(room, sub, messages) \
            if bool_param(request, "unreads", False) else {}
        return ok(messages=[message_json(m) for m in messages], **extra)


class MessagesView(RoomApiView):
    """``*.messages``: a page of messages with Rocket.Chat's ``query``/``sort``, and the total."""

    def get(self, request: Request) -> Response:
        room = room_for_read(request, self.kind)
        offset, count = pagination(request)
        messages, total = room_messages(room, query=json_param(request, "query"), sort=json_param(request, "sort"),
                                        offset=offset, count=count,
                                        hidden=hidden_history(room, membership_of(request.user, room)))
        return ok(messages=[message_json(m) for m in messages], count=len(messages), offset=offset, total=total)


class MembersView(RoomApiView):
    """``*.members``: joined members with their status; ``filter``, ``status[]``, paging."""

    def get(self, request: Request) -> Response:
        from accounts.serialization import user_json

        room = room_for_read(request, self.kind)
        offset, count = pagination(request)
        users, total = room_members(room, offset=offset, count=count, term=str_param(request, "filter") or "",
                                    statuses=list_param(request, "status"))
        members = [user_json(u) for u in users]
        return ok(members=members, count=len(members), offset=offset, total=total)


class FilesView(RoomApiView):
    """``*.files``: files shared in the room, ``{files, count, offset, total}``."""

    def get(self, request: Request) -> Response:
        room = room_for_read(request, self.kind)
        offset, count = pagination(request)
        files, total = room_files(room, offset=offset, count=count)
        return ok(files=files, count=len(files), offset=offset, total=total)


class RolesView(RoomApiView):
    """``*.roles``: members holding room roles, ``[{rid, u: {_id, username}, roles}]``."""

    def get(self, request: Request) -> Response:
        return ok(roles=room_roles(room_for_read(request, self.kind)))


class ModeratorsView(RoomApiView):
    """``*.moderators``: the room's moderators."""

    def get(self, request: Request) -> Response:
        return ok(moderators=room_moderators(room_for_read(request, self.kind)))


class CountersView(RoomApiView):
    """``*.counters``: the caller's (or, with ``view-room-administration``, ``userId``'s) counters."""

    def get(self, request: Request) -> Response:
        room = room_for_read(request, self.kind)
        user: User = request.user
        if str_param(request, "userId") and str_param(request, "userId") != user.id:
            check_permission(user, "view-room-administration")
            user = target_user(request)
        return ok(**room_counters(room, user))


# --- membership -------------------------------------------------------------------------------


class JoinView(RoomApiView):
    """``channels.join``: join a public channel (refused while banned)."""

    def post(self, request: Request) -> Response:
        target = str_param(request, "roomId") or str_param(request, "roomName")
        if is_matrix_room_ref(target):
            room = join_matrix_room(request.user, str(target), via_param(request))
            return ok(**room_answer(self.kind, room))
        room = find_room(str_param(request, "roomId"), str_param(request, "roomName"), self.kind.types)
        do_join(room, request.user, str_param(request, "joinCode", max_length=255))
        return ok(**room_answer(self.kind, room))


class SetJoinCodeView(RoomApiView):
    """``channels.setJoinCode {roomId, joinCode}`` (``edit-room``); an empty code removes it."""

    def post(self, request: Request) -> Response:
        room = room_for_read(request, self.kind)
        check_permission(request.user, "edit-room", room)
        code = str_param(request, "joinCode", max_length=300)
        if code is None:
            raise ApiError('The bodyParam "joinCode" is required', "error-invalid-params")
        room = do_set_join_code(room, code.strip(), federated=is_federated(room))
        return ok(**room_answer(self.kind, room))


class AddAllView(RoomApiView):
    """``channels.addAll {roomId, activeUsersOnly?}`` (``add-all-to-room``): every local user joins."""

    def post(self, request: Request) -> Response:
        room = room_for_read(request, self.kind)
        check_permission(request.user, "add-all-to-room", room)
        users = User.objects.filter(is_remote=False, type="user")
        if bool_param(request, "activeUsersOnly", False):
            users = users.filter(is_active=True)
        with transaction.atomic():
            for user in users.exclude(memberships__room=room, memberships__state=Membership.JOINED):
                if not Membership.objects.filter(room=room, user=user, banned=True).exists():
                    do_add_member(room, user, by=request.user)
        return ok(**room_answer(self.kind, room))


class LeaveView(RoomApiView):
    """``*.leave``: leave the room (the last owner must hand over first)."""

    def post(self, request: Request) -> Response:
        room, _sub = joined_room(request, self.kind)
        do_leave(room, request.user)
        return ok(**room_answer(self.kind, room))


def check_can_add_users(user: User, room: Room) -> None:
    """Raise unless ``user`` may add people to ``room``.

    A member needs ``add-user-to-joined-room``; anyone else ``add-user-to-any-c-room`` (or ``-p-``).
    An archived room takes no one.
    """
    if room.archived:
        raise NotAllowed("This room is archived", "error-room-archived")
    sub = membership_of(user, room)
    if sub is not None and sub.state == Membership.JOINED and has_permission(user, "add-user-to-joined-room", room):
        return
    check_permission(user, f"add-user-to-any-{room.type}-room", room)


class InviteView(RoomApiView):
    """``*.invite``: add ``userId``/``username`` (or ``userIds``) to the room; banned users are refused."""

    def post(self, request: Request) -> Response:
        room = room_for_read(request, self.kind)
        users = target_users(request)
        check_can_add_users(request.user, room)
        if rate_limits.enabled() and not has_permission(request.user, "api-bypass-rate-limit"):
            for _ in users:
                rate_limits.check("invites", str(request.user.pk))
        with transaction.atomic():
            for user in users:
                if not user.is_remote:
                    do_add_member(room, user, by=request.user)
        for user in users:
            if user.is_remote:
                invite_remote(room, user, request.user)
        return ok(**room_answer(self.kind, room))


class KickView(RoomApiView):
    """``*.kick``: remove a member (``remove-user``)."""

    def post(self, request: Request) -> Response:
        room = room_for_read(request, self.kind)
        user = target_user(request)
        check_permission(request.user, "remove-user", room)
        if not revoke_if_invited(room, user, request.user):
            do_kick(room, user, by=request.user)
        return ok(**room_answer(self.kind, room))


ROLE_PERMISSIONS = {"owner": "set-owner", "moderator": "set-moderator", "leader": "set-leader"}


class RoomRoleView(RoomApiView):
    """``*.addOwner``/``removeOwner``/``addModerator``/``removeModerator``/``addLeader``/``removeLeader``."""

    role = "owner"
    granted = True

    def post(self, request: Request) -> Response:
        room = room_for_read(request, self.kind)
        user = target_user(request)
        check_permission(request.user, ROLE_PERMISSIONS[self.role], room)
        do_set_room_role(room, user, self.role, self.granted, by=request.user)
        return ok()


class OpenView(RoomApiView):
    """``*.open`` / ``*.close``: show or hide the room in the caller's list."""

    is_open = True

    def post(self, request: Request) -> Response:
        room = room_for_read(request, self.kind)
        do_set_open(room, request.user, self.is_open)
        return ok()


# --- settings ---------------------------------------------------------------------------------


class TextSettingView(RoomApiView):
    """``*.setTopic``/``setDescription``/``setAnnouncement``: answers ``{<field>: value}``;
    ``*.setPurpose`` is Rocket.Chat's other name of the description (``purpose`` in and out)."""

    field = "topic"
    answer = ""
    param_name = ""

    def post(self, request: Request) -> Response:
        room = room_for_read(request, self.kind)
        value = text_param(request, self.param_name or self.field)
        check_permission(request.user, "edit-room", room)
        room = do_change_room_setting(room, self.field, value, by=request.user)
        return ok(**{self.answer or self.field: getattr(room, self.field)})


class SetCustomFieldsView(RoomApiView):
    """``*.setCustomFields {roomId | roomName, customFields}`` (``edit-room``): answers the room."""

    def post(self, request: Request) -> Response:
        fields = request.data.get("customFields") if isinstance(request.data, dict) else None
        if not isinstance(fields, dict):
            raise ApiError('The bodyParam "customFields" is required with a type like object.', "error-invalid-params")
        room = room_for_read(request, self.kind)
        check_permission(request.user, "edit-room", room)
        room = do_set_custom_fields(room, fields, by=request.user)
        return ok(**room_answer(self.kind, room))


class OnlineView(RoomApiView):
    """``*.online?roomId=`` (or ``_id=``, or Rocket.Chat's ``query={"_id": roomId}``): the members
    not offline."""

    def get(self, request: Request) -> Response:
        query = json_param(request, "query")
        room_id = str_param(request, "roomId") or str_param(request, "_id") or (
            query.get("_id") if isinstance(query, dict) else None)
        if not room_id:
            raise ApiError("Invalid channel", "error-not-allowed")
        room = access_room_for_read(request.user, str(room_id), None, self.kind.types)
        online = (Membership.objects.filter(room=room, state=Membership.JOINED, user__is_active=True)
                  .exclude(user__status="offline").select_related("user").order_by("user__username"))
        return ok(online=[{"_id": m.user_id, "username": m.user.username} for m in online])


class RenameView(RoomApiView):
    """``*.rename``: a new, unused, valid name (``edit-room``)."""

    def post(self, request: Request) -> Response:
        room = room_for_read(request, self.kind)
        name = str_param(request, "name", required=True, max_length=MAX_ROOM_NAME) or ""
        check_permission(request.user, "edit-room", room)
        if name.lstrip("#") == room.name:
            raise ApiError("The channel name is the same as what it would be changed to.", "error-invalid-room-name")
        room = do_change_room_setting(room, "name", name, by=request.user)
        return ok(**room_answer(self.kind, room))


class SetDefaultView(RoomApiView):
    """``*.setDefault``: ``default`` true/false; new users join default rooms (room administration
    only, as in Rocket.Chat, whose error types for the two refusals are kept as it has them)."""

    def post(self, request: Request) -> Response:
        room = room_for_read(request, self.kind)
        value = param(request, "default")
        if value is None:
            raise ApiError('The bodyParam "default" is required', "error-channels-setdefault-is-same")
        default = str(value).lower() in ("true", "1")
        if room.default == default:
            raise ApiError("The channel default setting is the same as what it would be changed to.",
                           "error-channels-setdefault-missing-default-param")
        check_permission(request.user, "view-room-administration")
        room = do_set_default(room, default)
        return ok(**room_answer(self.kind, room))


class ReadOnlyView(RoomApiView):
    """``*.setReadOnly``: ``readOnly`` true/false (``edit-room``)."""

    def post(self, request: Request) -> Response:
        room = room_for_read(request, self.kind)
        read_only = bool_param(request, "readOnly")
        if read_only is None:
            raise ApiError('The bodyParam "readOnly" is required', "error-invalid-params")
        check_permission(request.user, "edit-room", room)
        if room.read_only == read_only:
            raise ApiError("The room read only setting is the same as what it would be changed to.",
                           "error-invalid-params")
        room = do_change_room_setting(room, "read_only", read_only, by=request.user)
        return ok(**room_answer(self.kind, room))


class SetTypeView(RoomApiView):
    """``*.setType``: ``type`` ``c`` or ``p`` (``edit-room`` and the create permission of the new type)."""

    def post(self, request: Request) -> Response:
        room = room_for_read(request, self.kind)
        new_type = str_param(request, "type", required=True, max_length=1) or ""
        check_permission(request.user, "edit-room", room)
        if new_type in (Room.CHANNEL, Room.GROUP):
            check_permission(request.user, f"create-{new_type}")
        room = do_set_room_type(room, new_type, by=request.user)
        return ok(**room_answer(self.kind, room))


class ArchiveView(RoomApiView):
    """``*.archive`` / ``*.unarchive`` (``archive-room`` / ``unarchive-room``)."""

    archived = True

    def post(self, request: Request) -> Response:
        room = room_for_read(request, self.kind)
        check_permission(request.user, "archive-room" if self.archived else "unarchive-room", room)
        do_set_archived(room, self.archived, by=request.user)
        return ok()


class DeleteView(RoomApiView):
    """``channels.delete`` / ``groups.delete`` / ``im.delete`` (``delete-c`` / ``delete-p`` /
    ``delete-d``; room administrators reach any DM, as in Rocket.Chat)."""

    def post(self, request: Request) -> Response:
        room_id = str_param(request, "roomId") or str_param(request, "rid")
        if self.kind.type == Room.DIRECT and room_id and has_permission(request.user, "view-room-administration"):
            room = find_room(room_id, None, self.kind.types)  # room administration reaches any DM
        else:
            room = room_for_read(request, self.kind)
        check_permission(request.user, self.kind.delete_permission or "view-room-administration", room)
        do_delete_room(room, by=request.user)
        return ok()
