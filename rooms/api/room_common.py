"""What the room-level REST endpoints (``channels.*``, ``groups.*``, ``dm.*``/``im.*``) share.

Design: Rocket.Chat has three near-identical endpoint families that differ only in the room type
they address and the key their answers use (``channel``/``group``/``room``). Rather than three
copies, every view is written once and parameterised by a :class:`RoomKind` given in the URL
configuration (``View.as_view(kind=GROUPS)``). A room of another type is "not found" through a
family, exactly as in Rocket.Chat (``groups.info`` on a public channel fails), which also means a
private group or a DM is never revealed through ``channels.*``.

The helpers here only parse parameters and fetch with permission (through :mod:`rooms.access`);
state changes stay in ``rooms.actions``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from django.utils.dateparse import parse_datetime
from rest_framework.request import Request

from accounts.api.views import find_user
from accounts.models import User
from accounts.permissions import has_permission
from chat.api import ApiView, list_param, param, str_param
from chat.api_errors import ApiError, NotAllowed, NotFound
from federation.api.rest import user_for_matrix_id
from rooms.access import access_joined_room, access_room_for_read
from rooms.models import Membership, Room

if TYPE_CHECKING:
    from collections.abc import Sequence

ROOM_NOT_FOUND = 'The required "roomId" or "roomName" param provided does not match any room'


@dataclass(frozen=True)
class RoomKind:
    """One endpoint family: which room type it addresses and how its answers name rooms.

    Attributes:
        type: ``c``, ``p`` or ``d``.
        key: the answer key of one room (``channel``, ``group``, ``room``).
        list_key: the answer key of a list of rooms (``channels``, ``groups``, ``ims``).
        create_permission: the permission needed to create such a room.
        delete_permission: the permission needed to delete one (empty: not deletable by REST).
    """

    type: str
    key: str
    list_key: str
    create_permission: str
    delete_permission: str

    @property
    def types(self) -> tuple[str, ...]:
        return (self.type,)


CHANNELS = RoomKind(Room.CHANNEL, "channel", "channels", "create-c", "delete-c")
GROUPS = RoomKind(Room.GROUP, "group", "groups", "create-p", "delete-p")
DMS = RoomKind(Room.DIRECT, "room", "ims", "create-d", "delete-d")


def _contains_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_contains_nul(k) or _contains_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_contains_nul(v) for v in value)
    return False


class RoomApiView(ApiView):
    """Base of the room-level views: ``kind`` is set per route by ``as_view(kind=...)``.

    Guarantees: after authentication, a request carrying a NUL character in any parameter is
    refused with ``error-invalid-params`` (PostgreSQL cannot store or even compare it, so it would
    otherwise surface as a server error deep inside a query).
    """

    kind: RoomKind = CHANNELS

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        values: list[Any] = [v for _k, vs in request.query_params.lists() for v in vs]
        if request.method not in ("GET", "HEAD"):
            data = request.data
            values.append(dict(data) if hasattr(data, "items") else data)
        if _contains_nul(values):
            raise ApiError("Parameters must not contain NUL characters", "error-invalid-params")


def check_permission(user: User, permission: str, room: Room | None = None) -> None:
    """Raise a Rocket.Chat ``error-not-allowed`` (400, as its methods answer) unless ``user`` holds ``permission``."""
    if not has_permission(user, permission, room):
        raise NotAllowed("Not allowed", "error-not-allowed")


def _dm_with(user: User, username: str) -> Room:
    """The DM between ``user`` and the user named ``username``; "room not found" otherwise."""
    other = User.objects.filter(username=username.lstrip("@")).first()
    key = ",".join(sorted({user.id, other.id})) if other is not None else ""
    room = Room.objects.filter(type=Room.DIRECT, dm_key=key).first() if key else None
    if room is None:
        raise NotFound(ROOM_NOT_FOUND, "error-room-not-found")
    return room


def room_for_read(request: Request, kind: RoomKind) -> Room:
    """The room named by ``roomId``/``roomName`` (DMs: or ``username``) that the caller may read.

    Guarantees: a room of another type than ``kind``, a private group or a DM the caller is not
    in (admins excepted for groups) all answer ``error-room-not-found``, so their existence does not
    leak; a public channel the caller is banned from answers ``error-not-allowed``.
    """
    room_id = str_param(request, "roomId") or str_param(request, "rid")
    room_name = str_param(request, "roomName")
    if kind.type == Room.DIRECT and not room_id and not room_name:
        username = str_param(request, "username")
        if username:
            room_id = _dm_with(request.user, username).id
    return access_room_for_read(request.user, room_id, room_name, kind.types)


def joined_room(request: Request, kind: RoomKind) -> tuple[Room, Membership]:
    """The room named in the request together with the caller's joined membership of it."""
    room_id = str_param(request, "roomId") or str_param(request, "rid")
    return access_joined_room(request.user, room_id, str_param(request, "roomName"), kind.types)


def target_user(request: Request) -> User:
    """The user acted upon: ``userId`` or ``username`` (or a Matrix ID, with federation on)."""
    remote = user_for_matrix_id(str_param(request, "username") or str_param(request, "user") or "")
    return remote if remote is not None else find_user(request)


def target_users(request: Request) -> list[User]:
    """The users acted upon: ``userIds``/``usernames`` lists, or else one ``userId``/``username``."""
    ids = list_param(request, "userIds")
    if ids:
        users = list(User.objects.filter(id__in=ids))
        if len(users) != len(set(ids)):
            raise NotFound("One of the users was not found", "error-invalid-user")
        return users
    return [target_user(request)]


def users_by_names(names: Sequence[str]) -> list[User]:
    """Users by username (a leading ``@`` is ignored); an unknown name is an ``error-invalid-user``."""
    remote: list[User] = []
    wanted: set[str] = set()
    for name in (n.strip() for n in names if n.strip()):
        found = user_for_matrix_id(name)
        if found is not None:
            remote.append(found)
        else:
            wanted.add(name.lstrip("@"))
    users = list(User.objects.filter(username__in=wanted, is_active=True))
    missing = wanted - {u.username for u in users}
    if missing:
        raise ApiError(f"Invalid user: {sorted(missing)[0]}", "error-invalid-user")
    return users + [u for u in remote if u not in users]


def text_param(request: Request, name: str, *, max_length: int = 10000) -> str:
    """A required string parameter that may be empty (a topic can be cleared)."""
    if param(request, name) is None:
        raise ApiError(f'The bodyParam "{name}" is required', "error-invalid-params")
    return str_param(request, name, max_length=max_length) or ""


def date_param(request: Request, name: str) -> datetime | None:
    """An ISO 8601 date parameter (``latest``, ``oldest``), as an aware UTC datetime.

    A ``+`` of a UTC offset that an unencoded query string turned into a space is restored.
    """
    raw = str_param(request, name, max_length=64)
    if not raw:
        return None
    try:
        value = parse_datetime(raw.strip().replace(" ", "+"))
    except ValueError:  # well formed but impossible, e.g. month 13
        value = None
    if value is None:
        raise ApiError(f'The "{name}" query parameter must be a valid date.', "error-invalid-params")
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value


def room_answer(kind: RoomKind, room: Room, **extra: Any) -> dict[str, Any]:
    """``{<kind.key>: room_json(room), **extra}`` for :func:`chat.api.ok`."""
    from rooms.serialization import room_json

    return {kind.key: room_json(room), **extra}
