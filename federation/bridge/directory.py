"""Our directory as other servers ask for it, and theirs for our users.

* :func:`query_directory`: ``#name:<us>`` names a public channel, federated or not yet (the lookup
  federates it, so that a join by alias works from any Matrix server).
* :func:`public_rooms`: every public channel of ours (created by a user who may federate, not
  archived), paged and filtered; a listed channel that is not a Matrix room yet becomes one (a
  directory entry needs a room ID). Off with ``CONCORD_FEDERATION_PUBLISH_ROOMS=false`` (403).
* :func:`search_remote_rooms`: another server's public rooms, in Rocket.Chat's
  ``federation/searchPublicRooms`` shape.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db.models import Q, QuerySet

from federation import config
from federation.bridge.portals import ensure_portal
from federation.bridge.users import may_federate
from federation.handlers import directory
from federation.protocol.errors import InvalidIdentifier
from federation.protocol.ids import RoomAlias
from federation.transport.errors import MatrixError
from rooms.models import Room

log = logging.getLogger(__name__)


def query_directory(alias: str) -> dict[str, Any]:
    """``query/directory``: the alias's room and servers. A public channel of ours that is not a
    Matrix room yet becomes one here, when its creator may federate (``access-federation``).

    Raises:
        MatrixError: 400 for an invalid alias, 404 for no such public channel.
    """
    try:
        return directory.query_directory(alias)
    except MatrixError as exc:
        if exc.status != 404:
            raise
    try:
        parsed = RoomAlias.parse(alias)
    except InvalidIdentifier:
        raise MatrixError(400, "M_INVALID_PARAM", "invalid room_alias")
    if str(parsed.server_name) != config.server_name():
        raise MatrixError(404, "M_NOT_FOUND", "Room alias not found")
    room = Room.objects.filter(type=Room.CHANNEL, name=parsed.localpart, archived=False).select_related(
        "creator").first()
    if room is None or room.creator is None or room.creator.is_remote or not may_federate(room.creator) \
            or room.join_code:  # a join code cannot be asked of other servers: such a channel stays local
        raise MatrixError(404, "M_NOT_FOUND", "Room alias not found")
    try:
        ensure_portal(room, by=room.creator)
    except ValueError as exc:  # nobody local to hold the room
        log.info("could not federate #%s for a directory query: %s", room.name, exc)
        raise MatrixError(404, "M_NOT_FOUND", "Room alias not found")
    return directory.query_directory(alias)


def _publishable_channels(search: str) -> QuerySet[Room]:
    qs = Room.objects.filter(type=Room.CHANNEL, archived=False, creator__isnull=False, creator__is_remote=False,
                             join_code="")
    if search:
        qs = qs.filter(Q(name__icontains=search) | Q(fname__icontains=search) | Q(topic__icontains=search))
    return qs.select_related("creator").order_by("name", "id")


def public_rooms(limit_raw: Any, since_raw: Any, search: Any = "") -> dict[str, Any]:
    """``publicRooms``: our public channels, ``limit`` at a time from ``since`` (see the module docstring)."""
    if not config.publish_rooms():
        raise MatrixError(403, "M_FORBIDDEN", f"{config.server_name()} does not publish its room directory")
    limit, offset = directory.page_params(limit_raw, since_raw)
    term = search.strip()[:200] if isinstance(search, str) else ""
    channels = [r for r in _publishable_channels(term) if may_federate(r.creator)]  # type: ignore[arg-type]
    chunk = []
    for room in channels[offset:offset + limit]:
        try:
            chunk.append(directory.room_entry(ensure_portal(room, by=room.creator)))
        except ValueError as exc:  # nobody local to hold it
            log.info("not listing #%s: %s", room.name, exc)
    return directory.page_answer(chunk, len(channels), limit, offset)


def search_remote_rooms(server: str, *, room_name: str = "", count: int = 20,
                        page_token: str | None = None) -> dict[str, Any]:
    """``federation/searchPublicRooms``: a server's public rooms (ours when ``server`` is us).

    Raises:
        directory.DirectoryError: the server is not allowed, not reachable, or refused.
    """
    if server == config.server_name():
        answer = public_rooms(count, page_token or 0, room_name)
        page = directory.RemoteDirectoryPage(
            [directory.RemoteRoom(e["room_id"], e.get("name", ""), e.get("topic", ""), e.get("canonical_alias", ""),
                                  e["num_joined_members"], e["join_rule"], e["world_readable"])
             for e in answer["chunk"]],
            answer["total_room_count_estimate"], answer.get("next_batch"), answer.get("prev_batch"))
    else:
        page = directory.fetch_public_rooms(server, search=room_name, limit=count, since=page_token)
    rooms = [{"id": r.room_id, "name": r.name or r.alias or r.room_id, "canonicalAlias": r.alias,
              "joinedMembers": r.members, "topic": r.topic, "canJoin": r.join_rule == "public",
              "worldReadable": r.world_readable} for r in page.rooms]
    out: dict[str, Any] = {"rooms": rooms, "count": len(rooms), "total": page.total if page.total is not None
                           else len(rooms)}
    if page.next_batch:
        out["nextPageToken"] = page.next_batch
    if page.prev_batch:
        out["prevPageToken"] = page.prev_batch
    return out
