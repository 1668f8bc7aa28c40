"""``dm.*`` (and their ``im.*`` aliases) that differ from the shared room views.

``dm.create`` takes ``username`` (1:1) or ``usernames`` (comma-separated, multi-user; what the
client's ``dm_create_multiple`` sends); the same set of people always gets the same room. History,
members, messages, counters and open/close are the shared views of :mod:`rooms.api.channels`
routed with ``kind=DMS``, so a DM is only ever visible to its members.
"""

from __future__ import annotations

from rest_framework.request import Request
from rest_framework.response import Response

from chat.api import list_param, ok, pagination, str_param
from chat.api_errors import ApiError
from federation.api.rest import accept_if_invited, invite_remote
from rooms.actions.rooms import do_change_room_setting, do_get_or_create_dm, find_dm
from rooms.api.room_common import RoomApiView, check_permission, joined_room, text_param, users_by_names
from rooms.api.room_reads import dms_page
from rooms.models import Membership
from rooms.serialization import room_json


class DmCreateView(RoomApiView):
    """``dm.create``: ``{room: {_id, rid, t: "d", usernames, ...}}``."""

    def post(self, request: Request) -> Response:
        check_permission(request.user, "create-d")
        names = list_param(request, "usernames") or [str_param(request, "username", max_length=255) or ""]
        names = [n for n in names if n.strip()]
        if not names:
            raise ApiError('Body param "username" or "usernames" is required', "error-invalid-params")
        others = users_by_names(names)
        pending = find_dm([request.user, *others])
        if pending is not None and accept_if_invited(pending, request.user):
            # Someone on another server already opened this DM with us: that invite is the answer.
            pending.refresh_from_db()
            return ok(room={**room_json(pending), "rid": pending.id})
        room, _created = do_get_or_create_dm(request.user, others)
        for other in others:
            if other.is_remote and not Membership.objects.filter(room=room, user=other).exclude(
                    state=Membership.LEFT).exists():
                invite_remote(room, other, request.user)
        return ok(room={**room_json(room), "rid": room.id})


class DmListView(RoomApiView):
    """``dm.list`` (the caller's DMs) and ``dm.list.everyone`` (all, ``view-room-administration``)."""

    everyone = False

    def get(self, request: Request) -> Response:
        if self.everyone:
            check_permission(request.user, "view-room-administration")
        offset, count = pagination(request)
        ims, total = dms_page(request.user, offset=offset, count=count, everyone=self.everyone)
        return ok(ims=ims, count=len(ims), offset=offset, total=total)


class DmSetTopicView(RoomApiView):
    """``dm.setTopic``: any member of the DM may set its topic."""

    def post(self, request: Request) -> Response:
        room, _sub = joined_room(request, self.kind)
        room = do_change_room_setting(room, "topic", text_param(request, "topic"), by=request.user)
        return ok(topic=room.topic)
