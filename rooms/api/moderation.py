"""Muting and banning in a room: Rocket.Chat's ``rooms.muteUser``/``rooms.unmuteUser`` (6.8+) and
``rooms.banUser``/``rooms.unbanUser`` (8.x).

The ``rocketchat-api`` client has no method for these, so callers use ``call_api_post`` with
``roomId`` and ``userId`` or ``username``. Permissions are ``mute-user`` and ``ban-user``, held
globally (admin) or through a room role (owner, moderator). A muted member keeps reading but cannot
post, edit or react; a banned user is out of the room and cannot rejoin or be added until unbanned.
"""

from __future__ import annotations

from rest_framework.request import Request
from rest_framework.response import Response

from chat.api import ok, str_param
from rooms.access import access_room_for_read
from rooms.actions.memberships import do_ban, do_set_muted, do_unban
from rooms.api.room_common import RoomApiView, check_permission, target_user
from rooms.models import Room


def _room(request: Request) -> Room:
    """The room in ``roomId`` (or ``roomName``); private rooms of others are "not found"."""
    room_id = str_param(request, "roomId") or str_param(request, "rid")
    return access_room_for_read(request.user, room_id, str_param(request, "roomName"))


class MuteView(RoomApiView):
    """``rooms.muteUser`` / ``rooms.unmuteUser``: the target must be a member."""

    muted = True

    def post(self, request: Request) -> Response:
        room = _room(request)
        user = target_user(request)
        check_permission(request.user, "mute-user", room)
        do_set_muted(room, user, self.muted, by=request.user)
        return ok()


class BanView(RoomApiView):
    """``rooms.banUser`` / ``rooms.unbanUser``."""

    banned = True

    def post(self, request: Request) -> Response:
        room = _room(request)
        user = target_user(request)
        check_permission(request.user, "ban-user", room)
        if self.banned:
            do_ban(room, user, by=request.user)
        else:
            do_unban(room, user, by=request.user)
        return ok()
