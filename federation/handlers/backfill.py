"""History from other servers: backfill on join and when a user scrolls back past what we hold.

Where the gap is
    We hold a room's events from the moment our server joined (and whatever the join answer and
    earlier backfills brought). The *backward extremities* are held events whose ``prev_events``
    we do not hold: the history before them lives only on other servers. :func:`backward_extremities`
    finds them among the room's lowest-depth events (that is where the gap is: later gaps are
    closed by ``get_missing_events`` when events arrive).

Fetching
    :func:`backfill_from` asks one server ``GET /backfill/{roomId}?v=<extremities>&limit=N`` (the
    answer starts at those events and goes back), checks every PDU (format, signatures, hashes)
    and authorizes it against its own auth events, oldest first; accepted events are stored as
    outliers through :func:`~federation.store.events.persist_event` as ``Arrival.HISTORY``: the
    chat mirror (a listener) puts their timeline events (messages, redactions...) into the chat
    room with their original time, so they fall into place in the chat history. Events we already
    hold are skipped, so a backfill repeated or raced by another process adds nothing twice.

Scroll back
    :func:`backfill_older` is what the history endpoint (through the bridge) calls when a page
    comes back short: it
    tries the servers in the room (the room's creator's server first), bounded by a short
    timeout, at most one backfill per room at a time (a cache lock), and remembers for
    :data:`EXHAUSTED_TTL` seconds when there is nothing more to fetch (:data:`UNREACHABLE_TTL`
    when no server answered) so that later short pages cost one cache read.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

from django.core.cache import cache

from federation import config
from federation.handlers.pdu_checks import check_received_pdu
from federation.models import MatrixEvent, MatrixRoom
from federation.protocol.auth_rules import authorize_event
from federation.protocol.errors import AuthError, ProtocolError
from federation.protocol.room_versions import get_room_version
from federation.store.events import Arrival, OrmEventStore, persist_event
from federation.store.room_state import creator_server, joined_servers
from federation.transport.client import FederationClient, FederationError, encode_path

if TYPE_CHECKING:
    from federation.protocol.events import Event
    from federation.protocol.room_versions import RoomVersion

log = logging.getLogger(__name__)

SCROLL_BACK_LIMIT = 100  # events per scroll-back request (Synapse serves at most 100)
SCROLL_BACK_TIMEOUT = 10.0  # seconds per server while a user waits for the history page
EXHAUSTED_TTL = 600
UNREACHABLE_TTL = 60
LOWEST_EVENTS_SCANNED = 500
MAX_EXTREMITIES = 10


def backward_extremities(mroom: MatrixRoom) -> list[str]:
    """Held, accepted events of the room with a ``prev_event`` we do not hold (oldest first, at most 10)."""
    rows = list(MatrixEvent.objects.filter(room=mroom, rejected_reason="").order_by("depth", "stream")
                .values_list("event_id", "pdu")[:LOWEST_EVENTS_SCANNED])
    prevs = {eid: [p for p in (pdu.get("prev_events") or []) if isinstance(p, str)] for eid, pdu in rows}
    wanted = {p for ps in prevs.values() for p in ps}
    held = set(MatrixEvent.objects.filter(event_id__in=wanted).values_list("event_id", flat=True)) if wanted else set()
    out = [eid for eid, ps in prevs.items() if any(p not in held for p in ps)]
    return out[:MAX_EXTREMITIES]


def backfill_from(server: str, mroom: MatrixRoom, rv: RoomVersion, from_ids: Iterable[str], limit: int, *,
                  timeout: float = 30.0) -> int:
    """Fetch up to ``limit`` events before (and including) ``from_ids`` from ``server``; store the
    ones that pass the checks and mirror their messages. Returns how many events were new to us.

    Raises:
        FederationError: the server did not answer (the caller may try another).
    """
    answer = FederationClient(timeout=timeout).get_json(
        server, encode_path("/_matrix/federation/v1/backfill/{}", mroom.room_id), {"v": list(from_ids), "limit": limit})
    pdus = answer.get("pdus") if isinstance(answer, dict) else None
    events: list[Event] = []
    for pdu in (pdus if isinstance(pdus, list) else [])[:limit * 2]:
        try:
            ev = check_received_pdu(pdu, rv)
        except ProtocolError:
            continue
        if ev.room_id == mroom.room_id:
            events.append(ev)
    known = set(MatrixEvent.objects.filter(event_id__in=[e.event_id for e in events])
                .values_list("event_id", flat=True))
    store = OrmEventStore(mroom)
    added = 0
    for ev in sorted(events, key=lambda e: (e.depth, e.origin_server_ts)):
        if ev.event_id in known:
            continue
        try:
            authorize_event(ev, store)
        except (AuthError, ProtocolError) as exc:
            log.info("backfilled %s from %s refused: %s", ev.event_id, server, exc)
            continue
        if not persist_event(mroom, ev, arrival=Arrival.HISTORY, if_exists="keep"):
            continue
        store.remember(ev)
        known.add(ev.event_id)
        added += 1
    return added


def _servers_to_ask(mroom: MatrixRoom) -> list[str]:
    """The creator's server first, then the joined servers; never us, never a refused server."""
    first = creator_server(mroom)
    out: list[str] = []
    for s in [*([first] if first else []), *joined_servers(mroom)]:
        if s != config.server_name() and s not in out and config.server_allowed(s):
            out.append(s)
    return out


def backfill_older(mroom: MatrixRoom, *, limit: int = SCROLL_BACK_LIMIT) -> bool:
    """A user scrolled back past the oldest event we hold: fetch older history of the room from
    another server. Returns whether anything new was stored.

    A no-op (False) for rooms we are not in, rooms whose history we hold from the start, while
    another backfill of the same room runs, and for :data:`EXHAUSTED_TTL` seconds after a
    backfill found nothing more.
    """
    done_key = f"fed:backfill-done:{mroom.room_id}"
    if cache.get(done_key):
        return False
    if not mroom.current_state:
        return False
    lock_key = f"fed:backfill-lock:{mroom.room_id}"
    if not cache.add(lock_key, 1, int(SCROLL_BACK_TIMEOUT * 3)):
        return False
    try:
        extremities = backward_extremities(mroom)
        if not extremities:
            cache.set(done_key, 1, EXHAUSTED_TTL)
            return False
        rv = get_room_version(mroom.room_version)
        answered = False
        for server in _servers_to_ask(mroom)[:3]:
            try:
                added = backfill_from(server, mroom, rv, extremities, limit, timeout=SCROLL_BACK_TIMEOUT)
            except FederationError as exc:
                log.info("scroll-back backfill of %s from %s failed: %s", mroom.room_id, server, exc)
                continue
            if added:
                return True
            answered = True
        # Nothing more (or nobody answered: try again a little later, not on every page).
        cache.set(done_key, 1, EXHAUSTED_TTL if answered else UNREACHABLE_TTL)
        return False
    finally:
        cache.delete(lock_key)
