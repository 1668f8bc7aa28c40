"""``/send`` with the production default (``CONCORD_FEDERATION_SEND_WAIT=0``): the answer comes once
the PDUs are staged, the room queue processes them afterwards in order, and a staged PDU is never
lost, even when its room's processor is busy elsewhere or this process cannot process it at all."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.federation.conftest import ConcordTLS
from tests.federation.fakepeer import FakePeer
from tests.federation.signed_requests import joined_room, send_txn

pytestmark = pytest.mark.django_db(transaction=True)


def _wait_for(check: Any, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _accepted_in_order(room_id: str) -> list[str]:
    from federation.models import MatrixEvent

    return list(MatrixEvent.objects.filter(room_id=room_id, type="m.room.message", rejected_reason="",
                                           soft_failed=False, outlier=False)
                .order_by("stream").values_list("event_id", flat=True))


def test_the_answer_does_not_wait_and_every_pdu_is_processed_in_order(
        fed: ConcordTLS, peer: FakePeer, settings: Any) -> None:
    from federation.handlers import room_queue
    from federation.models import StagedPDU

    room = joined_room(fed, peer)
    settings.CONCORD_FEDERATION_SEND_WAIT = 0
    sent = []
    for _ in range(4):  # transactions back to back, each answered before the last is processed
        batch = [room.send("m.room.message", {"msgtype": "m.text", "body": f"m{len(sent) + i}"}) for i in range(50)]
        results = send_txn(fed, peer, [e.pdu for e in batch])
        assert results == {e.event_id: {} for e in batch}
        sent += [e.event_id for e in batch]
    _wait_for(lambda: len(_accepted_in_order(room.room_id)) == len(sent), "the 200 PDUs")
    assert _accepted_in_order(room.room_id) == sent
    _wait_for(room_queue.idle, "the room queue")
    assert not StagedPDU.objects.exists()


def test_a_pdu_staged_while_its_room_is_locked_elsewhere_is_processed_when_the_lock_goes(
        fed: ConcordTLS, peer: FakePeer, settings: Any) -> None:
    """Another process holding the room's lock (simulated by taking it here) keeps this process
    from processing; the answer still comes at once, the PDUs stay staged, and the beat's sweep
    (or the holder's re-check on release) processes them afterwards, in order."""
    from django.core.cache import cache

    from federation.handlers import room_queue
    from federation.handlers.receive import process_all_staged
    from federation.models import StagedPDU

    room = joined_room(fed, peer)
    settings.CONCORD_FEDERATION_SEND_WAIT = 0
    lock = f"fed:room-lock:{room.room_id}"
    assert cache.add(lock, 1, timeout=60)
    try:
        batch = [room.send("m.room.message", {"msgtype": "m.text", "body": f"held {i}"}) for i in range(5)]
        assert send_txn(fed, peer, [e.pdu for e in batch]) == {e.event_id: {} for e in batch}
        _wait_for(room_queue.idle, "the room queue to give up on the locked room")
        assert StagedPDU.objects.filter(room_id=room.room_id).count() == 5
        assert _accepted_in_order(room.room_id) == []
    finally:
        cache.delete(lock)
    assert process_all_staged() == 1
    assert _accepted_in_order(room.room_id) == [e.event_id for e in batch]
    assert not StagedPDU.objects.exists()


def test_with_a_wait_the_answer_carries_each_pdus_verdict(fed: ConcordTLS, peer: FakePeer) -> None:
    """The tests' setting (a wait long enough for the processing): rejections are in the answer."""
    room = joined_room(fed, peer)
    ok = room.send("m.room.message", {"msgtype": "m.text", "body": "fine"})
    intruder = room.send("m.room.message", {"msgtype": "m.text", "body": "not a member"},
                         sender=peer.user("mallory"), advance=False)
    results = send_txn(fed, peer, [ok.pdu, intruder.pdu])
    assert results[ok.event_id] == {}
    assert "error" in results[intruder.event_id]


def test_the_answer_comes_while_the_processing_is_still_blocked(fed: ConcordTLS, peer: FakePeer,
                                                              settings: Any) -> None:
    """A listener of the event store that blocks holds the room's processing; ``/send`` answers
    anyway, and the events follow once it is let go."""
    import threading

    from federation.store.events import register_listener, unregister_listener

    room = joined_room(fed, peer)
    settings.CONCORD_FEDERATION_SEND_WAIT = 0
    entered, release, finished = threading.Event(), threading.Event(), threading.Event()

    def blocker(persisted: Any) -> None:
        entered.set()
        release.wait(30)
        finished.set()

    register_listener(blocker, lambda p: p.event.type == "m.room.message")
    try:
        msg = room.send("m.room.message", {"msgtype": "m.text", "body": "slow"})
        assert send_txn(fed, peer, [msg.pdu]) == {msg.event_id: {}}
        assert entered.wait(30), "the processing did not start"
        assert not finished.is_set()  # answered while the processing was still held
    finally:
        release.set()
        unregister_listener(blocker)
    _wait_for(lambda: _accepted_in_order(room.room_id) == [msg.event_id], "the held event")


def test_an_event_that_breaks_its_group_is_refused_alone_and_the_rest_is_kept(
        fed: ConcordTLS, peer: FakePeer, monkeypatch: Any) -> None:
    """A group of staged events is first processed without a savepoint per event; one that raises
    rolls the group back, and the redo (a savepoint per event) refuses only that one."""
    import federation.handlers.receive as receive

    room = joined_room(fed, peer)
    batch = [room.send("m.room.message", {"msgtype": "m.text", "body": f"g{i}"}) for i in range(3)]
    # The broken one on a side branch, so that the events after it do not need it as a prev event.
    batch.append(room.send("m.room.message", {"msgtype": "m.text", "body": "side"}, advance=False))
    batch += [room.send("m.room.message", {"msgtype": "m.text", "body": f"g{i}"}) for i in range(3, 5)]
    original = receive._process_event
    calls: list[str] = []

    def breaks_on_the_fourth(run: Any, event: Any, origin: str, *, fetch: bool) -> str:
        calls.append(event.event_id)
        if event.event_id == batch[3].event_id:
            raise RuntimeError("simulated failure")
        return original(run, event, origin, fetch=fetch)

    monkeypatch.setattr(receive, "_process_event", breaks_on_the_fourth)
    results = send_txn(fed, peer, [e.pdu for e in batch])
    assert results[batch[3].event_id] == {"error": "internal error: RuntimeError"}
    assert all(results[e.event_id] == {} for e in batch if e is not batch[3])
    assert calls.count(batch[0].event_id) == 2  # the first try rolled back, then the redo
    from federation.models import MatrixEvent, StagedPDU

    assert not MatrixEvent.objects.filter(event_id=batch[3].event_id).exists()
    assert MatrixEvent.objects.filter(event_id__in=[e.event_id for e in batch]).count() == 5
    assert not StagedPDU.objects.exists()


def test_a_group_written_with_one_room_update_leaves_the_room_at_its_last_event(
        fed: ConcordTLS, peer: FakePeer) -> None:
    """The room row (extremities, current state) is saved once per group of staged events: after a
    transaction of 50 messages and a name change among them it names the last event, with the name."""
    from federation.handlers import room_queue
    from federation.models import MatrixEvent, MatrixRoom
    from federation.store.events import decode_state

    room = joined_room(fed, peer)
    batch = [room.send("m.room.message", {"msgtype": "m.text", "body": f"g{i}"}) for i in range(25)]
    batch.append(room.send("m.room.name", {"name": "grouped"}, state_key=""))
    batch += [room.send("m.room.message", {"msgtype": "m.text", "body": f"h{i}"}) for i in range(24)]
    assert send_txn(fed, peer, [e.pdu for e in batch]) == {e.event_id: {} for e in batch}
    _wait_for(room_queue.idle, "the room queue")
    mroom = MatrixRoom.objects.get(room_id=room.room_id)
    assert mroom.forward_extremities == [batch[-1].event_id]
    name_id = decode_state(mroom.current_state)[("m.room.name", "")]
    assert name_id == batch[25].event_id and MatrixEvent.objects.filter(event_id=name_id, rejected_reason="").exists()
