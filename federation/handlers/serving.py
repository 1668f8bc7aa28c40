"""Serving room events to other servers: event, state, state_ids, event_auth, get_missing_events, backfill.

Access rule (the spec's "the requesting server must be in the room", plus history visibility): a
server may read a room's events if one of its users is joined in the room's current state, or the
room's ``m.room.history_visibility`` is ``world_readable``; ``shared`` additionally lets a server
read events sent while one of its users was joined at the event. Content follows the history
visibility *at each event* (:func:`event_visible`): an event sent while the room was ``joined``
(``invited``) before any of the server's users joined (was invited) is served redacted by
``/event``, ``/backfill`` and ``/get_missing_events``, and ``/state`` at it is refused. Server ACLs
(``m.room.server_acl``) are enforced on every endpoint here. Unknown rooms and events: 404
``M_NOT_FOUND``; refused: 403 ``M_FORBIDDEN``.

The functions take the authenticated origin and the request's parameters and return the answer's
body; :mod:`federation.api.serving` holds the thin endpoints.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from federation import config
from federation.clock import now_ms
from federation.models import MatrixEvent, MatrixRoom
from federation.protocol.errors import InvalidIdentifier
from federation.protocol.events import Event, StateKey
from federation.protocol.ids import server_name_of
from federation.protocol.redaction import redact_event
from federation.protocol.room_servers import history_visible_to_server, server_acl_allows, server_memberships
from federation.protocol.room_versions import get_room_version
from federation.store.events import auth_chain_ids, decode_state, pdus_for
from federation.store.room_state import create_event_id_of, server_joined, state_content, state_events
from federation.transport.errors import MatrixError

MAX_BACKFILL = 100
MAX_MISSING = 20


def _room(room_id: str) -> MatrixRoom:
    room = MatrixRoom.objects.filter(room_id=room_id).first()
    if room is None:
        raise MatrixError(404, "M_NOT_FOUND", "Unknown room")
    return room


def check_access(room: MatrixRoom, origin: str, at_event: MatrixEvent | None = None) -> None:
    """Raise 403 unless ``origin`` may read the room (see the module docstring)."""
    acl = state_content(room, ("m.room.server_acl", ""))
    if acl and not server_acl_allows(acl, origin):
        raise MatrixError(403, "M_FORBIDDEN", "Server is banned from this room by its ACL")
    if server_joined(room, origin):
        return
    vis = (state_content(room, ("m.room.history_visibility", "")) or {}).get("history_visibility", "shared")
    if vis == "world_readable":
        return
    if at_event is not None and vis == "shared" and at_event.state_after is not None and server_joined(
            room, origin, decode_state(at_event.state_after)):
        return
    raise MatrixError(403, "M_FORBIDDEN", "Server is not in the room")


def _visible_state(room: MatrixRoom, origin: str, ids: Mapping[StateKey, str]) -> dict[StateKey, Event]:
    """Of a state map, only what visibility needs: the history visibility and origin's members."""
    def wanted(key: StateKey) -> bool:
        if key == ("m.room.history_visibility", ""):
            return True
        if key[0] != "m.room.member":
            return False
        try:
            return server_name_of(key[1]) == origin
        except InvalidIdentifier:
            return False
    return state_events(room, {k: v for k, v in ids.items() if wanted(k)})


def event_visible(room: MatrixRoom, origin: str, row: MatrixEvent, joined_now: bool | None = None) -> bool:
    """Whether ``origin`` may see the event's content (the history visibility at the event, see
    :func:`~federation.protocol.room_servers.history_visible_to_server`); an event whose state we
    do not know (an outlier) is judged by the current state."""
    ids = decode_state(row.state_after) if row.state_after is not None else decode_state(room.current_state)
    state = _visible_state(room, origin, ids)
    vis_event = state.get(("m.room.history_visibility", ""))
    vis = vis_event.content.get("history_visibility") if vis_event is not None else "shared"
    if joined_now is None:
        joined_now = server_joined(room, origin)
    return history_visible_to_server(vis, server_memberships(state, origin), joined_now)


def served_pdu(room: MatrixRoom, origin: str, row: MatrixEvent, joined_now: bool | None = None) -> dict[str, Any]:
    """The PDU as ``origin`` may have it: whole when visible to it, else its redacted copy (which
    still verifies and authorises: the DAG stays whole, the content is withheld)."""
    if event_visible(room, origin, row, joined_now):
        return row.pdu
    return redact_event(row.pdu, get_room_version(room.room_version))


def _txn_wrap(pdus: list[dict[str, Any]]) -> dict[str, Any]:
    return {"origin": config.server_name(), "origin_server_ts": now_ms(), "pdus": pdus}


def get_event(origin: str, event_id: str) -> dict[str, Any]:
    """``GET /event/{eventId}``."""
    row = MatrixEvent.objects.filter(event_id=event_id).select_related("room").first()
    if row is None or row.rejected_reason:
        raise MatrixError(404, "M_NOT_FOUND", "Event not found")
    check_access(row.room, origin, row)
    return _txn_wrap([served_pdu(row.room, origin, row)])


def _state_at(room: MatrixRoom, origin: str, event_id: str | None) -> tuple[list[str], list[str]]:
    if not event_id:
        raise MatrixError(400, "M_MISSING_PARAM", "event_id is required")
    row = MatrixEvent.objects.filter(event_id=event_id, room=room).first()
    if row is None or row.state_after is None:
        raise MatrixError(404, "M_NOT_FOUND", "Event not found or state unknown")
    check_access(room, origin, row)
    if not event_visible(room, origin, row):
        raise MatrixError(403, "M_FORBIDDEN", "The room's history visibility hides the state at that event")
    state = decode_state(row.state_after)
    # The state *before* the event: undo the event's own change if it is a state event.
    if row.state_key is not None and state.get((row.type, row.state_key)) == row.event_id:
        prev_rows = MatrixEvent.objects.filter(event_id__in=row.pdu.get("prev_events", []),
                                               state_after__isnull=False)
        before = next((decode_state(p.state_after) for p in prev_rows), None)
        if before is not None and len(row.pdu.get("prev_events", [])) == 1:
            state = before
        elif before is not None and (row.type, row.state_key) in before:
            state[(row.type, row.state_key)] = before[(row.type, row.state_key)]
        else:
            state.pop((row.type, row.state_key), None)
    pdu_ids = list(state.values())
    chain = auth_chain_ids(pdu_ids)
    create = create_event_id_of(room)
    if create and create not in chain and create not in pdu_ids:
        chain.append(create)
    return pdu_ids, chain


def get_state_ids(origin: str, room_id: str, event_id: str | None) -> dict[str, Any]:
    """``GET /state_ids/{roomId}?event_id=``: the state before the event, and its auth chain."""
    pdu_ids, chain = _state_at(_room(room_id), origin, event_id)
    return {"pdu_ids": pdu_ids, "auth_chain_ids": chain}


def get_state(origin: str, room_id: str, event_id: str | None) -> dict[str, Any]:
    """``GET /state/{roomId}?event_id=``: as ``state_ids`` with whole PDUs."""
    pdu_ids, chain = _state_at(_room(room_id), origin, event_id)
    return {"pdus": pdus_for(pdu_ids), "auth_chain": pdus_for(chain)}


def get_event_auth(origin: str, room_id: str, event_id: str) -> dict[str, Any]:
    """``GET /event_auth/{roomId}/{eventId}``: the event's full auth chain."""
    room = _room(room_id)
    row = MatrixEvent.objects.filter(event_id=event_id, room=room).first()
    if row is None:
        raise MatrixError(404, "M_NOT_FOUND", "Event not found")
    check_access(room, origin, row)
    chain = auth_chain_ids([event_id])
    create = create_event_id_of(room)
    if create and create not in chain and create != event_id:
        chain.append(create)
    return {"auth_chain": pdus_for(chain)}


def _bounded_int(value: Any, default: int, top: int) -> int:
    if value is None:
        return default
    if type(value) is not int and not (isinstance(value, str) and value.isdigit()):
        raise MatrixError(400, "M_INVALID_PARAM", "limit must be an integer")
    return max(0, min(int(value), top))


def get_missing_events(origin: str, room_id: str, body: Any) -> dict[str, Any]:
    """``POST /get_missing_events/{roomId}``: walk back from ``latest_events`` to ``earliest_events``."""
    room = _room(room_id)
    check_access(room, origin)
    if not isinstance(body, dict):
        raise MatrixError(400, "M_BAD_JSON", "body must be an object")
    earliest = body.get("earliest_events", [])
    latest = body.get("latest_events", [])
    if not isinstance(earliest, list) or not isinstance(latest, list) \
            or not all(isinstance(e, str) and "\x00" not in e for e in earliest + latest):
        raise MatrixError(400, "M_BAD_JSON", "earliest_events and latest_events must be lists of event IDs")
    limit = _bounded_int(body.get("limit"), 10, MAX_MISSING)
    min_depth = _bounded_int(body.get("min_depth"), 0, 2**53 - 1)
    seen = set(earliest) | set(latest)
    frontier = list(latest)
    out: list[MatrixEvent] = []
    while frontier and len(out) < limit:
        rows = {r.event_id: r for r in MatrixEvent.objects.filter(event_id__in=frontier, room=room)}
        nxt: list[str] = []
        for eid in frontier:
            row = rows.get(eid)
            if row is None:
                continue
            for prev in row.pdu.get("prev_events", []):
                if prev not in seen:
                    seen.add(prev)
                    nxt.append(prev)
        prev_rows = MatrixEvent.objects.filter(event_id__in=nxt, room=room, depth__gte=min_depth,
                                               rejected_reason="").order_by("-depth")
        for r in prev_rows:
            if len(out) >= limit:
                break
            out.append(r)
        frontier = [r.event_id for r in prev_rows]
    out.sort(key=lambda r: (r.depth, r.stream))
    joined_now = server_joined(room, origin)
    return {"events": [served_pdu(room, origin, r, joined_now) for r in out]}


def backfill(origin: str, room_id: str, starts: list[str], limit_param: str | None) -> dict[str, Any]:
    """``GET /backfill/{roomId}?v=..&limit=``: events before ``v`` (included), newest first, at most 100."""
    room = _room(room_id)
    if not starts:
        raise MatrixError(400, "M_MISSING_PARAM", "v is required")
    limit = _bounded_int(limit_param, 10, MAX_BACKFILL)
    seen: set[str] = set()
    frontier = list(starts)
    out: list[MatrixEvent] = []
    while frontier and len(out) < limit:
        rows = list(MatrixEvent.objects.filter(event_id__in=frontier, room=room).order_by("-depth"))
        frontier = []
        for row in rows:
            if row.event_id in seen:
                continue
            seen.add(row.event_id)
            if len(out) >= limit:
                break
            try:
                check_access(room, origin, row)
            except MatrixError:
                if not out:
                    raise
                continue
            if not row.rejected_reason:
                out.append(row)
            frontier.extend(p for p in row.pdu.get("prev_events", []) if p not in seen)
    joined_now = server_joined(room, origin)
    return _txn_wrap([served_pdu(room, origin, r, joined_now) for r in out])
