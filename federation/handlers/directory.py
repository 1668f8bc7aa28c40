"""The room directory as other servers see it: aliases (``query/directory``) and published rooms
(``publicRooms``)."""

from __future__ import annotations

from typing import Any

from federation import config
from federation.models import MatrixRoom, MatrixRoomAlias
from federation.protocol.errors import InvalidIdentifier
from federation.protocol.ids import RoomAlias
from federation.protocol.room_servers import servers_in_room
from federation.store.room_state import state_events
from federation.transport.errors import MatrixError


def query_directory(alias: str) -> dict[str, Any]:
    """``room_alias`` -> ``{room_id, servers}`` (us first), 404 ``M_NOT_FOUND`` when unknown."""
    try:
        RoomAlias.parse(alias)
    except InvalidIdentifier:
        raise MatrixError(400, "M_INVALID_PARAM", "invalid room_alias")
    row = MatrixRoomAlias.objects.filter(alias=alias).select_related("room").first()
    if row is None:
        raise MatrixError(404, "M_NOT_FOUND", "Room alias not found")
    me = config.server_name()
    servers = servers_in_room(state_events(row.room))
    return {"room_id": row.room.room_id, "servers": [me] + [s for s in servers if s != me]}


def public_rooms(limit_raw: Any, since_raw: Any) -> dict[str, Any]:
    """Published rooms, ``limit`` (1-500, default 100) at a time from offset ``since``."""
    try:
        limit = max(1, min(int(limit_raw), 500))
        offset = int(since_raw or 0)
    except (TypeError, ValueError):
        raise MatrixError(400, "M_INVALID_PARAM", "bad limit or since")
    rooms = list(MatrixRoom.objects.filter(published=True).order_by("room_id"))
    chunk = []
    for room in rooms[offset:offset + limit]:
        state = state_events(room)

        def content(key: tuple[str, str], state: Any = state) -> dict[str, Any]:
            ev = state.get(key)
            return dict(ev.content) if ev is not None else {}

        members = sum(1 for (t, _), ev in state.items() if t == "m.room.member" and ev.membership == "join")
        entry: dict[str, Any] = {
            "room_id": room.room_id, "num_joined_members": members,
            "world_readable": content(("m.room.history_visibility", "")).get("history_visibility") == "world_readable",
            "guest_can_join": content(("m.room.guest_access", "")).get("guest_access") == "can_join",
            "join_rule": content(("m.room.join_rules", "")).get("join_rule", "public"),
        }
        for key, out_key, field in ((("m.room.name", ""), "name", "name"), (("m.room.topic", ""), "topic", "topic"),
                                    (("m.room.canonical_alias", ""), "canonical_alias", "alias"),
                                    (("m.room.avatar", ""), "avatar_url", "url")):
            value = content(key).get(field)
            if isinstance(value, str):
                entry[out_key] = value
        chunk.append(entry)
    out: dict[str, Any] = {"chunk": chunk, "total_room_count_estimate": len(rooms)}
    if offset + limit < len(rooms):
        out["next_batch"] = str(offset + limit)
    if offset > 0:
        out["prev_batch"] = str(max(0, offset - limit))
    return out
