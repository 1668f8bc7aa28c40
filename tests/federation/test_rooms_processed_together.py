"""A transaction's PDUs of several rooms are processed together (``process_staged_rooms``): one
database transaction for all the rooms, as far as their events need no fetch. What must hold
is what processing each room alone gives: every event judged, each room's events in order, each
room's row at its last event, the chat mirror fed, and a failure or a fetch in one room
handled in that room alone."""

from __future__ import annotations

from typing import Any

import pytest

from tests.federation.conftest import ConcordTLS
from tests.federation.fakepeer import FakePeer, PeerRoom
from tests.federation.signed_requests import joined_room, send_txn

pytestmark = pytest.mark.django_db(transaction=True)


def _accepted(room_id: str) -> list[str]:
    from federation.models import MatrixEvent

    return list(MatrixEvent.objects.filter(room_id=room_id, type="m.room.message", rejected_reason="",
                                           soft_failed=False, outlier=False)
                .order_by("stream").values_list("event_id", flat=True))


def _interleaved(rooms: list[PeerRoom], per_room: int, prefix: str = "m") -> list[Any]:
    return [room.send("m.room.message", {"msgtype": "m.text", "body": f"{prefix}{n}-{i}"})
            for i in range(per_room) for n, room in enumerate(rooms)]


@pytest.fixture
def together(monkeypatch: Any) -> list[tuple[list[str], list[str]]]:
    """Records each call of ``_process_rooms_together``: (the rooms given, the rooms left alone)."""
    import federation.handlers.receive as receive

    calls: list[tuple[list[str], list[str]]] = []
    original = receive._process_rooms_together

    def recording(rooms: Any, results: Any) -> list[str]:
        alone = original(rooms, results)
        calls.append((sorted(rooms), sorted(alone)))
        return alone

    monkeypatch.setattr(receive, "_process_rooms_together", recording)
    return calls


def test_three_rooms_in_one_transaction_are_processed_together_each_in_order(
        fed: ConcordTLS, peer: FakePeer, together: list[tuple[list[str], list[str]]]) -> None:
    from federation.models import MatrixRoom, StagedPDU
    from federation.store.events import decode_state

    rooms = [joined_room(fed, peer) for _ in range(3)]
    name = rooms[1].send("m.room.name", {"name": "renamed together"}, state_key="")
    batch = _interleaved(rooms, 16)
    intruder = rooms[2].send("m.room.message", {"msgtype": "m.text", "body": "not a member"},
                             sender=peer.user("mallory"), advance=False)
    results = send_txn(fed, peer, [name.pdu] + [e.pdu for e in batch] + [intruder.pdu])
    assert results.pop(intruder.event_id).get("error")
    assert results == {e.event_id: {} for e in [name, *batch]}
    assert together == [(sorted(r.room_id for r in rooms), [])]  # all of it in the one go
    for room in rooms:
        assert _accepted(room.room_id) == [e.event_id for e in batch if e.room_id == room.room_id]
        mroom = MatrixRoom.objects.get(room_id=room.room_id)
        assert mroom.forward_extremities == [room.last.event_id]
        assert decode_state(mroom.current_state) == room.state
    assert not StagedPDU.objects.exists()


def test_an_event_that_breaks_the_shared_transaction_is_refused_alone(
        fed: ConcordTLS, peer: FakePeer, monkeypatch: Any, together: list[tuple[list[str], list[str]]]) -> None:
    """One raising event rolls back every room's work; each room is then processed alone, where
    only that event is refused."""
    import federation.handlers.receive as receive

    # Rooms are processed in room ID order: the broken event in the last, so the first's are done when it raises.
    rooms = sorted((joined_room(fed, peer) for _ in range(2)), key=lambda r: r.room_id)
    batch = _interleaved(rooms, 3)
    side = rooms[1].send("m.room.message", {"msgtype": "m.text", "body": "side"}, advance=False)
    batch += _interleaved(rooms, 2, prefix="after")
    original = receive._process_event
    calls: list[str] = []

    def breaks_on_the_side_event(run: Any, event: Any, origin: str, *, fetch: bool) -> str:
        calls.append(event.event_id)
        if event.event_id == side.event_id:
            raise RuntimeError("simulated failure")
        return original(run, event, origin, fetch=fetch)

    monkeypatch.setattr(receive, "_process_event", breaks_on_the_side_event)
    results = send_txn(fed, peer, [e.pdu for e in batch[:6]] + [side.pdu] + [e.pdu for e in batch[6:]])
    # In the shared transaction, in its room's group alone, then in that group's redo event by event.
    assert calls.count(side.event_id) == 3
    assert results.pop(side.event_id) == {"error": "internal error: RuntimeError"}
    assert results == {e.event_id: {} for e in batch}
    assert together == [(sorted(r.room_id for r in rooms), sorted(r.room_id for r in rooms))]
    other_first = next(e for e in batch if e.room_id == rooms[0].room_id)
    assert calls.count(other_first.event_id) == 2  # rolled back with the rest, then done alone
    for room in rooms:
        assert _accepted(room.room_id) == [e.event_id for e in batch if e.room_id == room.room_id]


def test_a_room_whose_event_needs_a_fetch_goes_alone_and_the_others_together(
        fed: ConcordTLS, peer: FakePeer, together: list[tuple[list[str], list[str]]], monkeypatch: Any) -> None:
    """The room that needs a fetch is processed alone after the others, which are let go first:
    during its fetch, its lock is held and theirs is free."""
    from django.core.cache import cache

    import federation.handlers.receive as receive

    quiet, gappy = joined_room(fed, peer), joined_room(fed, peer)
    original = receive._fetch_missing_prevs
    during_fetch: list[tuple[bool, bool]] = []

    def fetching(run: Any, event: Any, origin: str) -> None:
        free = cache.add(f"fed:room-lock:{quiet.room_id}", 1, timeout=30)
        if free:
            cache.delete(f"fed:room-lock:{quiet.room_id}")
        during_fetch.append((free, cache.add(f"fed:room-lock:{gappy.room_id}", 1, timeout=30)))
        original(run, event, origin)

    monkeypatch.setattr(receive, "_fetch_missing_prevs", fetching)
    mine = [quiet.send("m.room.message", {"msgtype": "m.text", "body": f"q{i}"}) for i in range(3)]
    gap = [gappy.send("m.room.message", {"msgtype": "m.text", "body": f"g{i}"}) for i in range(4)]
    peer.requests.clear()
    results = send_txn(fed, peer, [mine[0].pdu, gap[-1].pdu, mine[1].pdu, mine[2].pdu])
    assert results == {e.event_id: {} for e in [*mine, gap[-1]]}
    assert together == [(sorted([quiet.room_id, gappy.room_id]), [gappy.room_id])]
    assert any("get_missing_events" in r for r in peer.requests)
    assert during_fetch == [(True, False)]  # the quiet room let go, the gappy one still held
    assert _accepted(quiet.room_id) == [e.event_id for e in mine]
    assert _accepted(gappy.room_id) == [e.event_id for e in gap]


def test_the_chat_mirror_gets_each_rooms_messages_in_its_chat_room(
        fed: ConcordTLS, peer: FakePeer, make_user: Any, together: list[tuple[list[str], list[str]]]) -> None:
    from federation.models import MatrixRoom
    from rooms.actions.rooms import do_create_room
    from rooms.models import Message

    owner = make_user("owner")
    rooms, chats = [], []
    for n in range(3):
        room = PeerRoom(peer)
        chat = do_create_room(owner, "c", f"portal-{n}")
        MatrixRoom.objects.create(room_id=room.room_id, room_version="10", chat_room=chat)
        evs = room.standard()
        assert send_txn(fed, peer, [e.pdu for e in evs]) == {e.event_id: {} for e in evs}
        rooms.append(room)
        chats.append(chat)
    together.clear()
    batch = _interleaved(rooms, 10)
    assert send_txn(fed, peer, [e.pdu for e in batch]) == {e.event_id: {} for e in batch}
    assert together == [(sorted(r.room_id for r in rooms), [])]
    for n, chat in enumerate(chats):
        texts = list(Message.objects.filter(room=chat, text__startswith="m").order_by("created_at")
                     .values_list("text", flat=True))
        assert texts == [f"m{n}-{i}" for i in range(10)]
