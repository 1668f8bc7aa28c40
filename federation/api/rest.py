"""REST endpoints (``/api/v1``) for federated rooms, plus the helpers the room API uses for Matrix IDs.

Endpoints
    ``POST rooms.invite`` ``{roomId, action: "accept" | "reject"}``: answer a pending invitation
        (the shape Rocket.Chat uses for federated invites). Accepting an invite to a room on
        another server joins it there (``make_join``/``send_join``); rejecting tells the inviting
        server (``make_leave``/``send_leave``).
    ``GET federation/searchPublicRooms?serverName=&roomName=&count=&pageToken=``: another server's
        public rooms (ours for our own name); ``POST federation/joinExternalPublicRoom
        {externalRoomId, serverName?}`` joins one (Rocket.Chat's names and shapes).
    ``GET rooms.federation?roomId=``: the Matrix side of a chat room (room ID, version, alias),
        ``null`` when it is not federated. ``POST rooms.federation {roomId, roomVersion?}``
        federates a room now (``10``, ``11`` or ``12``; default ``CONCORD_FEDERATION_ROOM_VERSION``).

Elsewhere (``rooms/api``): ``channels.invite`` / ``groups.invite`` / ``dm.create`` accept Matrix IDs
(``@alice:example.org``) and send a federated invite; ``channels.kick`` of an invited user revokes
the invite; ``channels.join`` with a ``roomId`` that is a Matrix room ID or alias (``!id:server`` /
``#name:server``) and optional ``via`` servers joins the remote room.
"""

from __future__ import annotations

import re

from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import User
from accounts.permissions import has_permission
from chat.api import ApiView, bool_param, list_param, ok, pagination, param, str_param
from chat.api_errors import ApiError, NotAllowed
from federation import config
from federation.bridge import directory as bridge_directory
from federation.bridge.acl import AclError, acl_of, set_server_acl
from federation.bridge.memberships import (
    MembershipError,
    accept_invite,
    decline_invite,
    invite_remote_user,
    join_remote_room,
    revoke_invite,
)
from federation.bridge.portals import ensure_portal, portal_of
from federation.bridge.users import looks_like_matrix_id, may_federate, user_for_mxid
from federation.handlers.directory import DirectoryError
from federation.protocol.room_versions import SUPPORTED_ROOM_VERSIONS
from federation.store.room_state import joined_servers
from federation.transport.errors import MatrixError
from rooms.access import access_room_for_read
from rooms.models import Membership, Room
from rooms.serialization import room_json

SERVER_NAME_RE = re.compile(r"^(?:[a-z0-9.-]{1,253}|\[[0-9a-f:.]{2,45}\])(?::[0-9]{1,5})?$")


def federation_on() -> bool:
    """Whether Matrix IDs mean anything here."""
    return config.enabled()


def user_for_matrix_id(value: str) -> User | None:
    """The chat user for a Matrix ID given to the REST API (a puppet is created for remote IDs).

    Returns None when ``value`` is not a Matrix ID or federation is off, so callers fall back to
    usernames. Raises ``error-invalid-user`` for an invalid ID or an unknown local one.
    """
    value = value.strip()
    if not federation_on() or not looks_like_matrix_id(value):
        return None
    try:
        server = value.split(":", 1)[1]
        if not config.server_allowed(server):
            raise NotAllowed(f"Federation with {server} is not allowed", "error-not-allowed")
        return user_for_mxid(value)
    except ValueError as exc:
        raise ApiError(str(exc), "error-invalid-user") from exc


def invite_remote(room: Room, user: User, by: User) -> None:
    """``*.invite`` of a remote user: a federated invite (pending on their side)."""
    try:
        invite_remote_user(room, user, by=by)
    except MembershipError as exc:
        raise ApiError(str(exc), "error-federation-invite") from exc


def accept_if_invited(room: Room, user: User) -> bool:
    """``dm.create`` of a DM someone on another server already invited ``user`` to: accept that
    invitation (joining over federation) instead of opening a second room. Returns whether it did."""
    if not Membership.objects.filter(room=room, user=user, state=Membership.INVITED).exists():
        return False
    try:
        accept_invite(room, user)
    except MembershipError as exc:
        raise ApiError(str(exc), "error-federation-invite") from exc
    return True


def revoke_if_invited(room: Room, user: User, by: User) -> bool:
    """``*.kick`` of a user whose invitation is pending: withdraw it. Returns whether it did."""
    if not Membership.objects.filter(room=room, user=user, state=Membership.INVITED).exists():
        return False
    revoke_invite(room, user, by=by)
    return True


def is_matrix_room_ref(value: str | None) -> bool:
    """``!id:server`` (``!id`` alone in room v12, where the ID is the create event's hash) or
    ``#alias:server``. Chat room IDs never start with ``!`` or ``#``."""
    if not value or len(value) < 2:
        return False
    return value[0] == "!" or (value[0] == "#" and ":" in value[1:])


def join_matrix_room(user: User, target: str, via: list[str], *, room_name: str = "",
                     page_token: str | None = None) -> Room:
    """Join a remote room by ID or alias (``channels.join``, ``federation/joinExternalPublicRoom``).

    As in Rocket.Chat, a room that the directory of the server joined through (the first of
    ``via``, else the room's or alias's own server) lists with more members than
    ``CONCORD_FEDERATION_MAX_REMOTE_ROOM_SIZE`` (100; 0: no cap) is refused, except for federation
    admins. A room missing from that directory (private, unlisted) cannot be sized before joining
    and is not refused.
    """
    if not federation_on():
        raise ApiError("Federation is not enabled on this server", "error-federation-disabled")
    cap = config.max_remote_room_size()
    server = via[0] if via else (target.split(":", 1)[1] if ":" in target else "")
    if cap and server and server != config.server_name() and not has_permission(user, "manage-federation"):
        size = _listed_size(server.lower(), target, room_name, page_token)
        if size is not None and size > cap:
            raise ApiError(f"This room has {size} members; this server lets you join rooms of at most {cap} "
                           "from other servers", "error-room-too-large")
    try:
        return join_remote_room(user, target, via)
    except MembershipError as exc:
        raise ApiError(str(exc), "error-federation-join") from exc


class InviteAnswerView(ApiView):
    """``rooms.invite``: ``{roomId, action: accept|reject}``."""

    def post(self, request: Request) -> Response:
        room_id = str_param(request, "roomId") or ""
        action = str_param(request, "action") or ""
        if action not in ("accept", "reject"):
            raise ApiError('"action" must be "accept" or "reject"', "error-invalid-params")
        room = Room.objects.filter(id=room_id).first()
        if room is None or not Membership.objects.filter(room=room, user=request.user,
                                                         state=Membership.INVITED).exists():
            raise ApiError("There is no pending invitation to this room", "error-no-invitation")
        try:
            if action == "accept":
                accept_invite(room, request.user)
            else:
                decline_invite(room, request.user)
        except MembershipError as exc:
            raise ApiError(str(exc), "error-federation-invite") from exc
        room.refresh_from_db()
        return ok(room=room_json(room))


class RoomFederationView(ApiView):
    """``rooms.federation``: read (GET) or create (POST) the Matrix side of a chat room."""

    def _room(self, request: Request) -> Room:
        return access_room_for_read(request.user, str_param(request, "roomId"), None, ("c", "p", "d"))

    def get(self, request: Request) -> Response:
        room = self._room(request)
        mroom = portal_of(room)
        if mroom is None:
            return ok(federation=None)
        alias = mroom.aliases.values_list("alias", flat=True).first()
        return ok(federation={"roomId": mroom.room_id, "roomVersion": mroom.room_version, "alias": alias,
                              "servers": joined_servers(mroom), "serverAcl": acl_of(mroom)})

    def post(self, request: Request) -> Response:
        if not federation_on():
            raise ApiError("Federation is not enabled on this server", "error-federation-disabled")
        if not may_federate(request.user):
            raise NotAllowed("Not allowed to federate rooms", "error-not-allowed")
        room = self._room(request)
        version = str_param(request, "roomVersion")
        if version and version not in SUPPORTED_ROOM_VERSIONS:
            raise ApiError(f"Unsupported room version {version}", "error-invalid-params")
        mroom = ensure_portal(room, version=version or None, by=request.user)
        alias = mroom.aliases.values_list("alias", flat=True).first()
        return ok(federation={"roomId": mroom.room_id, "roomVersion": mroom.room_version, "alias": alias})


class RoomServerAclView(ApiView):
    """``rooms.setServerAcl {roomId, allow[], deny[], allowIpLiterals}`` (our extension): the
    federated room's ``m.room.server_acl``, for its owners (and admins). ``allow`` empty: every
    server not denied. Answers ``{serverAcl: {allow, deny, allowIpLiterals, servers}}``."""

    def post(self, request: Request) -> Response:
        room = access_room_for_read(request.user, str_param(request, "roomId"), None, ("c", "p"))
        sub = Membership.objects.filter(room=room, user=request.user, state=Membership.JOINED).first()
        if not ((sub is not None and "owner" in sub.roles) or has_permission(request.user, "view-room-administration")):
            raise NotAllowed("Only the room's owners change its server ACL", "error-not-allowed")
        mroom = portal_of(room)
        if mroom is None or not mroom.current_state:
            raise ApiError("This room is not federated", "error-room-not-federated")
        try:
            acl = set_server_acl(mroom, request.user, allow=param(request, "allow"), deny=param(request, "deny"),
                                 allow_ip_literals=bool_param(request, "allowIpLiterals"))
        except AclError as exc:
            raise ApiError(str(exc), "error-invalid-params") from exc
        return ok(serverAcl=acl)


def via_param(request: Request) -> list[str]:
    """``via``: a list or a comma separated string of server names."""
    values = list_param(request, "via") or []
    out: list[str] = []
    for v in values:
        out.extend(s.strip() for s in str(v).split(",") if s.strip())
    return out


class SearchPublicRoomsView(ApiView):
    """``federation/searchPublicRooms?serverName=&roomName=&count=&pageToken=``: a server's public
    rooms (Rocket.Chat's shape: ``rooms[]`` of ``id``, ``name``, ``canonicalAlias``,
    ``joinedMembers``, ``topic``, ``canJoin``; ``count``, ``total``, ``nextPageToken``,
    ``prevPageToken``)."""

    def get(self, request: Request) -> Response:
        if not federation_on():
            raise ApiError("Federation is not enabled on this server", "error-federation-disabled")
        if not may_federate(request.user):
            raise NotAllowed("Not allowed to use federation", "error-not-allowed")
        server = (str_param(request, "serverName", max_length=255) or "").strip().lower()
        if not server:
            raise ApiError('The "serverName" param is required', "error-invalid-params")
        if not SERVER_NAME_RE.match(server):
            raise ApiError(f'"{server}" is not a server name', "error-invalid-params")
        _, count = pagination(request, default_count=20)
        try:
            answer = bridge_directory.search_remote_rooms(
                server, room_name=(str_param(request, "roomName", max_length=200) or "").strip(),
                count=min(count, 100), page_token=str_param(request, "pageToken", max_length=200) or None)
        except DirectoryError as exc:
            raise ApiError(str(exc), "error-federation-directory") from exc
        except MatrixError as exc:  # our own directory, unpublished
            raise ApiError(exc.error, "error-federation-directory") from exc
        return ok(**answer)


class JoinExternalPublicRoomView(ApiView):
    """``federation/joinExternalPublicRoom {externalRoomId, serverName?, roomName?, pageToken?}``:
    join a room found in a directory (``serverName``, our extension, is the server to join
    through; by default the room ID's), within the size cap of :func:`join_matrix_room`."""

    def post(self, request: Request) -> Response:
        target = (str_param(request, "externalRoomId", max_length=255) or "").strip()
        if not is_matrix_room_ref(target):
            raise ApiError('"externalRoomId" must be a Matrix room ID or alias', "error-invalid-params")
        server = (str_param(request, "serverName", max_length=255) or "").strip().lower()
        room = join_matrix_room(request.user, target, [server] if server else [],
                                room_name=str_param(request, "roomName", max_length=200) or "",
                                page_token=str_param(request, "pageToken", max_length=200))
        return ok(room=room_json(room))


def _listed_size(server: str, target: str, room_name: str, page_token: str | None) -> int | None:
    """The member count ``server``'s directory gives for ``target`` (None: not found there)."""
    try:
        page = bridge_directory.search_remote_rooms(server, room_name=room_name, count=100, page_token=page_token)
    except (DirectoryError, MatrixError):
        return None
    for r in page["rooms"]:
        if target in (r["id"], r["canonicalAlias"]):
            return int(r["joinedMembers"])
    return None
