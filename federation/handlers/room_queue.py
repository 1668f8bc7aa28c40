"""This process's queue of rooms whose staged PDUs wait to be processed, off the ``/send`` request
that staged them (so a sending server gets its answer without waiting for the processing, as from
Synapse, and sends its next transaction while this one is processed).

Guarantees
    * Durability does not depend on this queue: a room is queued only after its PDUs' staging
      committed, so a crash, a killed thread or a lost submission leaves them staged for the next
      run of the room or the beat task (:func:`federation.handlers.receive.process_all_staged`).
    * A room is processed by one thread of this process at a time (and by one process at a time,
      through :func:`~federation.handlers.receive.process_staged_rooms`' locks), its events in
      staging order. A room asked for while it is being processed is processed again right after
      that run, so nothing staged during a run waits for the beat.
    * The rooms of one :func:`submit` that no thread holds yet go to one thread, which processes
      them together (one call of the processor for all, so that their writes can share statements
      and commits) and keeps them while they are asked for again; a room some thread holds already
      stays with that thread. The price: the futures of the rooms of one run resolve together, so
      a room whose events need fetches from another server delays its run-mates' verdicts (not
      their processing's commit, nor any other process: see ``process_staged_rooms``).
    * :func:`submit` returns a future per room that resolves, once a run of the room that started
      after the call has ended, to that run's verdicts (``{event_id: error or ""}``, possibly of
      other rooms' events too); a run that fails resolves it to ``{}`` (the failure is logged, the
      PDUs stay staged).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from django.db import close_old_connections

from federation import config

log = logging.getLogger(__name__)

Results = dict[str, str]
# Called with ``{room_id: origin}`` (the rooms to process now, each with the server that sent its PDUs).
Processor = Callable[[dict[str, str]], Results]


@dataclass
class _Room:
    origin: str
    waiting: list[Future[Results]] = field(default_factory=list)  # resolved by the next run


_THREAD_PREFIX = "concord-inbound"
_lock = threading.Lock()
_rooms: dict[str, _Room] = {}
_pool: ThreadPoolExecutor | None = None


def _executor() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=config.inbound_threads(), thread_name_prefix=_THREAD_PREFIX)
    return _pool


def submit(rooms: Mapping[str, str], processor: Processor) -> list[Future[Results]]:
    """Have ``processor`` run for the rooms (``{room_id: origin}``) in queue threads (see the
    guarantees); returns a future per room, in the mapping's order."""
    futures: list[Future[Results]] = []
    fresh: list[str] = []
    with _lock:
        for room_id, origin in rooms.items():
            future: Future[Results] = Future()
            futures.append(future)
            room = _rooms.get(room_id)
            if room is not None:  # running or about to: it runs again for this caller
                room.origin = origin or room.origin
                room.waiting.append(future)
                continue
            _rooms[room_id] = _Room(origin, [future])
            fresh.append(room_id)
        if fresh:
            _executor().submit(_run, fresh, processor)
    return futures


def _run(room_ids: list[str], processor: Processor) -> None:
    """A queue thread: run ``processor`` for those of its rooms that are asked for, until none is."""
    while True:
        batch: dict[str, str] = {}
        waiters: list[Future[Results]] = []
        with _lock:
            for room_id in list(room_ids):
                room = _rooms[room_id]
                if not room.waiting:  # released: the next submit gives it to a thread again
                    del _rooms[room_id]
                    room_ids.remove(room_id)
                    continue
                waiters += room.waiting
                room.waiting = []
                batch[room_id] = room.origin
            if not batch:
                return
        results: Results = {}
        try:
            close_old_connections()
            results = processor(batch)
        except Exception:  # the PDUs stay staged; the next run or the beat task processes them
            log.exception("processing the staged PDUs of %s failed", ", ".join(batch))
        finally:
            close_old_connections()
            for future in waiters:
                future.set_result(results)


def after(futures: Sequence[Future[Results]], fn: Callable[[], object]) -> None:
    """Call ``fn`` once every future is resolved (at once if they are), in the thread that
    resolved the last one (the caller's, if all were resolved); a failure of ``fn`` is logged."""
    remaining = [len(futures)]
    guard = threading.Lock()

    def call() -> None:
        try:
            fn()
        except Exception:  # a deferred step (the transaction's EDUs) must not break a queue thread
            log.exception("a step after processing staged PDUs failed")
        finally:
            if threading.current_thread().name.startswith(_THREAD_PREFIX):
                close_old_connections()  # never in the caller's thread: it may be inside a transaction

    def one_done(_: Future[Results]) -> None:
        with guard:
            remaining[0] -= 1
            last = remaining[0] == 0
        if last:
            call()

    if not futures:
        call()
        return
    for future in futures:
        future.add_done_callback(one_done)


def idle() -> bool:
    """Whether no room is queued or being processed in this process (tests, shutdown)."""
    with _lock:
        return not _rooms
