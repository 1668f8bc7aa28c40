"""Inbound transactions: ``PUT /_matrix/federation/v1/send/{txnId}``.

Flow of a transaction (:func:`receive_transaction`)
    1. De-duplication: ``(origin, txn_id)`` seen before -> the stored answer is replayed, nothing is
       processed twice. A second transaction from an origin while one is being processed -> 429.
    2. Limits: at most 50 PDUs and 100 EDUs, else 400 (nothing processed, nothing stored).
    3. Each PDU, independently (a bad PDU never fails the transaction; its result says why):
       room known and room version supported; **format** (``validate_pdu``: size, types, canonical
       JSON) -> dropped; **signatures** (``verify_event``, fetching keys as needed) -> dropped;
       **content hash** mismatch -> only the redacted copy is kept. The survivor is **staged**
       durably (:class:`~federation.models.StagedPDU`) in the transaction's order.
    4. Staged PDUs are processed one room at a time, in arrival order (:func:`process_staged`):
       missing ``prev_events`` are fetched with ``get_missing_events`` (then ``state_ids`` as a
       fallback, which makes the gap's edges outliers with known state), missing auth events with
       ``/event``; then **auth against its auth events** -> rejected, **auth against the state before
       it** (resolved over its prev events) -> rejected, **auth against the current state** ->
       soft-failed. Every outcome is recorded in :class:`~federation.models.MatrixEvent`.
    5. EDUs go to the registry in :mod:`federation.edus`.
    6. The answer ``{"pdus": {event_id: {} | {"error": ...}}}`` is stored with the transaction.

A crash after staging loses nothing: the staged rows are processed by the next transaction for the
room or by the beat task (``process_all_staged``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from django.core.cache import cache
from django.db import DatabaseError, IntegrityError, transaction

from federation.models import InboundTransaction, MatrixEvent, MatrixRoom, StagedPDU
from federation.protocol.auth_rules import authorize_event, check_auth_rules
from federation.protocol.errors import AuthError, ProtocolError, UnsupportedRoomVersion
from federation.protocol.event_signing import verify_event
from federation.protocol.events import Event, StateKey
from federation.protocol.room_versions import RoomVersion, get_room_version
from federation.protocol.state_res import resolve_state
from federation.protocol.validation import validate_pdu
from federation.store import OrmEventStore, decode_state, encode_state

log = logging.getLogger(__name__)

MAX_PDUS = 50
MAX_EDUS = 100
MISSING_EVENTS_LIMIT = 10


class TransactionRefused(Exception):
    """The whole transaction is refused (status + errcode); nothing was processed."""

    def __init__(self, status: int, errcode: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.errcode = errcode


def receive_transaction(origin: str, txn_id: str, body: Any) -> tuple[int, dict[str, Any]]:
    """Process one inbound transaction; return ``(status, answer)`` (see the module docstring).

    Raises:
        TransactionRefused: for a malformed or oversized transaction, or a concurrent one (429).
    """
    done = InboundTransaction.objects.filter(origin=origin, txn_id=txn_id).first()
    if done is not None:
        return done.response_code, done.response
    if not isinstance(body, dict):
        raise TransactionRefused(400, "M_BAD_JSON", "transaction must be an object")
    pdus = body.get("pdus", [])
    edus = body.get("edus", [])
    if not isinstance(pdus, list) or not isinstance(edus, list):
        raise TransactionRefused(400, "M_BAD_JSON", "pdus and edus must be lists")
    if len(pdus) > MAX_PDUS or len(edus) > MAX_EDUS:
        raise TransactionRefused(400, "M_TOO_LARGE", f"at most {MAX_PDUS} PDUs and {MAX_EDUS} EDUs per transaction")
    if "origin" in body and body["origin"] != origin:
        raise TransactionRefused(400, "M_FORBIDDEN", "transaction origin does not match the request's origin")
    lock = f"fed:inbound-txn:{origin}"
    if not cache.add(lock, txn_id, timeout=120):
        raise TransactionRefused(429, "M_LIMIT_EXCEEDED", "a transaction from this server is already in progress")
    try:
        done = InboundTransaction.objects.filter(origin=origin, txn_id=txn_id).first()
        if done is not None:
            return done.response_code, done.response
        results: dict[str, dict[str, Any]] = {}
        staged_rooms: list[str] = []
        for pdu in pdus:
            event_id, room_id, error = stage_pdu(origin, pdu)
            if event_id is None:
                log.info("dropped a PDU from %s: %s", origin, error)
                continue
            results[event_id] = {"error": error} if error else {}
            if room_id and not error and room_id not in staged_rooms:
                staged_rooms.append(room_id)
        for room_id in staged_rooms:
            for event_id, error in process_staged(room_id, origin).items():
                if event_id in results:
                    results[event_id] = {"error": error} if error else {}
        from federation.edus import dispatch_edus

        dispatch_edus(origin, edus)
        answer = {"pdus": results}
        try:
            InboundTransaction.objects.create(origin=origin, txn_id=txn_id, response_code=200, response=answer)
        except IntegrityError:
            pass
        return 200, answer
    finally:
        cache.delete(lock)


def _room_version_for(pdu: Mapping[str, Any]) -> tuple[MatrixRoom | None, RoomVersion | None, str]:
    room_id = pdu.get("room_id")
    if room_id is None and pdu.get("type") == "m.room.create" and pdu.get("state_key") == "":
        # Room v12+: the create event has no room_id; the room ID is derived from its event ID.
        content = pdu.get("content")
        version = content.get("room_version") if isinstance(content, dict) else None
        try:
            rv = get_room_version(version)
            if rv.room_id_is_create_hash:
                from federation.protocol.hashing import compute_event_id

                room_id = "!" + compute_event_id(pdu, rv)[1:]
        except (ProtocolError, TypeError, ValueError, KeyError):
            room_id = None
    if not isinstance(room_id, str):
        return None, None, "missing room_id"
    room = MatrixRoom.objects.filter(room_id=room_id).first()
    if room is None:
        return None, None, f"this server is not in room {room_id}"
    try:
        return room, get_room_version(room.room_version), ""
    except UnsupportedRoomVersion as exc:
        return room, None, str(exc)


def check_received_pdu(pdu: Any, rv: RoomVersion) -> Event:
    """Steps 1-3 of the checks on receipt: format, signatures, content hash.

    Returns the event to keep (redacted if its content hash did not match).

    Raises:
        ProtocolError: ``InvalidEvent`` (format) or ``SignatureError``: the PDU must be dropped.
    """
    from federation.keys import OrmKeyStore

    validate_pdu(pdu, rv)
    checked = verify_event(pdu, rv, OrmKeyStore(), prechecked=True)
    if not checked.content_hash_ok:
        log.info("content hash mismatch for %s: keeping the redacted copy", checked.event.event_id)
    return checked.event


def stage_pdu(origin: str, pdu: Any) -> tuple[str | None, str | None, str]:
    """Check a received PDU's format and signatures and stage it.

    Returns:
        ``(event_id, room_id, error)``; ``event_id`` None when no ID could be computed (the PDU is
        dropped silently, as the spec says for malformed PDUs); ``error`` empty when staged.
    """
    if not isinstance(pdu, dict):
        return None, None, "PDU is not an object"
    room, rv, error = _room_version_for(pdu)
    event_id: str | None = None
    if rv is not None:
        try:
            from federation.protocol.hashing import compute_event_id

            event_id = compute_event_id(pdu, rv)
        except (ProtocolError, TypeError, ValueError, KeyError):
            event_id = None
    if room is None or rv is None:
        return event_id, None, error
    try:
        event = check_received_pdu(pdu, rv)
    except ProtocolError as exc:
        return event_id, None, f"{exc.__class__.__name__}: {exc}"
    if MatrixEvent.objects.filter(event_id=event.event_id, outlier=False).exists():
        return event.event_id, None, ""
    try:
        StagedPDU.objects.create(origin=origin, room_id=room.room_id, event_id=event.event_id, pdu=dict(event.pdu))
    except DatabaseError as exc:  # e.g. NUL characters, which PostgreSQL's jsonb cannot store
        return event.event_id, None, f"cannot store this event: {exc.__class__.__name__}"
    return event.event_id, room.room_id, ""


def process_all_staged() -> int:
    """Process every staged PDU (beat task / after a crash). Returns how many rooms were processed."""
    rooms = list(StagedPDU.objects.values_list("room_id", flat=True).distinct())
    for room_id in rooms:
        origin = StagedPDU.objects.filter(room_id=room_id).values_list("origin", flat=True).first()
        process_staged(room_id, origin or "")
    return len(rooms)


def process_staged(room_id: str, origin: str) -> dict[str, str]:
    """Process the room's staged PDUs in order; returns ``{event_id: error or ""}``."""
    lock = f"fed:room-lock:{room_id}"
    if not cache.add(lock, 1, timeout=300):
        return {}
    results: dict[str, str] = {}
    try:
        while True:
            staged = StagedPDU.objects.filter(room_id=room_id).order_by("id").first()
            if staged is None:
                break
            try:
                results[staged.event_id] = _process_one(staged.room_id, staged.pdu, staged.origin or origin)
            except Exception as exc:  # one broken event must not wedge the room's queue
                log.exception("processing %s failed", staged.event_id)
                results[staged.event_id] = f"internal error: {exc.__class__.__name__}"
            StagedPDU.objects.filter(pk=staged.pk).delete()
    finally:
        cache.delete(lock)
    return results


def _fetch_missing_prevs(room: MatrixRoom, rv: RoomVersion, event: Event, origin: str) -> None:
    """Fill gaps before ``event`` with get_missing_events, then state_ids, from ``origin``."""
    from federation.transport.client import FederationClient, FederationError, encode_path

    have = set(MatrixEvent.objects.filter(event_id__in=event.prev_event_ids, outlier=False)
               .values_list("event_id", flat=True))
    missing = [p for p in event.prev_event_ids if p not in have]
    if not missing or not origin:
        return
    client = FederationClient(timeout=20)
    try:
        answer = client.post_json(origin, encode_path("/_matrix/federation/v1/get_missing_events/{}", room.room_id), {
            "earliest_events": list(room.forward_extremities), "latest_events": [event.event_id],
            "limit": MISSING_EVENTS_LIMIT, "min_depth": 0})
        events = answer.get("events", []) if isinstance(answer, dict) else []
        fetched: list[Event] = []
        for pdu in events[:MISSING_EVENTS_LIMIT * 2]:
            try:
                fetched.append(check_received_pdu(pdu, rv))
            except ProtocolError as exc:
                log.info("bad PDU in get_missing_events answer: %s", exc)
        for ev in sorted(fetched, key=lambda e: e.depth):
            if not MatrixEvent.objects.filter(event_id=ev.event_id, outlier=False).exists():
                _process_event(room, rv, ev, origin, fetch=False)
    except FederationError as exc:
        log.info("get_missing_events from %s failed: %s", origin, exc)
    have = set(MatrixEvent.objects.filter(event_id__in=event.prev_event_ids, outlier=False)
               .values_list("event_id", flat=True))
    for prev in [p for p in event.prev_event_ids if p not in have]:
        _fetch_state_at(room, rv, prev, origin)


def _fetch_event(rv: RoomVersion, event_id: str, origin: str) -> Event | None:
    from federation.transport.client import FederationClient, FederationError, encode_path

    try:
        answer = FederationClient(timeout=20).get_json(origin, encode_path("/_matrix/federation/v1/event/{}", event_id))
        pdus = answer.get("pdus", []) if isinstance(answer, dict) else []
        if pdus:
            ev = check_received_pdu(pdus[0], rv)
            if ev.event_id == event_id:
                return ev
    except (FederationError, ProtocolError) as exc:
        log.info("could not fetch %s from %s: %s", event_id, origin, exc)
    return None


def _store_outlier(room: MatrixRoom, ev: Event, state_after: dict[StateKey, str] | None = None) -> None:
    MatrixEvent.objects.get_or_create(event_id=ev.event_id, defaults=dict(
        room=room, type=ev.type, state_key=ev.state_key, sender=ev.sender, origin_server_ts=ev.origin_server_ts,
        depth=ev.depth, pdu=dict(ev.pdu), outlier=state_after is None,
        state_after=encode_state(state_after) if state_after is not None else None))


def _fetch_state_at(room: MatrixRoom, rv: RoomVersion, event_id: str, origin: str) -> None:
    """state_ids fallback: learn the state at ``event_id`` and store it (and it) without its history."""
    from federation.transport.client import FederationClient, FederationError, encode_path

    try:
        answer = FederationClient(timeout=30).get_json(
            origin, encode_path("/_matrix/federation/v1/state_ids/{}", room.room_id), {"event_id": event_id})
    except FederationError as exc:
        log.info("state_ids from %s failed: %s", origin, exc)
        return
    ids = [i for i in list(answer.get("pdu_ids", [])) + list(answer.get("auth_chain_ids", [])) if isinstance(i, str)]
    have = set(MatrixEvent.objects.filter(event_id__in=ids).values_list("event_id", flat=True))
    for eid in ids:
        if eid not in have:
            ev = _fetch_event(rv, eid, origin)
            if ev is not None:
                _store_outlier(room, ev)
    store = OrmEventStore(room)
    state = {ev.state_key_tuple: ev.event_id for ev in store.get_events(answer.get("pdu_ids", [])).values()
             if ev.is_state}
    prev = _fetch_event(rv, event_id, origin)
    if prev is None:
        return
    after = dict(state)
    if prev.is_state:
        after[prev.state_key_tuple] = prev.event_id
    MatrixEvent.objects.filter(event_id=event_id).delete()
    _store_outlier(room, prev, after)
    MatrixEvent.objects.filter(event_id=event_id).update(outlier=False)


def _fetch_missing_auth(room: MatrixRoom, rv: RoomVersion, event: Event, origin: str, store: OrmEventStore) -> None:
    missing = [a for a in event.auth_event_ids if store.get_event(a) is None]
    for aid in missing[:20]:
        ev = _fetch_event(rv, aid, origin) if origin else None
        if ev is None:
            continue
        try:
            authorize_event(ev, store)
            _store_outlier(room, ev)
        except AuthError:
            MatrixEvent.objects.get_or_create(event_id=ev.event_id, defaults=dict(
                room=room, type=ev.type, state_key=ev.state_key, sender=ev.sender,
                origin_server_ts=ev.origin_server_ts, depth=ev.depth, pdu=dict(ev.pdu), outlier=True,
                rejected_reason="auth"))
        store.remember(ev)


def _process_one(room_id: str, pdu: dict[str, Any], origin: str) -> str:
    room = MatrixRoom.objects.get(room_id=room_id)
    rv = get_room_version(room.room_version)
    event = Event(pdu, rv)
    return _process_event(room, rv, event, origin, fetch=True)


def _state_map(store: OrmEventStore, ids: Mapping[StateKey, str]) -> dict[StateKey, Event]:
    events = store.get_events(ids.values())
    return {k: events[v] for k, v in ids.items() if v in events}


def _process_event(room: MatrixRoom, rv: RoomVersion, event: Event, origin: str, *, fetch: bool) -> str:
    """Steps 4-6 for one event, then persist it and update the room. Returns "" or the error."""
    existing = MatrixEvent.objects.filter(event_id=event.event_id).first()
    if existing is not None and not existing.outlier:
        return existing.rejected_reason
    if fetch:
        _fetch_missing_prevs(room, rv, event, origin)
    store = OrmEventStore(room)
    _fetch_missing_auth(room, rv, event, origin, store)
    rejected = ""
    soft_failed = False
    try:
        authorize_event(event, store)
    except (AuthError, ProtocolError) as exc:
        rejected = f"auth events: {exc}"[:255]
    prev_rows = list(MatrixEvent.objects.filter(event_id__in=event.prev_event_ids, state_after__isnull=False))
    state_sets = [decode_state(r.state_after) for r in prev_rows]
    if not state_sets and not (event.type == "m.room.create" and event.state_key == ""):
        rejected = rejected or "state before the event is unknown (missing prev_events)"
        state_before: dict[StateKey, str] = {}
    elif len(state_sets) == 1:
        state_before = state_sets[0]
    elif state_sets:
        try:
            state_before = resolve_state(rv, state_sets, store, room.room_id)
        except ProtocolError as exc:
            rejected = rejected or f"state resolution: {exc}"[:255]
            state_before = state_sets[0]
    else:
        state_before = {}
    if not rejected and state_sets:
        try:
            check_auth_rules(event, _state_map(store, state_before))
        except AuthError as exc:
            rejected = f"state before: {exc}"[:255]
    state_after = dict(state_before)
    if not rejected and event.is_state:
        state_after[event.state_key_tuple] = event.event_id
    with transaction.atomic():
        room = MatrixRoom.objects.select_for_update().get(pk=room.pk)
        current = decode_state(room.current_state)
        if not rejected and current:
            try:
                check_auth_rules(event, _state_map(store, current))
            except AuthError as exc:
                soft_failed = True
                log.info("soft-failed %s: %s", event.event_id, exc)
        MatrixEvent.objects.filter(event_id=event.event_id).delete()
        MatrixEvent.objects.create(
            event_id=event.event_id, room=room, type=event.type, state_key=event.state_key, sender=event.sender,
            origin_server_ts=event.origin_server_ts, depth=event.depth, pdu=dict(event.pdu), outlier=False,
            rejected_reason=rejected, soft_failed=soft_failed, state_after=encode_state(state_after))
        if not rejected and not soft_failed:
            extremities = [e for e in room.forward_extremities if e not in event.prev_event_ids]
            extremities.append(event.event_id)
            room.forward_extremities = extremities[-20:]
            if len(extremities) == 1:
                room.current_state = encode_state(state_after)
            else:
                sets = [decode_state(r.state_after) for r in
                        MatrixEvent.objects.filter(event_id__in=extremities, state_after__isnull=False)]
                store.remember(event)
                try:
                    room.current_state = encode_state(resolve_state(rv, sets, store, room.room_id))
                except ProtocolError:
                    room.current_state = encode_state(state_after)
            room.save(update_fields=["forward_extremities", "current_state"])
    if rejected:
        log.info("rejected %s from %s: %s", event.event_id, origin, rejected)
    elif not soft_failed:
        from federation.bridge import apply_remote_event

        apply_remote_event(room.room_id, event)
    return rejected
