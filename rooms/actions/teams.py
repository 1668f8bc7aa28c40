"""Teams: creating and deleting them, their members (the main room's) and their rooms.

A team's members are the joined members of its main room and their team roles are their roles
there (see :mod:`rooms.models.teams`), so every membership change here goes through the
membership actions of the main room (system messages, live events and federation hooks as for
any room). Refusals use Rocket.Chat's team error codes as both message and ``errorType``
(``team-does-not-exist``, ``room-already-on-team``...), the way its team service reports them.

Teams are local: nothing here is sent over Matrix. A federated room may be added to a team (as in
Rocket.Chat, whose team service does not check); only its membership, not its team, federates.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from django.db import transaction

from chat.api_errors import ApiError
from rooms.actions.memberships import (
    ROOM_ROLES,
    add_system_message,
    do_add_member,
    do_kick,
    do_leave,
    do_set_room_role,
)
from rooms.actions.rooms import check_room_name, do_create_room, do_delete_room
from rooms.events import LiveEvent, send_to_room
from rooms.models import Membership, Room, Team
from rooms.serialization import room_json

if TYPE_CHECKING:
    from accounts.models import User

ADDED_ROOM_MESSAGE = "user-added-room-to-team"
REMOVED_ROOM_MESSAGE = "user-removed-room-from-team"


def team_error(code: str) -> ApiError:
    """A refusal in Rocket.Chat's team-service style: the code is the message and the type."""
    return ApiError(code, code)


def _room_updated(room: Room) -> None:
    send_to_room(room.id, LiveEvent("room.updated", room.id, room_json(room)))


def team_member(team: Team, user: User) -> Membership | None:
    """``user``'s joined membership of the team's main room (None: not a member of the team)."""
    return Membership.objects.filter(room_id=team.main_room_id, user=user, state=Membership.JOINED).first()


def _join_unless_banned(room: Room, user: User, by: User) -> None:
    if not Membership.objects.filter(room=room, user=user, banned=True).exists():
        do_add_member(room, user, by=by)


@transaction.atomic
def do_create_team(creator: User, name: str, team_type: int, *, members: Iterable[User] = (),
                   owner: User | None = None, read_only: bool = False, broadcast: bool = False,
                   topic: str = "", description: str = "") -> Team:
    """Create a team and its main room (a channel for a public team, a private group otherwise).

    Guarantees: the name is a valid room name used by no team (``team-name-already-exists``)
    and no room (``room-name-already-exists``); ``owner`` (default ``creator``) owns the main
    room and ``members`` join it; the main room answers ``teamMain: true`` and ``teamId``.
    """
    if team_type not in (Team.PUBLIC, Team.PRIVATE):
        raise ApiError('"type" must be 0 (public) or 1 (private)', "error-invalid-params")
    name = (name or "").strip().lstrip("#")
    if Team.objects.filter(name=name).exists():
        raise team_error("team-name-already-exists")
    if name and Room.objects.filter(name=name).exclude(type=Room.DIRECT).exists():
        raise team_error("room-name-already-exists")
    check_room_name(name)
    room_owner = owner or creator
    room = do_create_room(room_owner, Room.CHANNEL if team_type == Team.PUBLIC else Room.GROUP, name,
                          members=[m for m in members if m != room_owner], read_only=read_only,
                          broadcast=broadcast, topic=topic, description=description)
    team = Team.objects.create(name=name, type=team_type, main_room=room, created_by=creator)
    room.team, room.team_main = team, True
    room.save(update_fields=["team", "team_main", "updated_at"])
    _room_updated(room)
    return team


@transaction.atomic
def do_add_team_members(team: Team, members: Sequence[tuple[User, Sequence[str]]], *, by: User) -> None:
    """Add people to the team: each joins the main room (then the team's default rooms) and gets
    the given team roles (``owner``/``moderator``/``leader``) on top of those held.

    Guarantees: all or nothing (an unknown role or a banned user fails the whole call);
    already being a member is no error; a member banned from a default room skips that room.
    """
    main = team.main_room
    for user, roles in members:
        unknown = [r for r in roles if r not in ROOM_ROLES]
        if unknown:
            raise ApiError(f"Unknown room role {unknown[0]}", "error-invalid-role")
        sub = do_add_member(main, user, by=by)
        for role in roles:
            if role not in sub.roles:
                do_set_room_role(main, user, role, True, by=by)
        for room in Room.objects.filter(team=team, team_default=True).exclude(id=main.id):
            _join_unless_banned(room, user, by)


@transaction.atomic
def do_set_team_member_roles(team: Team, user: User, roles: Sequence[str], *, by: User) -> None:
    """Make ``roles`` exactly the member's team roles (Rocket.Chat's ``teams.updateMember``).

    Guarantees: only members (``member-does-not-exist`` otherwise) and known roles; the team
    keeps an owner (roles are granted before others are taken, and taking the last owner's
    ownership is refused as in any room).
    """
    unknown = [r for r in roles if r not in ROOM_ROLES]
    if unknown:
        raise ApiError(f"Unknown room role {unknown[0]}", "error-invalid-role")
    sub = team_member(team, user)
    if sub is None:
        raise team_error("member-does-not-exist")
    current = list(sub.roles)
    for role in roles:
        if role not in current:
            do_set_room_role(team.main_room, user, role, True, by=by)
    for role in current:
        if role in ROOM_ROLES and role not in roles:
            do_set_room_role(team.main_room, user, role, False, by=by)


@transaction.atomic
def do_remove_team_member(team: Team, user: User, *, by: User, rooms: Iterable[str] = ()) -> None:
    """Take ``user`` out of the team (``by`` themselves: they leave), and out of those of the
    team's ``rooms`` (ids) they are in.

    Guarantees: only members (``member-does-not-exist``); the team's only owner cannot go
    (``last-owner-can-not-be-removed``, even when alone, as in Rocket.Chat).
    """
    sub = team_member(team, user)
    if sub is None:
        raise team_error("member-does-not-exist")
    if "owner" in sub.roles:
        owners = [m for m in Membership.objects.filter(room_id=team.main_room_id, state=Membership.JOINED)
                  if "owner" in m.roles]
        if len(owners) <= 1:
            raise team_error("last-owner-can-not-be-removed")
    targets = [team.main_room, *Room.objects.filter(team=team, id__in=list(rooms)).exclude(id=team.main_room_id)]
    for room in targets:
        if not Membership.objects.filter(room=room, user=user, state=Membership.JOINED).exists():
            continue
        if user == by:
            do_leave(room, user, enforce_last_owner=room.id != team.main_room_id)
        else:
            do_kick(room, user, by=by, enforce_last_owner=room.id != team.main_room_id)


@transaction.atomic
def do_add_team_rooms(team: Team, rooms: Sequence[Room], *, by: User) -> list[Room]:
    """Put existing rooms in the team. Each must be a channel or group (``invalid-room``) in no
    team (``room-already-on-team``) that ``by`` owns (``error-no-owner-channel``); nothing is
    changed unless all are. A public channel added is announced in the main room."""
    for room in rooms:
        if room.type == Room.DIRECT:
            raise team_error("invalid-room")
        if room.team_id:
            raise team_error("room-already-on-team")
        roles = Membership.objects.filter(room=room, user=by, state=Membership.JOINED).values_list("roles", flat=True)
        if not any("owner" in r for r in roles):
            raise team_error("error-no-owner-channel")
    for room in rooms:
        room.team = team
        room.save(update_fields=["team", "updated_at"])
        if room.type == Room.CHANNEL:
            add_system_message(team.main_room, by, ADDED_ROOM_MESSAGE, room.name)
        _room_updated(room)
    return list(rooms)


@transaction.atomic
def do_remove_team_room(team: Team, room: Room, *, by: User) -> Room:
    """Take a room out of the team (it stays, as a room of its own). Not the main room, and only
    a room of this team (``room-not-on-that-team``)."""
    if room.team_id != team.id or room.team_main:
        raise team_error("room-not-on-that-team")
    room.team, room.team_default = None, False
    room.save(update_fields=["team", "team_default", "updated_at"])
    if room.type == Room.CHANNEL:
        add_system_message(team.main_room, by, REMOVED_ROOM_MESSAGE, room.name)
    _room_updated(room)
    return room


@transaction.atomic
def do_set_team_room_default(room: Room, is_default: bool, *, by: User) -> Room:
    """Mark a team room as one every team member is in (``teamDefault``), or not. Marking it
    adds the team's current members to it (a member banned from it excepted)."""
    if room.team_id is None:
        raise team_error("room-not-on-team")
    room.team_default = is_default
    room.save(update_fields=["team_default", "updated_at"])
    if is_default and not room.team_main:
        team = Team.objects.select_related("main_room").get(id=room.team_id)
        for sub in Membership.objects.filter(room_id=team.main_room_id, state=Membership.JOINED).select_related("user"):
            _join_unless_banned(room, sub.user, by)
    _room_updated(room)
    return room


@transaction.atomic
def do_delete_team(team: Team, *, by: User, rooms_to_remove: Iterable[str] = ()) -> None:
    """Delete the team: the listed team rooms (ids) and the main room are deleted, every other
    room of the team stays, no longer in a team."""
    remove = set(rooms_to_remove)
    for room in Room.objects.filter(team=team).exclude(id=team.main_room_id):
        if room.id in remove:
            do_delete_room(room, by=by)
        else:
            room.team, room.team_default = None, False
            room.save(update_fields=["team", "team_default", "updated_at"])
            _room_updated(room)
    do_delete_room(team.main_room, by=by)  # the team goes with its main room
