"""``rooms.createDiscussion`` and ``rooms.getDiscussions``, as Rocket.Chat answers them.

Checks, in Rocket.Chat's order: the required body parameters, then ``start-discussion`` or
``start-discussion-other-user`` (scoped to the parent), then that the caller may post in the
parent (a discussion is started from it), then the parent itself (not a discussion, not linked to
Matrix: :func:`rooms.actions.discussions.check_can_start_discussion`).
"""

from __future__ import annotations

from django.db.models import Q
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import User
from accounts.permissions import has_permission
from chat.api import ApiView, json_param, ok, pagination, param, str_param
from chat.api_errors import ApiError
from rooms.access import access_room_for_read, check_can_post, find_room
from rooms.actions.discussions import do_create_discussion
from rooms.models import Message, Room
from rooms.serialization import room_json, rooms_json

MAX_DISCUSSION_NAME = 255


def _body_required(request: Request, name: str) -> str:
    value = str_param(request, name, max_length=MAX_DISCUSSION_NAME if name == "t_name" else 64)
    if not value or not value.strip():
        raise ApiError(f'Body parameter "{name}" is required.', "error-invalid-params")
    return value.strip()


class CreateDiscussionView(ApiView):
    """``rooms.createDiscussion {prid, t_name, pmid?, users?: [username], reply?, encrypted?}``:
    ``{discussion}`` (the new room, with ``rid``)."""

    def post(self, request: Request) -> Response:
        prid = _body_required(request, "prid")
        t_name = _body_required(request, "t_name")
        users = param(request, "users")
        if users is not None and (not isinstance(users, list) or not all(isinstance(u, str) for u in users)):
            raise ApiError('Body parameter "users" must be an array.', "error-invalid-params")
        encrypted = param(request, "encrypted")
        if encrypted is not None and not isinstance(encrypted, bool):
            raise ApiError('Body parameter "encrypted" must be a boolean when included.', "error-invalid-params")
        if encrypted:
            raise ApiError("Encrypted discussions are not supported", "error-invalid-arguments")
        reply = str_param(request, "reply", max_length=10000) or ""
        user: User = request.user
        parent = Room.objects.filter(id=prid).first()
        if not (has_permission(user, "start-discussion", parent)
                or has_permission(user, "start-discussion-other-user", parent)):
            raise ApiError("You are not allowed to create a discussion", "error-action-not-allowed")
        parent_message = None
        pmid = str_param(request, "pmid", max_length=64)
        if pmid:
            parent_message = Message.objects.select_related("user", "room").filter(id=pmid).first()
            if parent_message is None or parent_message.deleted_at is not None:
                raise ApiError("Invalid message", "error-invalid-message")
            if parent_message.room_id != prid:
                raise ApiError("Root message room ID does not match parent room ID", "error-invalid-arguments")
        parent = find_room(prid, None) if parent is None else parent
        check_can_post(user, access_room_for_read(user, parent.id))
        names = [u.strip().lstrip("@") for u in (users or []) if u.strip()]
        members = list(User.objects.filter(username__in=names, is_active=True))  # unknown names are left out
        room = do_create_discussion(user, parent, t_name, users=members, parent_message=parent_message, reply=reply)
        return ok(discussion={**room_json(room), "rid": room.id})


class GetDiscussionsView(ApiView):
    """``rooms.getDiscussions?roomId|roomName&text&count&offset&sort``: the room's discussions,
    by ``fname`` unless ``sort`` says ``{"fname"|"ts"|"lm": 1|-1}``; ``{discussions, count,
    offset, total}``, for whoever may read the room."""

    SORTS = {"fname": "fname", "ts": "created_at", "lm": "last_message_at", "_updatedAt": "updated_at"}

    def get(self, request: Request) -> Response:
        room = access_room_for_read(request.user, str_param(request, "roomId", max_length=64),
                                    str_param(request, "roomName", max_length=255))
        offset, count = pagination(request)
        qs = Room.objects.filter(parent=room)
        if text := (str_param(request, "text", max_length=255) or "").strip():
            qs = qs.filter(Q(fname__icontains=text) | Q(name__icontains=text))
        order = ["fname", "id"]
        sort = json_param(request, "sort")
        if isinstance(sort, dict) and sort:
            key, direction = next(iter(sort.items()))
            if key not in self.SORTS or direction not in (1, -1):
                raise ApiError('"sort" must be one of fname, ts, lm or _updatedAt with 1 or -1', "error-invalid-params")
            order = [("-" if direction == -1 else "") + self.SORTS[key], "id"]
        qs = qs.select_related("creator").order_by(*order)
        total = qs.count()
        discussions = rooms_json(qs[offset:offset + count])
        return ok(discussions=discussions, count=len(discussions), offset=offset, total=total)
