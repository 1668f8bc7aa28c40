"""``teams.*``: teams, their members (the main room's) and their rooms, as Rocket.Chat answers them.

Views parse, fetch the team with :func:`team_param`, check the permission on the team's main room
(room roles of the main room count, as Rocket.Chat scopes team permissions to it) and call one
action of :mod:`rooms.actions.teams`. Rocket.Chat's ``unauthorized`` refusals answer 403 with
``error: "unauthorized"``; its team-service refusals 400 with the code as ``error``.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Count, Q, QuerySet
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import User
from accounts.permissions import has_permission
from chat.api import ApiView, bool_param, list_param, ok, pagination, param, str_param
from chat.api_errors import ApiError, NotAllowed
from rooms.access import can_read
from rooms.actions.teams import (
    do_add_team_members,
    do_add_team_rooms,
    do_create_team,
    do_delete_team,
    do_remove_team_member,
    do_remove_team_room,
    do_set_team_member_roles,
    do_set_team_room_default,
    team_error,
    team_member,
)
from rooms.models import Membership, Room, Team
from rooms.serialization import iso, room_json, rooms_json, user_brief


def unauthorized(message: str = "unauthorized") -> NotAllowed:
    """Rocket.Chat's ``API.v1.unauthorized()``: a 403 whose ``error`` is ``unauthorized``."""
    return NotAllowed(message, "error-unauthorized")


def team_json(team: Team) -> dict[str, Any]:
    """A team as Rocket.Chat shows it: ``{_id, name, type, roomId, createdAt, createdBy, _updatedAt}``."""
    by = team.created_by
    return {"_id": team.id, "name": team.name, "type": team.type, "roomId": team.main_room_id,
            "createdAt": iso(team.created_at), "_updatedAt": iso(team.updated_at),
            "createdBy": {"_id": by.id, "username": by.username} if by is not None else None}


def _teams_with_counts(qs: QuerySet[Team], offset: int, count: int) -> tuple[list[dict[str, Any]], int]:
    """A page of teams with Rocket.Chat's ``rooms`` (rooms in the team, the main one included)
    and ``numberOfUsers`` (joined members of the main room), and the total; three queries."""
    total = qs.count()
    page = list(qs.select_related("created_by").order_by("name")[offset:offset + count])
    rooms = dict(Room.objects.filter(team_id__in=[t.id for t in page]).values("team_id")
                 .annotate(n=Count("id")).values_list("team_id", "n"))
    users = dict(Membership.objects.filter(room_id__in=[t.main_room_id for t in page], state=Membership.JOINED)
                 .values("room_id").annotate(n=Count("id")).values_list("room_id", "n"))
    return [{**team_json(t), "rooms": rooms.get(t.id, 0), "numberOfUsers": users.get(t.main_room_id, 0)}
            for t in page], total


def team_param(request: Request, *, not_found: str = "team-does-not-exist") -> Team:
    """The team named by ``teamId`` or ``teamName``; Rocket.Chat's failure when there is none."""
    team_id = str_param(request, "teamId", max_length=64)
    team_name = str_param(request, "teamName", max_length=255)
    if not team_id and not team_name:
        raise ApiError('The parameter "teamId" or "teamName" is required', "error-invalid-params")
    qs = Team.objects.select_related("main_room", "created_by")
    team = qs.filter(id=team_id).first() if team_id else qs.filter(name=team_name).first()
    if team is None:
        raise ApiError(not_found, not_found)
    return team


def _check(user: User, permission: str, team: Team, message: str = "unauthorized") -> None:
    if not has_permission(user, permission, team.main_room):
        raise unauthorized(message)


def _user_by_id_or_name(ident: str) -> User | None:
    return User.objects.filter(Q(id=ident) | Q(username=ident.lstrip("@")), is_active=True).first()


class CreateView(ApiView):
    """``teams.create {name, type: 0|1, members?: [id or username], room?: {readOnly, extraData},
    owner?: userId}`` (``create-team``): ``{team}``."""

    def post(self, request: Request) -> Response:
        if not has_permission(request.user, "create-team"):
            raise unauthorized()
        name = str_param(request, "name", required=True, max_length=100) or ""
        raw_type = param(request, "type")
        if isinstance(raw_type, bool) or str(raw_type) not in ("0", "1"):
            raise ApiError('"type" must be 0 (public) or 1 (private)', "error-invalid-params")
        members = []
        for ident in list_param(request, "members"):
            user = _user_by_id_or_name(ident)
            if user is not None:  # as Rocket.Chat: unknown members are left out
                members.append(user)
        owner = None
        owner_id = str_param(request, "owner", max_length=64)
        if owner_id:
            owner = User.objects.filter(id=owner_id, is_active=True).first()
            if owner is None:
                raise team_error("invalid-user")
        room = param(request, "room") or {}
        extra = room.get("extraData") if isinstance(room, dict) else None
        if not isinstance(room, dict) or not isinstance(extra or {}, dict):
            raise ApiError('"room" must be an object', "error-invalid-params")
        extra = extra or {}
        team = do_create_team(request.user, name, int(str(raw_type)), members=members, owner=owner,
                              read_only=bool(room.get("readOnly", False)), broadcast=bool(extra.get("broadcast")),
                              topic=str(extra.get("topic") or ""), description=str(extra.get("description") or ""))
        return ok(team=team_json(team))


class ListView(ApiView):
    """``teams.list``: the teams the caller is a member of, ``{teams, total, count, offset}``."""

    def get(self, request: Request) -> Response:
        offset, count = pagination(request)
        qs = Team.objects.filter(main_room_id__in=Membership.objects.filter(
            user=request.user, state=Membership.JOINED).values("room_id"))
        teams, total = _teams_with_counts(qs, offset, count)
        return ok(teams=teams, total=total, count=len(teams), offset=offset)


class ListAllView(ApiView):
    """``teams.listAll`` (``view-all-teams``): every team."""

    def get(self, request: Request) -> Response:
        if not has_permission(request.user, "view-all-teams"):
            raise unauthorized()
        offset, count = pagination(request)
        teams, total = _teams_with_counts(Team.objects.all(), offset, count)
        return ok(teams=teams, total=total, count=len(teams), offset=offset)


class InfoView(ApiView):
    """``teams.info?teamId|teamName``: ``{teamInfo}`` for whoever may read the main room (or holds
    ``view-all-teams``)."""

    def get(self, request: Request) -> Response:
        team = team_param(request, not_found="Team not found")
        if not can_read(request.user, team.main_room) and not has_permission(request.user, "view-all-teams"):
            raise unauthorized()
        return ok(teamInfo=team_json(team))


class MembersView(ApiView):
    """``teams.members?teamId|teamName&username&name&status[]``: the main room's joined members as
    ``{user, roles, createdBy, createdAt}``; empty for a non-member without ``view-all-teams``."""

    def get(self, request: Request) -> Response:
        offset, count = pagination(request)
        team = team_param(request)
        if team_member(team, request.user) is None and not has_permission(request.user, "view-all-teams",
                                                                          team.main_room):
            return ok(members=[], total=0, count=0, offset=offset)
        qs = (Membership.objects.filter(room_id=team.main_room_id, state=Membership.JOINED, user__is_active=True)
              .select_related("user", "invited_by").order_by("joined_at", "id"))
        if username := str_param(request, "username", max_length=255):
            qs = qs.filter(user__username__icontains=username)
        if name := str_param(request, "name", max_length=255):
            qs = qs.filter(Q(user__name__icontains=name) | Q(user__username__icontains=name))
        if statuses := list_param(request, "status"):
            qs = qs.filter(user__status__in=statuses)
        total = qs.count()
        members = [{
            "user": {"_id": m.user.id, "username": m.user.username, "name": m.user.display_name,
                     "status": m.user.status},
            "roles": list(m.roles),
            "createdBy": user_brief(m.invited_by or m.user),
            "createdAt": iso(m.joined_at),
        } for m in qs[offset:offset + count]]
        return ok(members=members, total=total, count=len(members), offset=offset)


def _members_param(request: Request) -> list[tuple[User, list[str]]]:
    raw = param(request, "members")
    if not isinstance(raw, list) or not raw:
        raise ApiError('The "members" param must be a non-empty list of {userId, roles?}', "error-invalid-params")
    out: list[tuple[User, list[str]]] = []
    for entry in raw:
        if not isinstance(entry, dict) or not isinstance(entry.get("userId"), str):
            raise ApiError('Each of "members" must be an object with a "userId"', "error-invalid-params")
        roles = entry.get("roles") or []
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise ApiError('"roles" must be a list of strings', "error-invalid-params")
        user = User.objects.filter(id=entry["userId"], is_active=True).first()
        if user is None:
            raise team_error("invalid-user")
        out.append((user, roles))
    return out


class AddMembersView(ApiView):
    """``teams.addMembers {teamId|teamName, members: [{userId, roles?}]}`` (``add-team-member`` or
    ``edit-team-member``)."""

    def post(self, request: Request) -> Response:
        team = team_param(request)
        if not (has_permission(request.user, "add-team-member", team.main_room)
                or has_permission(request.user, "edit-team-member", team.main_room)):
            raise unauthorized()
        do_add_team_members(team, _members_param(request), by=request.user)
        return ok()


class UpdateMemberView(ApiView):
    """``teams.updateMember {teamId|teamName, member: {userId, roles}}`` (``edit-team-member``):
    the member's team roles become ``roles``."""

    def post(self, request: Request) -> Response:
        team = team_param(request)
        _check(request.user, "edit-team-member", team)
        member = param(request, "member")
        if not isinstance(member, dict) or not isinstance(member.get("userId"), str):
            raise ApiError('The "member" param must be an object with a "userId"', "error-invalid-params")
        roles = member.get("roles") or []
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise ApiError('"roles" must be a list of strings', "error-invalid-params")
        user = User.objects.filter(id=member["userId"]).first()
        if user is None:
            raise team_error("invalid-user")
        do_set_team_member_roles(team, user, roles, by=request.user)
        return ok()


class RemoveMemberView(ApiView):
    """``teams.removeMember {teamId|teamName, userId, rooms?}`` (``edit-team-member``)."""

    def post(self, request: Request) -> Response:
        team = team_param(request)
        _check(request.user, "edit-team-member", team)
        user_id = str_param(request, "userId", required=True, max_length=64) or ""
        user = User.objects.filter(id=user_id, is_active=True).first()
        if user is None:
            raise team_error("invalid-user")
        do_remove_team_member(team, user, by=request.user, rooms=list_param(request, "rooms"))
        return ok()


class LeaveView(ApiView):
    """``teams.leave {teamId|teamName, rooms?}``: the caller leaves the team (and those rooms)."""

    def post(self, request: Request) -> Response:
        team = team_param(request)
        do_remove_team_member(team, request.user, by=request.user, rooms=list_param(request, "rooms"))
        return ok()


class AddRoomsView(ApiView):
    """``teams.addRooms {teamId|teamName, rooms: [roomId]}`` (``add-team-channel``): ``{rooms}``."""

    def post(self, request: Request) -> Response:
        team = team_param(request)
        _check(request.user, "add-team-channel", team, "error-no-permission-team-channel")
        ids = list_param(request, "rooms")
        if not ids:
            raise ApiError('The "rooms" param must be a non-empty list of room ids', "error-invalid-params")
        rooms = []
        for room_id in dict.fromkeys(ids):
            room = Room.objects.filter(id=room_id).first()
            if room is None or not can_read(request.user, room):
                raise team_error("invalid-room")
            rooms.append(room)
        return ok(rooms=rooms_json(do_add_team_rooms(team, rooms, by=request.user)))


class RemoveRoomView(ApiView):
    """``teams.removeRoom {teamId|teamName, roomId}`` (``remove-team-channel``): ``{room}``."""

    def post(self, request: Request) -> Response:
        team = team_param(request)
        _check(request.user, "remove-team-channel", team)
        room = Room.objects.filter(id=str_param(request, "roomId", required=True, max_length=64)).first()
        if room is None or (not can_read(request.user, room)
                            and not has_permission(request.user, "view-all-team-channels", team.main_room)):
            raise team_error("invalid-room")
        return ok(room=room_json(do_remove_team_room(team, room, by=request.user)))


class UpdateRoomView(ApiView):
    """``teams.updateRoom {roomId, isDefault}`` (``edit-team-channel``): ``{room}``; a default room
    takes every team member in."""

    def post(self, request: Request) -> Response:
        room_id = str_param(request, "roomId", required=True, max_length=64)
        is_default = bool_param(request, "isDefault")
        if is_default is None:
            raise ApiError('The "isDefault" param is required', "error-invalid-params")
        room = Room.objects.filter(id=room_id).first()
        if room is None:
            raise team_error("invalid-room")
        team = Team.objects.select_related("main_room").filter(id=room.team_id).first()
        if team is None:
            raise team_error("room-not-on-team")
        _check(request.user, "edit-team-channel", team)
        if not can_read(request.user, room) and not has_permission(request.user, "view-all-team-channels",
                                                                   team.main_room):
            raise team_error("invalid-room")
        return ok(room=room_json(do_set_team_room_default(room, is_default, by=request.user)))


class ListRoomsView(ApiView):
    """``teams.listRooms?teamId|teamName&filter&type=autoJoin``: the team's rooms (not the main
    one), sorted by name: all of them with ``view-all-team-channels``, else public ones and those
    the caller is in. A private team's rooms are for its members (or ``view-all-teams``)."""

    def get(self, request: Request) -> Response:
        offset, count = pagination(request)
        team = team_param(request)
        user = request.user
        if (team.type == Team.PRIVATE and team_member(team, user) is None
                and not has_permission(user, "view-all-teams", team.main_room)):
            raise team_error("user-not-on-private-team")
        qs = Room.objects.filter(team=team, team_main=False)
        if not has_permission(user, "view-all-team-channels", team.main_room):
            qs = qs.filter(Q(type=Room.CHANNEL) | Q(memberships__user=user, memberships__state=Membership.JOINED))
        if text := (str_param(request, "filter", max_length=255) or "").strip():
            qs = qs.filter(Q(name__icontains=text) | Q(fname__icontains=text))
        if str_param(request, "type", max_length=32) == "autoJoin":
            qs = qs.filter(team_default=True)
        qs = qs.distinct().select_related("creator").order_by("name", "id")
        total = qs.count()
        rooms = rooms_json(qs[offset:offset + count])
        return ok(rooms=rooms, total=total, count=len(rooms), offset=offset)


class DeleteView(ApiView):
    """``teams.delete {teamId|teamName, roomsToRemove?}`` (``delete-team``): the main room and the
    listed rooms are deleted; the team's other rooms stay."""

    def post(self, request: Request) -> Response:
        team = team_param(request)
        _check(request.user, "delete-team", team)
        do_delete_team(team, by=request.user, rooms_to_remove=list_param(request, "roomsToRemove"))
        return ok()


class AutocompleteView(ApiView):
    """``teams.autocomplete?name``: up to 10 teams whose main room's name starts so, among public
    teams and those the caller is in: ``{teams: [{_id, name, fname, t, teamId}]}`` (main rooms)."""

    def get(self, request: Request) -> Response:
        name = (str_param(request, "name", required=True, max_length=255) or "").strip()
        qs = (Room.objects.filter(team_main=True)
              .filter(Q(name__istartswith=name) | Q(fname__istartswith=name))
              .filter(Q(type=Room.CHANNEL) | Q(memberships__user=request.user,
                                               memberships__state=Membership.JOINED))
              .distinct().order_by("name", "fname")[:10])
        return ok(teams=[{"_id": r.id, "name": r.name, "fname": r.fname or r.name, "t": r.type, "teamId": r.team_id}
                         for r in qs])

