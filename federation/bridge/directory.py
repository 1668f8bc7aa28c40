"""Room aliases as other servers ask for them: ``#name:<us>`` names a public channel, federated or
not yet (the lookup federates it, so that a join by alias works from any Matrix server)."""

from __future__ import annotations

import logging
from typing import Any

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
    if room is None or room.creator is None or room.creator.is_remote or not may_federate(room.creator):
        raise MatrixError(404, "M_NOT_FOUND", "Room alias not found")
    try:
        ensure_portal(room, by=room.creator)
    except ValueError as exc:  # nobody local to hold the room
        log.info("could not federate #%s for a directory query: %s", room.name, exc)
        raise MatrixError(404, "M_NOT_FOUND", "Room alias not found")
    return directory.query_directory(alias)
