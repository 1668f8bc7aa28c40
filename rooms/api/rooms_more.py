"""``rooms.isMember``, ``rooms.images``, ``rooms.open`` and ``rooms.hide``, as Rocket.Chat answers them."""

from __future__ import annotations

from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import User
from chat.api import ApiView, ok, pagination, str_param
from chat.api_errors import ApiError, NotAllowed
from rooms.access import access_room_for_read, membership_of
from rooms.actions.memberships import do_set_open
from rooms.api.room_reads import room_files
from rooms.models import Membership, Room, Upload


def _required(request: Request, name: str) -> str:
    value = str_param(request, name, max_length=300)
    if not value:
        raise ApiError(f"must have required property '{name}' [invalid-params]", "invalid-params")
    return value


class IsMemberView(ApiView):
    """``rooms.isMember?roomId=&userId=|username=``: whether that user is in the room, for a caller
    who may read it (``{isMember}``); an unknown user is ``error-user-not-found``."""

    def get(self, request: Request) -> Response:
        room = access_room_for_read(request.user, _required(request, "roomId"))
        ident = str_param(request, "userId") or str_param(request, "username")
        user = User.objects.filter(id=ident).first() or User.objects.filter(username=ident).first() if ident else None
        if user is None:
            raise ApiError("error-user-not-found", "error-user-not-found")
        return ok(isMember=Membership.objects.filter(room=room, user=user, state=Membership.JOINED).exists())


class ImagesView(ApiView):
    """``rooms.images?roomId=&startingFromId=&count=&offset=``: the room's shared images, newest
    first (``{files, count, offset, total}``); with ``startingFromId`` only that image and older
    ones, that image first. A room the caller may not read is a 403."""

    def get(self, request: Request) -> Response:
        room_id = _required(request, "roomId")
        room = Room.objects.filter(id=room_id).first()
        if room is None:
            raise NotAllowed("unauthorized", "error-unauthorized")
        try:
            room = access_room_for_read(request.user, room_id)
        except ApiError:
            raise NotAllowed("unauthorized", "error-unauthorized") from None
        offset, count = pagination(request)
        start = None
        starting = str_param(request, "startingFromId", max_length=64)
        if starting:
            start = Upload.objects.filter(id=starting, room=room, confirmed=True).first()
        files, total = room_files(room, offset=offset, count=count, images_only=True,
                                  until=start.created_at if start is not None else None)
        if start is not None and offset == 0 and not any(f["_id"] == start.id for f in files):
            first, _ = room_files(room, offset=0, count=1, images_only=True, only_id=start.id)
            files = first + files[:max(0, count - 1)]
        return ok(files=files, count=len(files), offset=offset, total=total)


class OpenView(ApiView):
    """``rooms.open {roomId}``: show the room in the caller's room list again (no error when shown)."""

    def post(self, request: Request) -> Response:
        room = access_room_for_read(request.user, _required(request, "roomId"))
        sub = membership_of(request.user, room)
        if sub is not None and sub.state == Membership.JOINED:
            try:
                do_set_open(room, request.user, True)
            except ApiError as exc:
                if exc.error_type != "error-room-already-open":
                    raise
        return ok()


class HideView(ApiView):
    """``rooms.hide {roomId}``: hide the room from the caller's room list until a new message;
    ``error-room-already-hidden`` when it is hidden already."""

    def post(self, request: Request) -> Response:
        room_id = _required(request, "roomId")
        try:
            room = access_room_for_read(request.user, room_id)
        except ApiError:
            raise NotAllowed("unauthorized", "error-unauthorized") from None
        try:
            do_set_open(room, request.user, False)
        except ApiError as exc:
            if exc.error_type == "error-room-already-closed":
                raise ApiError("error-room-already-hidden", "error-room-already-hidden") from None
            raise
        return ok()
