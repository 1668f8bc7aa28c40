"""The room directory: aliases (``query/directory``) and the pieces of ``publicRooms`` as other
servers see ours (:func:`room_entry`, paging), and another server's directory read for our users
(:func:`fetch_public_rooms`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from federation import config
from federation.models import MatrixRoom, MatrixRoomAlias
from federation.protocol.errors import InvalidIdentifier
from federation.protocol.ids import RoomAlias
from federation.protocol.room_servers import servers_in_room
from federation.store.room_state import state_events
from federation.transport.client import FederationClient
from federation.transport.errors import FederationError, MatrixError


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


def room_entry(room: MatrixRoom) -> dict[str, Any]:
    """One ``PublicRoomsChunk`` of a room we hold: its ID, member count, name, topic, alias..."""
    state = state_events(room)

    def content(key: tuple[str, str]) -> dict[str, Any]:
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
    return entry


def page_params(limit_raw: Any, since_raw: Any) -> tuple[int, int]:
    """``limit`` (1-500, default 100) and ``since`` (an offset we handed out) of a publicRooms call."""
    try:
        limit = max(1, min(int(limit_raw if limit_raw is not None else 100), 500))
        offset = int(since_raw or 0)
    except (TypeError, ValueError):
        raise MatrixError(400, "M_INVALID_PARAM", "bad limit or since")
    if offset < 0:
        raise MatrixError(400, "M_INVALID_PARAM", "bad since")
    return limit, offset


def page_answer(chunk: list[dict[str, Any]], total: int, limit: int, offset: int) -> dict[str, Any]:
    """The publicRooms answer around a chunk: the estimate and the paging tokens."""
    out: dict[str, Any] = {"chunk": chunk, "total_room_count_estimate": total}
    if offset + limit < total:
        out["next_batch"] = str(offset + limit)
    if offset > 0:
        out["prev_batch"] = str(max(0, offset - limit))
    return out


@dataclass(frozen=True)
class RemoteRoom:
    """One room of another server's directory, as far as its answer could be read."""

    room_id: str
    name: str
    topic: str
    alias: str
    members: int
    join_rule: str
    world_readable: bool


@dataclass(frozen=True)
class RemoteDirectoryPage:
    rooms: list[RemoteRoom]
    total: int | None
    next_batch: str | None
    prev_batch: str | None


class DirectoryError(Exception):
    """Another server's directory could not be read (the message says why, in words)."""


def fetch_public_rooms(server: str, *, search: str = "", limit: int = 20,
                       since: str | None = None) -> RemoteDirectoryPage:
    """Another server's public rooms (``POST /publicRooms`` with a ``generic_search_term`` when
    searching, else ``GET``). Entries that are not well formed are left out.

    Raises:
        DirectoryError: the server is not allowed, cannot be reached, or refused.
    """
    if not config.server_allowed(server):
        raise DirectoryError(f"Federation with {server} is not allowed on this server")
    client = FederationClient(timeout=min(config.request_timeout(), 30))
    try:
        if search:
            body: dict[str, Any] = {"limit": limit, "filter": {"generic_search_term": search}}
            if since:
                body["since"] = since
            answer = client.post_json(server, "/_matrix/federation/v1/publicRooms", body)
        else:
            query: dict[str, Any] = {"limit": str(limit)}
            if since:
                query["since"] = since
            answer = client.get_json(server, "/_matrix/federation/v1/publicRooms", query)
    except FederationError as exc:
        if exc.status == 0:
            raise DirectoryError(f"{server} could not be reached: {exc}") from exc
        raise DirectoryError(f"{server} refused to list its rooms: {exc}") from exc
    if not isinstance(answer, dict) or not isinstance(answer.get("chunk"), list):
        raise DirectoryError(f"{server} answered something that is not a room directory")
    rooms = []
    for item in answer["chunk"]:
        if not isinstance(item, dict) or not isinstance(item.get("room_id"), str):
            continue

        def text(key: str, item: dict[str, Any] = item) -> str:
            value = item.get(key)
            return value[:1000] if isinstance(value, str) else ""

        members = item.get("num_joined_members")
        rooms.append(RemoteRoom(item["room_id"], text("name"), text("topic"), text("canonical_alias"),
                                members if type(members) is int and members >= 0 else 0,
                                text("join_rule") or "public", item.get("world_readable") is True))
    total = answer.get("total_room_count_estimate")

    def token(key: str) -> str | None:
        value = answer.get(key)
        return value if isinstance(value, str) and value else None

    return RemoteDirectoryPage(rooms, total if type(total) is int else None, token("next_batch"), token("prev_batch"))
