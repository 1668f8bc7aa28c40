"""``access_*`` fetch-with-permission helpers and ``check_*`` validators for rooms.

Every REST view goes through these, so a private room never leaks to a non-member, a banned user
never acts, and a muted user or a plain member in a read-only room never posts.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.db.models import Q

from accounts.permissions import has_permission
from chat.api_errors import ApiError, NotAllowed, NotFound
from chat.hot_select import HotSelect
from rooms.models import Membership, Message, Room

if TYPE_CHECKING:
    from accounts.models import User


def membership_of(user: User, room: Room) -> Membership | None:
    """The user's membership row in ``room`` (any state), or None."""
    return Membership.objects.filter(room=room, user=user).first()


_MEMBERSHIP_AND_ROOM = HotSelect(
    [(Membership, "m"), (Room, "r")],
    "SELECT {columns} FROM rooms_membership m JOIN rooms_room r ON r.id = m.room_id"
    " WHERE m.room_id = %s AND m.user_id = %s",
)


def find_room_and_membership(user: User, room_id: str,
                             types: tuple[str, ...] = ("c", "p", "d")) -> tuple[Room, Membership | None]:
    """The room ``room_id`` among ``types`` and the user's membership in it (None if none).

    One query when the user has a membership (the usual case: posting, reading one's rooms), two
    otherwise. Raises the same not-found error as :func:`find_room`.
    """
    found = _MEMBERSHIP_AND_ROOM.first([room_id, user.id])
    if found is not None:
        sub, room = found
        assert isinstance(sub, Membership) and isinstance(room, Room)
        if room.type in types:
            sub.room = room
            return room, sub
    return find_room(room_id, None, types), None


def find_room(room_id: str | None = None, room_name: str | None = None,
              types: tuple[str, ...] = ("c", "p", "d")) -> Room:
    """The room with that id or name among ``types``; a Rocket.Chat style error otherwise."""
    if not room_id and not room_name:
        raise ApiError('The parameter "roomId" or "roomName" is required', "error-room-param-not-provided")
    qs = Room.objects.filter(type__in=types)
    room = qs.filter(id=room_id).first() if room_id else qs.filter(name=str(room_name).lstrip("#")).first()
    if room is None:
        raise NotFound("The required \"roomId\" or \"roomName\" param provided does not match any room",
                       "error-room-not-found")
    return room


_UNKNOWN: Any = object()
UNKNOWN_MEMBERSHIP: Any = _UNKNOWN
"""Passed as a membership argument: "not read yet", as opposed to None ("the user has none")."""


def can_read(user: User, room: Room, sub: Membership | None = _UNKNOWN) -> bool:
    """Members read every room; anyone may read a public channel (unless banned from it).

    An invited user may read the room too (to decide whether to accept), as Matrix's ``shared``
    history visibility allows; posting still needs a join (:func:`check_can_post`). ``sub`` is the
    user's membership in ``room`` when the caller already fetched it (None: known to have none).
    """
    if sub is _UNKNOWN:
        sub = membership_of(user, room)
    if sub is not None and sub.banned:
        return False
    if sub is not None and sub.state in (Membership.JOINED, Membership.INVITED):
        return True
    if room.type == Room.CHANNEL:
        return True
    return has_permission(user, "view-room-administration") and room.type != Room.DIRECT


def access_room_for_read(user: User, room_id: str | None = None, room_name: str | None = None,
                         types: tuple[str, ...] = ("c", "p", "d")) -> Room:
    """The room the user may read (see :func:`can_read`); not found for a private room they cannot."""
    return access_room_and_membership(user, room_id, room_name, types)[0]


def access_room_and_membership(user: User, room_id: str | None = None, room_name: str | None = None,
                               types: tuple[str, ...] = ("c", "p", "d")) -> tuple[Room, Membership | None]:
    """Like :func:`access_room_for_read`, also returning the user's membership (None if none).

    By id this costs one query for a member; callers pass the membership on (e.g. to
    :func:`check_can_post`) instead of reading it again.
    """
    if room_id:
        room, sub = find_room_and_membership(user, room_id, types)
    else:
        room = find_room(room_id, room_name, types)
        sub = membership_of(user, room)
    if not can_read(user, room, sub):
        # Do not reveal that a private room exists.
        if room.type != Room.CHANNEL:
            raise NotFound("The required \"roomId\" or \"roomName\" param provided does not match any room",
                           "error-room-not-found")
        raise NotAllowed("You are banned from this room", "error-not-allowed")
    return room, sub


def access_joined_room(user: User, room_id: str | None = None, room_name: str | None = None,
                       types: tuple[str, ...] = ("c", "p", "d")) -> tuple[Room, Membership]:
    room = find_room(room_id, room_name, types)
    sub = membership_of(user, room)
    if sub is None or sub.state != Membership.JOINED:
        if room.type != Room.CHANNEL:
            raise NotFound("The required \"roomId\" or \"roomName\" param provided does not match any room",
                           "error-room-not-found")
        raise NotAllowed("You are not a member of this room", "error-user-not-in-room")
    return room, sub


def check_room_permission(user: User, permission: str, room: Room) -> None:
    if not has_permission(user, permission, room):
        raise NotAllowed("Not allowed", "error-not-allowed")


def check_can_post(user: User, room: Room, sub: Membership | None = _UNKNOWN, *,
                   read_only_decided: bool = False) -> Membership:
    """Raise unless ``user`` may post in ``room`` now (joined, not muted/banned, room writable).

    ``sub`` is the user's membership in ``room`` if the caller fetched it in this request (None:
    known to have none); it must be that exact row, else it is read again. ``read_only_decided``:
    whether a read-only room admits the user was decided elsewhere (a federated message, which
    Matrix's power levels authorised), so only membership, archive and mute are checked.
    """
    if sub is _UNKNOWN or (sub is not None and (sub.room_id != room.id or sub.user_id != user.id)):
        sub = membership_of(user, room)
    if sub is None or sub.state != Membership.JOINED or sub.banned:
        raise NotAllowed("You must join this room to post in it", "error-not-allowed")
    if room.archived:
        raise NotAllowed("This room is archived", "error-room-archived")
    if sub.muted:
        raise NotAllowed("You have been muted and cannot post in this room", "error-user-muted")
    if (room.read_only or room.broadcast) and not read_only_decided and not has_permission(user, "post-readonly", room):
        raise NotAllowed("This room is read only", "error-room-read-only")
    return sub


def access_message(user: User, message_id: str | None) -> Message:
    if not message_id:
        raise ApiError('The required "msgId" param is missing.', "error-invalid-params")
    msg = Message.objects.select_related("room", "user").filter(id=message_id).first()
    if msg is None or not can_read(user, msg.room):
        raise NotFound(f'No message found with the id of "{message_id}".', "error-message-not-found")
    return msg


def hidden_history(room: Room, sub: Membership | None) -> Q | None:
    """The messages of ``room`` a reader with membership ``sub`` may not see (a filter to
    exclude), or None when they may see all.

    Rule (Matrix's history visibility, per message): a message sent while the room's setting was
    ``invited`` or ``joined`` is hidden from a member who was invited / joined only after it (and
    from anyone who is not a member); messages sent while it was ``shared`` or ``world_readable``
    are visible to every reader. The periods come from the room's visibility-change system
    messages; before the first one the room was ``shared``.
    """
    changes = list(Message.objects.filter(room=room, type=Room.HISTORY_VISIBILITY_MESSAGE)
                   .order_by("created_at", "id").values_list("created_at", "text"))
    if not changes:
        return None
    joined = sub is not None and sub.state == Membership.JOINED
    since = (sub.joined_since or sub.joined_at) if joined and sub is not None else None
    invited = (sub.invited_at or since) if sub is not None and joined else None
    hidden = Q()
    any_hidden = False
    for i, (start, vis) in enumerate(changes):
        end: datetime | None = changes[i + 1][0] if i + 1 < len(changes) else None
        floor = since if vis == Room.JOINED_ONLY else invited if vis == Room.INVITED_ONLY else start
        if vis not in (Room.JOINED_ONLY, Room.INVITED_ONLY) or (floor is not None and floor <= start):
            continue
        upto = floor if floor is not None and (end is None or floor < end) else end
        hidden |= Q(created_at__gt=start, created_at__lt=upto) if upto is not None else Q(created_at__gt=start)
        any_hidden = True
    return hidden if any_hidden else None
