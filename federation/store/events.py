"""The one writer of Matrix events, and the ORM side of the protocol core's ``EventStore``.

Persisting
    :func:`persist_event` is the only code that writes :class:`~federation.models.MatrixEvent`
    rows (plus :func:`mark_state_known` for the state at a join's prev events). Whoever stores an
    event (our own sends, inbound transactions, membership handshakes, fetched auth and state
    events, backfill) calls it with how the event arrived (:class:`Arrival`), so every listener sees
    every event the same way whichever path brought it.

Listeners
    :func:`register_listener` adds a ``(listener, wants)`` pair at start-up (the chat bridge is
    one). When an event is persisted and some listener ``wants`` it, the row is marked
    ``pending_arrival`` *in the same transaction*, and the listeners run **after that transaction
    commits** (``transaction.on_commit``, in commit order, so a room's events reach them in the
    order they were stored); then the mark is cleared. A listener therefore sees committed Matrix
    state, and its own writes cannot roll back the event. Should the process die between the commit
    and the listeners, the mark survives: :func:`redeliver_pending` (the beat task) runs them again
    for rows marked longer than :data:`REDELIVER_AFTER` seconds. So listeners may see an event more
    than once and must be idempotent; a failing listener is logged and does not stop the others.

    The events of one commit are delivered together, in one transaction of their own (each listener
    call in a savepoint) that also clears their marks: one extra commit per group of inbound events,
    not one per event. A listener with a bulk form gets a run of consecutive events in one call (one
    savepoint), and each of them alone if that call raises. The first commit callback of a commit
    takes the thread's queue of persisted events, keeps those whose rows are committed with their
    mark still set (entries of rolled-back savepoints fall out there), and delivers them in order;
    the other callbacks find the queue empty. On PostgreSQL the delivery commits with
    ``synchronous_commit`` off: it needs no flush of its own, because what must survive a crash (the
    events and their marks) was flushed with the events' commit; if the delivery's commit is lost,
    the marks are still set and the re-drive delivers again. (A live notice sent just before such a
    lost commit may show a message that reappears when it is redelivered.)

Reading
    :class:`OrmEventStore` implements :class:`federation.protocol.EventStore` over the table and
    memoises events it has loaded (an instance lives for one unit of work). State maps are stored as
    JSON lists of ``[type, state_key, event_id]`` (:func:`encode_state` / :func:`decode_state`).
"""

from __future__ import annotations

import contextlib
import enum
import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from federation.models import MatrixEvent, MatrixRoom
from federation.protocol.errors import UnsupportedRoomVersion
from federation.protocol.events import Event, StateKey
from federation.protocol.room_versions import RoomVersion, get_room_version

log = logging.getLogger(__name__)

REDELIVER_AFTER = 60.0


class Arrival(enum.Enum):
    """How an event came to be stored."""

    LIVE = "live"  # at the room's head: ours, or accepted on receipt / in a handshake
    HISTORY = "history"  # backfilled: from before what we held, stored as an outlier
    OUTLIER = "outlier"  # an auth or state event fetched to check others; not timeline
    OUT_OF_BAND = "out_of_band"  # a membership change in a room we are not in (an invite withdrawn)


@dataclass(frozen=True)
class PersistedEvent:
    """What listeners are handed: the event, its room, how it arrived and how it was judged."""

    room_id: str
    event: Event
    arrival: Arrival
    rejected_reason: str = ""
    soft_failed: bool = False

    @property
    def accepted(self) -> bool:
        """Neither rejected nor soft-failed: the event counts in the room."""
        return not self.rejected_reason and not self.soft_failed


Listener = Callable[[PersistedEvent], None]
ManyListener = Callable[[Sequence[PersistedEvent]], None]
Wants = Callable[[PersistedEvent], bool]
_listeners: list[tuple[Listener, Wants]] = []
_many: dict[Listener, tuple[ManyListener, Wants]] = {}
_delivery_contexts: list[Callable[[], contextlib.AbstractContextManager[object]]] = []


def register_listener(listener: Listener, wants: Wants, *, many: ManyListener | None = None,
                      batchable: Wants | None = None) -> None:
    """Run ``listener`` after commit for every persisted event that ``wants`` accepts (idempotent per pair).

    ``many``, if given, must do what ``listener`` does for each of the events it is handed, in
    order; the delivery then calls it once for consecutive events that only this listener wants
    and ``batchable`` accepts (default: all), in one savepoint, and should it raise, calls
    ``listener`` for each of them instead (each in a savepoint of its own, as without ``many``): a
    bulk form that may fail as a whole. Other events go to ``listener`` one at a time.
    """
    if not any(fn is listener for fn, _ in _listeners):
        _listeners.append((listener, wants))
    if many is not None:
        _many[listener] = (many, batchable or (lambda p: True))
    else:
        _many.pop(listener, None)


def register_delivery_context(factory: Callable[[], contextlib.AbstractContextManager[object]]) -> None:
    """Enter ``factory()`` around each delivery to the listeners (its transaction and what runs
    when it commits), e.g. to send the delivery's notices together at its end. Registered once at
    start-up."""
    if factory not in _delivery_contexts:
        _delivery_contexts.append(factory)


def unregister_delivery_context(factory: Callable[[], contextlib.AbstractContextManager[object]]) -> None:
    """Undo :func:`register_delivery_context` (tests)."""
    if factory in _delivery_contexts:
        _delivery_contexts.remove(factory)


def unregister_listener(listener: Listener) -> None:
    """Remove a listener (tests)."""
    _listeners[:] = [(fn, w) for fn, w in _listeners if fn is not listener]
    _many.pop(listener, None)


def encode_state(state: Mapping[StateKey, str]) -> list[list[str]]:
    """``{(type, sk): id}`` -> the JSON form: a sorted list of ``[type, state_key, event_id]``.

    (A list, not an object with joined keys: any separator could occur in types or state keys, and
    PostgreSQL's jsonb cannot hold NUL.)
    """
    return sorted([t, sk, eid] for (t, sk), eid in state.items())


def decode_state(data: Any) -> dict[StateKey, str]:
    """The JSON form -> ``{(type, sk): id}``."""
    return {(t, sk): eid for t, sk, eid in (data or [])}


IfExists = Literal["keep", "replace", "update", "new"]


def persist_event(room: MatrixRoom, event: Event, *, arrival: Arrival,
                  state_after: Mapping[StateKey, str] | None = None, outlier: bool | None = None,
                  rejected_reason: str = "", soft_failed: bool = False, if_exists: IfExists = "replace") -> bool:
    """Store one event of ``room``; hand it to the interested listeners after commit.

    Args:
        room: its room (stored).
        event: the checked event.
        arrival: how it came (what listeners go by).
        state_after: the room state after it, when known (None: unknown).
        outlier: whether we lack the state at it; default: ``state_after is None``.
        rejected_reason: non-empty when it failed auth (kept for auth chains, never shown).
        soft_failed: it passed auth but not against the current state.
        if_exists: an existing row with the same ID is ``"kept"`` (nothing written, False returned),
            ``"replace"``-d (deleted, then the new row inserted), or ``"update"``-d in place (its
            fields set from these arguments; ``state_after`` kept when None is given), or ``"new"``:
            the caller knows there is none (it checked under the room's lock), so the row is
            inserted without a savepoint or a delete first (a row there after all fails the insert).

    Returns whether a row was written. Guarantee: the row and its listener mark commit together.
    """
    outlier = state_after is None if outlier is None else outlier
    persisted = PersistedEvent(room.room_id, event, arrival, rejected_reason, soft_failed)
    wanted = [fn for fn, wants in _listeners if _wants(wants, persisted)]
    fields: dict[str, Any] = dict(
        room=room, type=event.type, state_key=event.state_key, sender=event.sender,
        origin_server_ts=event.origin_server_ts, depth=event.depth, pdu=dict(event.pdu), outlier=outlier,
        rejected_reason=rejected_reason, soft_failed=soft_failed,
        pending_arrival=arrival.value if wanted else "")
    if state_after is not None:
        fields["state_after"] = encode_state(state_after)
    if if_exists == "new":
        with transaction.atomic(savepoint=False):  # one INSERT: atomic alone; a transaction if none is open
            MatrixEvent.objects.create(event_id=event.event_id, **fields)
            if wanted:
                _queue().append((persisted, wanted))
                transaction.on_commit(_deliver_committed)
        return True
    with transaction.atomic():
        if if_exists == "keep":
            _, created = MatrixEvent.objects.get_or_create(event_id=event.event_id, defaults=fields)
            if not created:
                return False
        elif if_exists == "update":
            MatrixEvent.objects.update_or_create(event_id=event.event_id, defaults=fields)
        else:
            MatrixEvent.objects.filter(event_id=event.event_id).delete()
            MatrixEvent.objects.create(event_id=event.event_id, **fields)
        if wanted:
            _queue().append((persisted, wanted))
            transaction.on_commit(_deliver_committed)
    return True


@dataclass(frozen=True)
class NewEvent:
    """One event for :func:`persist_new_events`: :func:`persist_event`'s arguments."""

    event: Event
    arrival: Arrival
    state_after: Mapping[StateKey, str] | None = None
    outlier: bool | None = None  # default, as persist_event's: ``state_after is None``
    rejected_reason: str = ""
    soft_failed: bool = False


def persist_new_events(room: MatrixRoom, items: Sequence[NewEvent]) -> None:
    """Store events of ``room`` that the caller knows are not stored (it checked under the room's
    lock), as ``persist_event(..., if_exists="new")`` for each in order would: the same rows,
    marks and listener deliveries after commit, with one bulk insert (a ``COPY`` on PostgreSQL)
    instead of an ``INSERT`` per event. A row there after all fails the insert (all of it)."""
    persist_new_events_of_rooms([(room, items)])


def persist_new_events_of_rooms(batches: Sequence[tuple[MatrixRoom, Sequence[NewEvent]]]) -> None:
    """:func:`persist_new_events` for the events of several rooms, in one bulk insert: the same as
    calling it for each ``(room, items)`` pair in order."""
    if not any(items for _, items in batches):
        return
    rows: list[_NewRow] = []
    with transaction.atomic(savepoint=False):
        for room, items in batches:
            for item in items:
                persisted = PersistedEvent(room.room_id, item.event, item.arrival, item.rejected_reason,
                                           item.soft_failed)
                wanted = [fn for fn, wants in _listeners if _wants(wants, persisted)]
                outlier = item.state_after is None if item.outlier is None else item.outlier
                rows.append(_NewRow(room.room_id, item.event, outlier, item.rejected_reason, item.soft_failed,
                                    item.arrival.value if wanted else "",
                                    encode_state(item.state_after) if item.state_after is not None else None))
                if wanted:
                    _queue().append((persisted, wanted))
        _insert_rows(rows)
        if _queue():
            transaction.on_commit(_deliver_committed)


def persist_outliers(room: MatrixRoom, events: Sequence[tuple[Event, str]], *, arrival: Arrival) -> int:
    """Store many events of ``room`` whose state is unknown (a join's state and auth chain) at once.

    Args:
        room: their room (stored).
        events: ``(checked event, rejected_reason)`` pairs, in the order they were judged; an ID given
            twice counts once, as given last.
        arrival: how they came (what listeners go by).

    Guarantee: the same rows, marks and listener deliveries as calling :func:`persist_event` with
    ``outlier=True, if_exists="update"`` for each pair in order (an existing row's fields are set,
    its ``state_after`` kept), in one transaction, with one query per thousand events to find
    existing rows and one bulk insert (a ``COPY`` on PostgreSQL) per thousand new ones instead of two
    queries per event.
    Returns how many rows were written (inserted or updated).
    """
    latest: dict[str, tuple[Event, str]] = {}
    for event, reason in events:
        latest.pop(event.event_id, None)  # keep the order of the last occurrence
        latest[event.event_id] = (event, reason)
    items = list(latest.values())
    written = 0
    with transaction.atomic():
        for i in range(0, len(items), 1000):
            chunk = items[i:i + 1000]
            existing = {r.event_id: r for r in MatrixEvent.objects.filter(
                event_id__in=[e.event_id for e, _ in chunk]).defer("pdu", "state_after")}
            new: list[_NewRow] = []
            updated: list[MatrixEvent] = []
            for event, reason in chunk:
                persisted = PersistedEvent(room.room_id, event, arrival, reason, False)
                wanted = [fn for fn, wants in _listeners if _wants(wants, persisted)]
                mark = arrival.value if wanted else ""
                row = existing.get(event.event_id)
                if row is None:
                    new.append(_NewRow(room.room_id, event, True, reason, False, mark, None))
                else:
                    row.room = room
                    row.type, row.state_key, row.sender = event.type, event.state_key, event.sender
                    row.origin_server_ts, row.depth, row.pdu = event.origin_server_ts, event.depth, dict(event.pdu)
                    row.outlier, row.rejected_reason, row.soft_failed = True, reason, False
                    row.pending_arrival = mark
                    updated.append(row)
                if wanted:
                    _queue().append((persisted, wanted))
            _insert_rows(new)
            if updated:
                MatrixEvent.objects.bulk_update(updated, ["room", "type", "state_key", "sender", "origin_server_ts",
                                                          "depth", "pdu", "outlier", "rejected_reason",
                                                          "soft_failed", "pending_arrival"])
            written += len(new) + len(updated)
        if _queue():
            transaction.on_commit(_deliver_committed)
    return written


# The columns _insert_rows copies, in its rows' order (the other, ``stream``, comes from its
# sequence). A model change that adds a column makes it fall back to bulk_create.
_COPIED = ("event_id", "room_id", "type", "state_key", "sender", "origin_server_ts", "depth", "pdu", "outlier",
           "rejected_reason", "soft_failed", "received_at", "pending_arrival", "state_after")


@dataclass(frozen=True)
class _NewRow:
    """A row :func:`_insert_rows` writes: the event and the fields that are not in it."""

    room_id: str
    event: Event
    outlier: bool
    rejected_reason: str
    soft_failed: bool
    pending_arrival: str
    state_after: list[list[str]] | None  # encoded (encode_state), None: unknown


def _insert_rows(rows: list[_NewRow]) -> None:
    """Insert new event rows (of any rooms).

    On PostgreSQL (psycopg 3) through one ``COPY`` of the values straight from the events: Django's
    ``bulk_create`` would build a model instance per row and quote every value in Python, most of
    the cost of storing a big room's state. Elsewhere through ``bulk_create``. Same rows either way.
    """
    if not rows:
        return
    now = timezone.now()
    if connection.vendor != "postgresql" or not _is_psycopg3() or \
            {f.column for f in MatrixEvent._meta.concrete_fields} != {*_COPIED, "stream"}:
        MatrixEvent.objects.bulk_create([MatrixEvent(
            event_id=r.event.event_id, room_id=r.room_id, type=r.event.type, state_key=r.event.state_key,
            sender=r.event.sender, origin_server_ts=r.event.origin_server_ts, depth=r.event.depth,
            pdu=dict(r.event.pdu), outlier=r.outlier, rejected_reason=r.rejected_reason, soft_failed=r.soft_failed,
            pending_arrival=r.pending_arrival, state_after=r.state_after) for r in rows])
        return
    from psycopg.types.json import Jsonb  # PostgreSQL only: SQLite took the branch above

    qn = connection.ops.quote_name
    sql = f"COPY {qn(MatrixEvent._meta.db_table)} ({', '.join(qn(c) for c in _COPIED)}) FROM STDIN"
    with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:  # the psycopg cursor under Django's
        for r in rows:
            ev = r.event
            copy.write_row((ev.event_id, r.room_id, ev.type, ev.state_key, ev.sender, ev.origin_server_ts,
                            ev.depth, Jsonb(dict(ev.pdu)), r.outlier, r.rejected_reason, r.soft_failed, now,
                            r.pending_arrival, Jsonb(r.state_after) if r.state_after is not None else None))


def _is_psycopg3() -> bool:
    # Imported here: the module imports the PostgreSQL driver, absent from SQLite-only installs.
    from django.db.backends.postgresql.psycopg_any import is_psycopg3

    return bool(is_psycopg3)


def _wants(wants: Wants, persisted: PersistedEvent) -> bool:
    try:
        return bool(wants(persisted))
    except Exception:
        log.exception("listener filter failed for %s", persisted.event.event_id)
        return False


Delivery = tuple[PersistedEvent, list[Listener]]
_local = threading.local()


def delivery_memo() -> dict[Any, Any]:
    """Scratch space that listeners share for the rest of the current delivery (one transaction),
    e.g. rows that consecutive events of a transaction all need. Emptied whenever a listener call
    fails (its savepoint was rolled back, so what it put here may not exist) and dropped when the
    delivery ends; outside a delivery, a fresh dict each call (nothing is kept)."""
    memo: dict[Any, Any] | None = getattr(_local, "memo", None)
    return memo if memo is not None else {}


def delivery_event_ids() -> tuple[str, ...]:
    """The IDs of the events the current delivery runs listeners for (``()`` outside a delivery), so
    that a listener can read what it needs for all of them at once."""
    ids: tuple[str, ...] | None = getattr(_local, "event_ids", None)
    return ids if ids is not None else ()


def _queue() -> list[Delivery]:
    queue: list[Delivery] | None = getattr(_local, "queue", None)
    if queue is None:
        queue = _local.queue = []
    return queue


def _deliver_committed() -> None:
    """The commit callback: deliver what this thread persisted and has now committed."""
    queue = _queue()
    if not queue:
        return
    taken = list(queue)
    queue.clear()
    batch: dict[str, Delivery] = {}
    for persisted, listeners in taken:
        batch[persisted.event.event_id] = (persisted, listeners)  # the latest persist of an ID wins
    # Entries of rolled-back savepoints have no marked row: _deliver's read of the marked rows leaves them out.
    _deliver(list(batch.values()))


def _deliver(batch: list[Delivery]) -> None:
    """Run each event's listeners in order, then clear the events' marks; one transaction.

    The batch's marked rows are locked first (``SKIP LOCKED`` where the database has it): a
    concurrent re-drive of the same events skips them, so no event is delivered twice at once.
    A listener failing on a database error (a deadlock, a lost connection) leaves its event marked,
    to be delivered again by the re-drive; any other failure is logged and the event counts as
    delivered (it would fail the same way again).
    """
    with contextlib.ExitStack() as contexts, transaction.atomic():
        for factory in list(_delivery_contexts):  # left after the atomic block, its commit and commit hooks
            contexts.enter_context(factory())
        connection = transaction.get_connection()
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit TO OFF")
        rows = MatrixEvent.objects.filter(event_id__in=[p.event.event_id for p, _ in batch], pending_arrival__gt="")
        if connection.features.has_select_for_update_skip_locked:
            rows = rows.select_for_update(skip_locked=True)
        mine = set(rows.values_list("event_id", flat=True))
        retry: set[str] = set()
        _local.memo = {}
        _local.event_ids = tuple(p.event.event_id for p, _ in batch if p.event.event_id in mine)
        try:
            _run_listeners(batch, mine, retry)
        finally:
            _local.memo = None
            _local.event_ids = None
        MatrixEvent.objects.filter(event_id__in=mine - retry).update(pending_arrival="")


def _run_listeners(batch: list[Delivery], mine: set[str], retry: set[str]) -> None:
    """Run the listeners of the events in ``mine``, in order, each call in its own savepoint; a
    failure is logged and recorded (``retry`` on a database error) alone. Consecutive events that
    only one listener wants, and it has a bulk form, go to that form in one call first (see
    :func:`register_listener`)."""
    items = [(p, listeners) for p, listeners in batch if p.event.event_id in mine]

    def bulk_form(index: int) -> ManyListener | None:
        persisted, listeners = items[index]
        form = _many.get(listeners[0]) if len(listeners) == 1 else None
        return form[0] if form is not None and _wants(form[1], persisted) else None

    i = 0
    while i < len(items):
        listeners = items[i][1]
        many = bulk_form(i)
        j = i + 1
        if many is not None:
            while j < len(items) and items[j][1] == listeners and bulk_form(j) is many:
                j += 1
        run = [p for p, _ in items[i:j]]
        if many is None or len(run) == 1 or not _call_many(many, run):
            for persisted in run:
                _call_each(persisted, listeners, retry)
        i = j


def _call_many(many: ManyListener, run: list[PersistedEvent]) -> bool:
    """Call a bulk listener in one savepoint; False (rolled back, logged) if it raised."""
    try:
        with transaction.atomic():
            many(run)
        return True
    except Exception:  # not hidden: logged with its traceback, and each event's own call then shows what fails
        _local.memo.clear()  # it may hold rows the rolled-back savepoint wrote
        log.warning("bulk listener %s failed on %d events; each is delivered alone", getattr(many, "__name__", many),
                    len(run), exc_info=True)
        return False


def _call_each(persisted: PersistedEvent, listeners: list[Listener], retry: set[str]) -> None:
    for fn in listeners:
        try:
            with transaction.atomic():
                fn(persisted)
        except DatabaseError:
            _local.memo.clear()  # it may hold rows the rolled-back savepoint wrote
            log.exception("listener %s failed on %s; it will be redelivered", getattr(fn, "__name__", fn),
                          persisted.event.event_id)
            retry.add(persisted.event.event_id)
        except Exception:  # one listener's failure must not keep the event from the others
            _local.memo.clear()
            log.exception("listener %s failed on %s", getattr(fn, "__name__", fn), persisted.event.event_id)


def redeliver_pending(*, older_than: float = REDELIVER_AFTER, limit: int = 500) -> int:
    """Run the listeners again for events whose delivery was cut short (a crash after commit).

    Only rows marked longer than ``older_than`` seconds ago are taken (younger ones are probably
    being delivered right now). Returns how many events were delivered.
    """
    cutoff = timezone.now() - timedelta(seconds=older_than)
    rows = list(MatrixEvent.objects.filter(pending_arrival__gt="", received_at__lt=cutoff)
                .select_related("room").order_by("stream")[:limit])
    for row in rows:
        try:
            rv = get_room_version(row.room.room_version)
        except Exception as exc:  # its room is gone or of a version we no longer know: nothing to deliver to
            log.warning("not redelivering %s: %s", row.event_id, exc)
            MatrixEvent.objects.filter(pk=row.pk).update(pending_arrival="")
            continue
        persisted = PersistedEvent(row.room_id, event_from_row(row, rv), Arrival(row.pending_arrival),
                                   row.rejected_reason, row.soft_failed)
        _deliver([(persisted, [fn for fn, wants in _listeners if _wants(wants, persisted)])])
    return len(rows)


def mark_state_known(event_ids: Iterable[str], state: Mapping[StateKey, str]) -> None:
    """We learnt the state after these held events (the state before our join, at its prev events):
    record it where it was unknown; they stop being outliers."""
    MatrixEvent.objects.filter(event_id__in=list(event_ids), state_after__isnull=True).update(
        state_after=encode_state(state), outlier=False)


def event_from_row(row: MatrixEvent, rv: RoomVersion) -> Event:
    """Rebuild the protocol :class:`Event` of a stored row (ID as stored)."""
    return Event(row.pdu, rv, row.event_id)


class OrmEventStore:
    """``EventStore`` over the database, with a per-instance cache."""

    def __init__(self, room: MatrixRoom | None = None) -> None:
        self.room = room
        self._cache: dict[str, Event] = {}
        self._rejected: set[str] = set()
        self._versions: dict[str, RoomVersion] = {}
        if room is not None:  # its version is known; another room's is read when an event needs it
            with contextlib.suppress(UnsupportedRoomVersion):  # raised again then, should one of its events be read
                self._versions[room.room_id] = get_room_version(room.room_version)

    def remember(self, event: Event, rejected: bool = False) -> None:
        """Add an event that is being processed (not yet in the database)."""
        self._cache[event.event_id] = event
        if rejected:
            self._rejected.add(event.event_id)

    def _version(self, room_id: str) -> RoomVersion:
        rv = self._versions.get(room_id)
        if rv is None:
            rv = get_room_version(MatrixRoom.objects.values_list("room_version", flat=True).get(room_id=room_id))
            self._versions[room_id] = rv
        return rv

    def get_events(self, event_ids: Iterable[str]) -> dict[str, Event]:
        ids = list(event_ids)
        missing = [i for i in ids if i not in self._cache]
        if missing:
            for row in MatrixEvent.objects.filter(event_id__in=missing).only(
                    "event_id", "pdu", "room_id", "rejected_reason"):
                self._cache[row.event_id] = event_from_row(row, self._version(row.room_id))
                if row.rejected_reason:
                    self._rejected.add(row.event_id)
        return {i: self._cache[i] for i in ids if i in self._cache}

    @staticmethod
    def prefetch(wanted: Iterable[tuple[OrmEventStore, Iterable[str]]]) -> None:
        """Load into each store the events it names and does not hold, with one query for all the
        stores (what each store's :meth:`get_events` would have loaded, with a query each)."""
        asks = [(store, [i for i in ids if i not in store._cache]) for store, ids in wanted]
        missing = {i for _, ids in asks for i in ids}
        if not missing:
            return
        loaded: dict[str, tuple[Event, bool]] = {}
        rows = MatrixEvent.objects.filter(event_id__in=missing).only("event_id", "pdu", "room_id", "rejected_reason")
        for row in rows:
            rv = next((store._versions[row.room_id] for store, _ in asks if row.room_id in store._versions), None)
            event = event_from_row(row, rv or asks[0][0]._version(row.room_id))
            loaded[row.event_id] = (event, bool(row.rejected_reason))
        for store, ids in asks:
            for i in ids:
                if i in loaded:
                    store.remember(*loaded[i])

    def get_event(self, event_id: str) -> Event | None:
        """One event, or None."""
        return self.get_events([event_id]).get(event_id)

    def is_rejected(self, event_id: str) -> bool:
        if event_id not in self._cache:
            self.get_events([event_id])
        return event_id in self._rejected


def auth_chain_ids(event_ids: Iterable[str]) -> list[str]:
    """The auth chain of the given events (their auth events, recursively), from the database."""
    seen: set[str] = set()
    frontier = list(event_ids)
    while frontier:
        rows = MatrixEvent.objects.filter(event_id__in=frontier).values_list("pdu", flat=True)
        frontier = []
        for pdu in rows:
            for aid in pdu.get("auth_events", []):
                if aid not in seen:
                    seen.add(aid)
                    frontier.append(aid)
    return list(seen)


def pdus_for(event_ids: Iterable[str]) -> list[dict[str, Any]]:
    """The stored PDUs of the given events (unknown IDs left out), in the given order."""
    ids = list(event_ids)
    by_id = dict(MatrixEvent.objects.filter(event_id__in=ids).values_list("event_id", "pdu"))
    return [by_id[i] for i in ids if i in by_id]
