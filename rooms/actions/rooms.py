"""Creating rooms and DMs, changing their settings, archiving and deleting them."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

from django.db import transaction

from chat.api_errors import ApiError
from federation import hooks as federation_hooks
from rooms.actions.memberships import add_system_message, do_add_member, notify_subscription
from rooms.events import LiveEvent, send_to_room, send_to_user
from rooms.models import Membership, Room
from rooms.serialization import room_json

if TYPE_CHECKING:
    from accounts.models import User

ROOM_NAME_RE = re.compile(r"^[\w\-.]{1,100}$", re.UNICODE)


def check_room_name(name: str, *, exclude: Room | None = None) -> str:
    name = (name or "").strip().lstrip("#")
    if not name:
        raise ApiError("Param \"name\" is required", "error-param-not-provided")
    if not ROOM_NAME_RE.match(name):
        raise ApiError(f"{name} is not a valid room name", "error-invalid-room-name", channel_name=name)
    qs = Room.objects.filter(name=name).exclude(type=Room.DIRECT)
    if exclude is not None:
        qs = qs.exclude(id=exclude.id)
    if qs.exists():
        raise ApiError(f"A channel with name '{name}' exists", "error-duplicate-channel-name", channel_name=name)
    return name


@transaction.atomic
def do_create_room(creator: User, room_type: str, name: str, *, members: Iterable[User] = (),
                   read_only: bool = False, broadcast: bool = False, topic: str = "",
                   description: str = "", announcement: str = "") -> Room:
    """Create a channel (``c``) or private group (``p``) owned by ``creator`` with initial members."""
    if room_type not in (Room.CHANNEL, Room.GROUP):
        raise ApiError("Invalid room type", "error-invalid-room-type")
    name = check_room_name(name)
    room = Room.objects.create(type=room_type, name=name, fname=name, creator=creator, read_only=read_only or broadcast,
                               broadcast=broadcast, topic=topic, description=description,
                               announcement=announcement)
    do_add_member(room, creator, roles=["owner"], system_message=False)
    for member in members:
        if member != creator:
            do_add_member(room, member, by=creator)
    return room


@transaction.atomic
def do_create_portal_room(room_type: str, *, creator: User, name: str = "", fname: str = "", topic: str = "",
                          dm_key: str = "") -> Room:
    """The chat room that mirrors a Matrix room from another server (no members yet: the
    federation bridge adds them with :func:`do_add_member` as the Matrix room says). ``name`` must
    already be free (see :func:`free_room_name`)."""
    if room_type not in (Room.CHANNEL, Room.GROUP, Room.DIRECT):
        raise ApiError("Invalid room type", "error-invalid-room-type")
    return Room.objects.create(type=room_type, name=name, fname=fname[:255], topic=topic, creator=creator,
                               dm_key=dm_key)


def free_room_name(base: str, *, for_room: Room | None = None) -> str:
    """``base`` or ``base-2``, ``base-3``...: the first name no other channel or group has
    (``for_room`` keeps its own)."""
    candidate, n = base, 1
    others = Room.objects.exclude(type=Room.DIRECT)
    if for_room is not None:
        others = others.exclude(id=for_room.id)
    while others.filter(name=candidate).exists():
        n += 1
        candidate = f"{base}-{n}"
    return candidate


@transaction.atomic
def do_set_display_name(room: Room, fname: str) -> None:
    """Set the name shown for a room (``fname``) without touching its handle (a portal's Matrix name)."""
    Room.objects.filter(id=room.id).update(fname=fname[:255])
    room.fname = fname[:255]
    _room_updated(room)


def dm_key_for(users: list[User]) -> str:
    """What identifies the DM of exactly these people (in any order, repeats ignored)."""
    return ",".join(sorted({u.id for u in users}))


def find_dm(users: list[User]) -> Room | None:
    """The existing DM of exactly these people, if any."""
    return Room.objects.filter(type=Room.DIRECT, dm_key=dm_key_for(users)).first()


@transaction.atomic
def do_get_or_create_dm(creator: User, others: list[User]) -> tuple[Room, bool]:
    """The DM between ``creator`` and ``others`` (1:1 or multi-user), created when missing.

    The same set of people always finds the same room; a DM with oneself is allowed (notes to self).
    """
    people = {creator.id: creator}
    for u in others:
        people[u.id] = u
    key = dm_key_for([creator, *others])
    room = Room.objects.filter(type=Room.DIRECT, dm_key=key).first()
    created = room is None
    if room is None:
        room = Room.objects.create(type=Room.DIRECT, creator=creator, dm_key=key,
                                   name="", fname="")
    for user in people.values():
        sub = Membership.objects.filter(room=room, user=user).select_related("room").first()
        if user.is_remote and user != creator:
            continue  # remote people are invited over federation (federation.bridge.memberships)
        if sub is None or sub.state != Membership.JOINED:
            do_add_member(room, user, system_message=False)
        elif not sub.open:
            sub.open_flag = True
            sub.save(update_fields=["open_flag", "updated_at"])
            notify_subscription(sub)
    return room, created


def _room_updated(room: Room) -> None:
    send_to_room(room.id, LiveEvent("room.updated", room.id, room_json(room)))


ROOM_SETTING_MESSAGES = {
    "topic": "room_changed_topic",
    "description": "room_changed_description",
    "announcement": "room_changed_announcement",
}


@transaction.atomic
def do_change_room_setting(room: Room, field: str, value: str | bool, *, by: User) -> Room:
    """Change ``topic``, ``description``, ``announcement``, ``read_only``, ``broadcast``,
    ``history_visibility`` or the name."""
    room = Room.objects.select_for_update().get(id=room.id)
    if field == "name":
        name = check_room_name(str(value), exclude=room)
        room.name = room.fname = name
        room.save(update_fields=["name", "fname", "updated_at"])
        add_system_message(room, by, "r", name)
    elif field in ROOM_SETTING_MESSAGES:
        text = str(value)
        if len(text) > 10000:
            raise ApiError(f"The {field} is too long (at most 10,000 characters)", "error-invalid-params")
        setattr(room, field, text)
        room.save(update_fields=[field, "updated_at"])
        add_system_message(room, by, ROOM_SETTING_MESSAGES[field], text)
    elif field in ("read_only", "broadcast"):
        setattr(room, field, bool(value))
        if field == "broadcast" and value:
            room.read_only = True
        room.save(update_fields=["read_only", "broadcast", "updated_at"])
        add_system_message(room, by, "room-set-read-only" if room.read_only else "room-removed-read-only", "")
    elif field == "history_visibility":
        if value not in dict(Room.HISTORY_VISIBILITIES):
            raise ApiError('"historyVisibility" must be one of "shared", "invited", "joined" or "world_readable"',
                           "error-invalid-params")
        if value == room.history_visibility:
            return room
        room.history_visibility = str(value)
        room.save(update_fields=["history_visibility", "updated_at"])
        add_system_message(room, by, Room.HISTORY_VISIBILITY_MESSAGE, str(value))
    else:
        raise ApiError(f"Unknown room setting {field}", "error-invalid-params")
    _room_updated(room)
    federation_hooks.room_setting_changed(room, field, by)
    return room


MAX_CUSTOM_FIELDS_BYTES = 10_000


@transaction.atomic
def do_set_custom_fields(room: Room, fields: dict[str, object], *, by: User) -> Room:
    """Replace the room's Rocket.Chat ``customFields`` (an object of at most 10,000 bytes of JSON).

    They are the chat's own data: not part of the room's Matrix state, so not federated."""
    import json

    if not isinstance(fields, dict):
        raise ApiError('The bodyParam "customFields" is required with a type like object.', "error-invalid-params")
    if len(json.dumps(fields, ensure_ascii=False).encode()) > MAX_CUSTOM_FIELDS_BYTES:
        raise ApiError("The custom fields are too large (at most 10,000 bytes of JSON)", "error-invalid-params")
    room = Room.objects.select_for_update().get(id=room.id)
    room.custom_fields = fields
    room.save(update_fields=["custom_fields", "updated_at"])
    _room_updated(room)
    return room


@transaction.atomic
def do_set_join_code(room: Room, code: str, *, federated: bool) -> Room:
    """Set (or, empty, remove) a channel's join code. A federated channel cannot have one: other
    Matrix servers join public rooms without any code."""
    room = Room.objects.select_for_update().get(id=room.id)
    if room.type != Room.CHANNEL:
        raise ApiError("Only public channels have join codes", "error-action-not-allowed")
    if code and federated:
        raise ApiError("A federated channel cannot have a join code: other servers join public rooms without one",
                       "error-not-allowed")
    if len(code) > 255:
        raise ApiError("The join code is too long", "error-invalid-params")
    room.join_code = code
    room.save(update_fields=["join_code", "updated_at"])
    _room_updated(room)
    return room


@transaction.atomic
def do_set_default(room: Room, default: bool) -> Room:
    """Mark a channel or group as default (new users join it) or not (Rocket.Chat's ``default``)."""
    room = Room.objects.select_for_update().get(id=room.id)
    if room.type == Room.DIRECT:
        raise ApiError("A direct message cannot be a default room", "error-action-not-allowed")
    room.default = default
    room.save(update_fields=["default", "updated_at"])
    _room_updated(room)
    return room


@transaction.atomic
def do_set_room_type(room: Room, room_type: str, *, by: User) -> Room:
    """Turn a public channel into a private group or back (Rocket.Chat's ``setType``).

    Guarantees: only ``c`` <-> ``p`` (a DM never changes type, nothing becomes a DM); members,
    roles and history are kept; setting the current type again is an error, as in Rocket.Chat.
    """
    room = Room.objects.select_for_update().get(id=room.id)
    if room.type == Room.DIRECT or room_type not in (Room.CHANNEL, Room.GROUP):
        raise ApiError("The room type is not valid: it must be \"c\" or \"p\"", "error-invalid-room-type")
    if room.type == room_type:
        raise ApiError("The room type is the same as what it would be changed to.", "error-invalid-room-type")
    room.type = room_type
    room.save(update_fields=["type", "updated_at"])
    add_system_message(room, by, "room_changed_privacy", "public" if room_type == Room.CHANNEL else "private")
    _room_updated(room)
    federation_hooks.room_setting_changed(room, "type", by)
    return room


@transaction.atomic
def do_set_archived(room: Room, archived: bool, *, by: User) -> None:
    room = Room.objects.select_for_update().get(id=room.id)
    if room.archived == archived:
        raise ApiError("Room is already archived" if archived else "Room is not archived",
                       "error-room-archived" if archived else "error-room-not-archived")
    room.archived = archived
    room.save(update_fields=["archived", "updated_at"])
    add_system_message(room, by, "room-archived" if archived else "room-unarchived", "")
    _room_updated(room)


@transaction.atomic
def do_delete_room(room: Room, *, by: User) -> None:
    member_ids = list(room.memberships.values_list("user_id", flat=True))
    room_id = room.id
    send_to_room(room_id, LiveEvent("room.deleted", room_id, {"_id": room_id}))
    for uid in member_ids:
        send_to_user(uid, LiveEvent("subscription.removed", room_id, {"rid": room_id}))
    room.delete()
