"""``rooms.saveRoomSettings`` (Rocket.Chat's one-call room settings form) and ``rooms.bannedUsers``.

``rooms.saveRoomSettings`` takes ``rid`` and any of ``roomName``, ``roomTopic``, ``roomDescription``,
``roomAnnouncement``, ``readOnly``, ``roomType`` (``c``/``p``) and, as our extensions, ``broadcast``
and ``historyVisibility`` (``shared``, ``invited``, ``joined``, ``world_readable``: who sees
messages from before they were in the room; Matrix's ``m.room.history_visibility``).
Each change goes through the same action as its single-setting call, so it posts the same system
message and live event. Settings are applied in a fixed order and the first refused one stops the
call (earlier ones stay applied, as in Rocket.Chat); the answer names the room.
"""

from __future__ import annotations

from rest_framework.request import Request
from rest_framework.response import Response

from chat.api import bool_param, ok, pagination, str_param
from chat.api_errors import ApiError
from rooms.access import access_joined_room, access_room_for_read
from rooms.actions.rooms import do_change_room_setting, do_set_room_type
from rooms.api.room_common import RoomApiView, check_permission
from rooms.models import Membership, Room
from rooms.serialization import iso, room_json, user_brief

TEXT_SETTINGS = (("roomName", "name"), ("roomTopic", "topic"), ("roomDescription", "description"),
                 ("roomAnnouncement", "announcement"))


class SaveRoomSettingsView(RoomApiView):
    def post(self, request: Request) -> Response:
        room_id = str_param(request, "rid") or str_param(request, "roomId")
        room, _ = access_joined_room(request.user, room_id)
        if room.type == Room.DIRECT:
            raise ApiError("Direct messages have no room settings", "error-action-not-allowed")
        check_permission(request.user, "edit-room", room)
        changed = []
        for param_name, field in TEXT_SETTINGS:
            value = str_param(request, param_name, max_length=10000)
            if value is not None and value != getattr(room, field):
                room = do_change_room_setting(room, field, value, by=request.user)
                changed.append(param_name)
        for param_name, field in (("readOnly", "read_only"), ("broadcast", "broadcast")):
            flag = bool_param(request, param_name)
            if flag is not None and flag != getattr(room, field):
                room = do_change_room_setting(room, field, flag, by=request.user)
                changed.append(param_name)
        visibility = str_param(request, "historyVisibility")
        if visibility is not None and visibility != room.history_visibility:
            room = do_change_room_setting(room, "history_visibility", visibility, by=request.user)
            changed.append("historyVisibility")
        room_type = str_param(request, "roomType")
        if room_type is not None and room_type != room.type:
            if room_type not in (Room.CHANNEL, Room.GROUP):
                raise ApiError('"roomType" must be "c" or "p"', "error-invalid-room-type")
            check_permission(request.user, "create-c" if room_type == Room.CHANNEL else "create-p")
            room = do_set_room_type(room, room_type, by=request.user)
            changed.append("roomType")
        return ok(rid=room.id, changed=changed, room=room_json(room))


class BannedUsersView(RoomApiView):
    """``rooms.bannedUsers?roomId=``: who is banned, for those who may ban (our extension)."""

    def get(self, request: Request) -> Response:
        room = access_room_for_read(request.user, str_param(request, "roomId") or str_param(request, "rid"))
        check_permission(request.user, "ban-user", room)
        offset, count = pagination(request)
        qs = Membership.objects.filter(room=room, banned=True).select_related("user").order_by("updated_at")
        total = qs.count()
        rows = [{"_id": m.user_id, "username": m.user.username, "name": m.user.display_name,
                 "bannedAt": iso(m.updated_at), "user": user_brief(m.user)} for m in qs[offset:offset + count]]
        return ok(users=rows, count=len(rows), offset=offset, total=total)
