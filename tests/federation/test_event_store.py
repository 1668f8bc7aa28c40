"""The one writer of events and its listeners (federation.store.events), and the chat mirror that
listens (federation.bridge.incoming): delivered after commit, never on rollback, again after a
crash, and history mirrored as timeline only."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.db import transaction
from django.utils import timezone

from federation.models import BridgedMessage, MatrixEvent, MatrixRoom
from federation.protocol.builder import build_create_event, build_event
from federation.protocol.events import CREATE_KEY, Event, StateKey
from federation.protocol.room_versions import get_room_version
from federation.protocol.signing import SigningKey
from federation.store.events import (
    Arrival,
    PersistedEvent,
    persist_event,
    redeliver_pending,
    register_delivery_context,
    register_listener,
    unregister_delivery_context,
    unregister_listener,
)

pytestmark = pytest.mark.django_db(transaction=True)

REMOTE = "remote.example"
KEY = SigningKey.generate("t1")


class Room:
    """A linear room of ``REMOTE`` built in memory (nothing is sent anywhere)."""

    def __init__(self, version: str = "11") -> None:
        self.rv = get_room_version(version)
        self.ts = int(timezone.now().timestamp() * 1000) - 60_000
        self.creator = f"@alice:{REMOTE}"
        self.create = build_create_event(self.rv, sender=self.creator, origin_server_ts=self.ts, server_name=REMOTE,
                                         signing_key=KEY, room_id=f"!r{self.ts}:{REMOTE}")
        self.state: dict[StateKey, str] = {CREATE_KEY: self.create.event_id}
        self.last = self.create

    def send(self, event_type: str, content: dict[str, Any], *, sender: str | None = None,
             state_key: str | None = None, redacts: str | None = None) -> Event:
        self.ts += 1
        ev = build_event(self.rv, room_id=self.create.room_id, event_type=event_type, sender=sender or self.creator,
                         content=content, prev_events=[self.last], state=self.state, origin_server_ts=self.ts,
                         server_name=REMOTE, signing_key=KEY, state_key=state_key, redacts=redacts)
        self.last = ev
        if state_key is not None:
            self.state[(event_type, state_key)] = ev.event_id
        return ev


@pytest.fixture
def seen(settings: Any) -> Iterator[list[PersistedEvent]]:
    settings.CONCORD_SERVER_NAME = "concord.test"
    got: list[PersistedEvent] = []

    def listener(p: PersistedEvent) -> None:
        got.append(p)

    register_listener(listener, lambda p: p.event.type == "m.room.message")
    yield got
    unregister_listener(listener)


def test_listeners_run_after_commit_and_never_for_a_rolled_back_event(seen: list[PersistedEvent]) -> None:
    room = Room()
    mroom = MatrixRoom.objects.create(room_id=room.create.room_id, room_version="11")
    msg = room.send("m.room.message", {"msgtype": "m.text", "body": "hi"})
    with transaction.atomic():
        assert persist_event(mroom, msg, arrival=Arrival.LIVE, state_after=room.state)
        assert MatrixEvent.objects.get(event_id=msg.event_id).pending_arrival == "live"
        assert seen == []  # not before the commit
    assert [(p.event.event_id, p.arrival) for p in seen] == [(msg.event_id, Arrival.LIVE)]
    assert MatrixEvent.objects.get(event_id=msg.event_id).pending_arrival == ""

    lost = room.send("m.room.message", {"msgtype": "m.text", "body": "never"})
    with pytest.raises(RuntimeError), transaction.atomic():
        persist_event(mroom, lost, arrival=Arrival.LIVE)
        raise RuntimeError("roll back")
    assert not MatrixEvent.objects.filter(event_id=lost.event_id).exists()
    assert len(seen) == 1

    name = room.send("m.room.name", {"name": "x"}, state_key="")
    persist_event(mroom, name, arrival=Arrival.LIVE)
    assert MatrixEvent.objects.get(event_id=name.event_id).pending_arrival == ""  # nobody wanted it
    assert len(seen) == 1


def test_a_delivery_context_wraps_the_delivery_and_its_commit_hooks(settings: Any) -> None:
    """What ``register_delivery_context`` gives (the bridge holds a delivery's live events with
    it): entered before the listeners run, left after the delivery's commit ran its hooks."""
    import contextlib

    settings.CONCORD_SERVER_NAME = "concord.test"
    steps: list[str] = []

    @contextlib.contextmanager
    def around() -> Iterator[None]:
        steps.append("enter")
        yield
        steps.append("exit")

    def listener(p: PersistedEvent) -> None:
        steps.append(f"listener {p.event.content['body']}")
        transaction.on_commit(lambda: steps.append("delivery committed"))

    register_listener(listener, lambda p: p.event.type == "m.room.message")
    register_delivery_context(around)
    try:
        room = Room()
        mroom = MatrixRoom.objects.create(room_id=room.create.room_id, room_version="11")
        with transaction.atomic():
            for body in ("a", "b"):
                persist_event(mroom, room.send("m.room.message", {"msgtype": "m.text", "body": body}),
                              arrival=Arrival.LIVE, state_after=room.state)
            assert steps == []
    finally:
        unregister_delivery_context(around)
        unregister_listener(listener)
    assert steps == ["enter", "listener a", "listener b", "delivery committed", "delivery committed", "exit"]


def test_keep_does_not_overwrite_and_a_failing_listener_does_not_stop_the_others(
        seen: list[PersistedEvent]) -> None:
    room = Room()
    mroom = MatrixRoom.objects.create(room_id=room.create.room_id, room_version="11")

    def broken(p: PersistedEvent) -> None:
        raise ValueError("broken listener")

    register_listener(broken, lambda p: True)
    try:
        msg = room.send("m.room.message", {"msgtype": "m.text", "body": "once"})
        assert persist_event(mroom, msg, arrival=Arrival.HISTORY, if_exists="keep")
        assert not persist_event(mroom, msg, arrival=Arrival.HISTORY, if_exists="keep")
    finally:
        unregister_listener(broken)
    assert [p.event.event_id for p in seen] == [msg.event_id]
    row = MatrixEvent.objects.get(event_id=msg.event_id)
    assert row.outlier and row.pending_arrival == ""


def test_a_delivery_cut_short_by_a_crash_is_redelivered(seen: list[PersistedEvent]) -> None:
    room = Room()
    mroom = MatrixRoom.objects.create(room_id=room.create.room_id, room_version="11")
    msg = room.send("m.room.message", {"msgtype": "m.text", "body": "after the crash"})
    persist_event(mroom, msg, arrival=Arrival.LIVE, state_after=room.state)
    seen.clear()
    # As if the process had died between the event's commit and its listeners:
    MatrixEvent.objects.filter(event_id=msg.event_id).update(pending_arrival="live")
    assert redeliver_pending() == 0  # too young: probably being delivered right now
    MatrixEvent.objects.filter(event_id=msg.event_id).update(received_at=timezone.now() - timedelta(minutes=5))
    assert redeliver_pending() == 1
    assert [(p.event.event_id, p.arrival, p.event.content["body"]) for p in seen] == [
        (msg.event_id, Arrival.LIVE, "after the crash")]
    assert MatrixEvent.objects.get(event_id=msg.event_id).pending_arrival == ""
    assert redeliver_pending() == 0


def test_the_chat_mirror_takes_history_as_timeline_only(settings: Any, make_user: Any) -> None:
    """Backfilled messages and redactions reach the chat; a backfilled join does not (it is the past)."""
    from rooms.actions.rooms import do_create_room
    from rooms.models import Membership, Message

    settings.CONCORD_SERVER_NAME = "concord.test"
    owner = make_user("owner")
    chat_room = do_create_room(owner, "c", "history-here")
    room = Room()
    mroom = MatrixRoom.objects.create(room_id=room.create.room_id, room_version="11", chat_room=chat_room)
    bob = f"@bob:{REMOTE}"
    join = room.send("m.room.member", {"membership": "join", "displayname": "Bob"}, sender=bob, state_key=bob)
    first = room.send("m.room.message", {"msgtype": "m.text", "body": "old news"}, sender=bob)
    second = room.send("m.room.message", {"msgtype": "m.text", "body": "regretted"}, sender=bob)
    redaction = room.send("m.room.redaction", {}, sender=bob, redacts=second.event_id)
    for ev in (join, first, second, redaction):
        persist_event(mroom, ev, arrival=Arrival.HISTORY, if_exists="keep")

    assert not Membership.objects.filter(room=chat_room, user__username=bob).exists()
    links = dict(BridgedMessage.objects.filter(event_id__in=[first.event_id, second.event_id])
                 .values_list("event_id", "message_id"))
    kept = Message.objects.get(id=links[first.event_id])
    deleted = Message.objects.get(id=links[second.event_id])
    assert (kept.text, kept.user.username, kept.deleted_at) == ("old news", bob, None)
    assert deleted.deleted_at is not None and deleted.text != "regretted"
    assert abs(kept.created_at.timestamp() * 1000 - first.origin_server_ts) < 1000

    # The same events again (a repeated backfill, a redelivery) add nothing.
    MatrixEvent.objects.filter(event_id=first.event_id).update(
        pending_arrival="history", received_at=timezone.now() - timedelta(minutes=5))
    redeliver_pending()
    assert Message.objects.filter(room=chat_room, user__username=bob).count() == 2

    # Live, the join is mirrored.
    live_join = room.send("m.room.member", {"membership": "join", "displayname": "Bob"}, sender=bob, state_key=bob)
    persist_event(mroom, live_join, arrival=Arrival.LIVE, state_after=room.state)
    assert Membership.objects.get(room=chat_room, user__username=bob).state == Membership.JOINED


def _row(event_id: str) -> tuple[Any, ...]:
    return MatrixEvent.objects.filter(event_id=event_id).values_list(
        "room_id", "type", "state_key", "sender", "origin_server_ts", "depth", "pdu", "outlier", "rejected_reason",
        "soft_failed", "pending_arrival", "state_after").get()


def test_new_events_in_bulk_are_stored_and_delivered_as_one_at_a_time(seen: list[PersistedEvent]) -> None:
    from federation.store.events import NewEvent, persist_new_events

    room = Room()
    mroom = MatrixRoom.objects.create(room_id=room.create.room_id, room_version="11")
    one_at_a_time = [room.send("m.room.message", {"msgtype": "m.text", "body": f"single {i}"}) for i in range(2)]
    with transaction.atomic():
        for ev in one_at_a_time:
            persist_event(mroom, ev, arrival=Arrival.LIVE, state_after=room.state, outlier=False, if_exists="new")
    seen.clear()
    name = room.send("m.room.name", {"name": "bulk"}, state_key="")
    bulk = [NewEvent(room.send("m.room.message", {"msgtype": "m.text", "body": "accepted"}), Arrival.LIVE,
                     dict(room.state)),
            NewEvent(name, Arrival.LIVE, dict(room.state)),
            NewEvent(room.send("m.room.message", {"msgtype": "m.text", "body": "rejected"}), Arrival.LIVE,
                     dict(room.state), rejected_reason="auth events: no"),
            NewEvent(room.send("m.room.message", {"msgtype": "m.text", "body": "soft"}), Arrival.LIVE,
                     dict(room.state), soft_failed=True),
            NewEvent(room.send("m.room.message", {"msgtype": "m.text", "body": "unknown state"}), Arrival.LIVE)]
    with transaction.atomic():
        persist_new_events(mroom, bulk)
        assert seen == []
        assert _row(bulk[0].event.event_id)[-2] == "live"  # marked with the rows
    # Delivered after commit, in order, to the listener that wants them (messages), marks cleared.
    assert [p.event.event_id for p in seen] == [n.event.event_id for n in bulk if n.event.type == "m.room.message"]
    assert [(p.rejected_reason, p.soft_failed) for p in seen] == [("", False), ("auth events: no", False),
                                                                   ("", True), ("", False)]
    single = _row(one_at_a_time[1].event_id)
    accepted = _row(bulk[0].event.event_id)
    assert accepted[:6] == (mroom.room_id, "m.room.message", None, room.creator, bulk[0].event.origin_server_ts,
                            bulk[0].event.depth)
    assert accepted[6] == dict(bulk[0].event.pdu) and accepted[7:-1] == single[7:-1] == (False, "", False, "")
    assert accepted[-1] == [list(k) + [v] for k, v in sorted((bulk[0].state_after or {}).items())]
    assert accepted[-1] is not None and _row(bulk[-1].event.event_id)[-1] is None  # state unknown: NULL
    assert _row(name.event_id)[2] == "" and _row(name.event_id)[-2] == ""  # nobody wanted it
    # One at a time or in bulk, the stream order is the order given.
    ids = list(MatrixEvent.objects.filter(room=mroom).order_by("stream").values_list("event_id", flat=True))
    assert ids == [e.event_id for e in one_at_a_time] + [n.event.event_id for n in bulk]


def test_a_bulk_listener_that_raises_gets_each_event_alone(settings: Any) -> None:
    settings.CONCORD_SERVER_NAME = "concord.test"
    calls: list[Any] = []

    def one(p: PersistedEvent) -> None:
        calls.append(p.event.content["body"])
        if p.event.content["body"] == "bad":
            raise ValueError("this one fails")

    def many(ps: Any) -> None:
        calls.append([p.event.content["body"] for p in ps])
        MatrixRoom.objects.create(room_id="!half-written:x", room_version="11")  # rolled back
        raise ValueError("bulk fails")

    # A type no other listener (the chat mirror) wants: consecutive events only this one wants.
    register_listener(one, lambda p: p.event.type == "org.concord.test", many=many)
    try:
        room = Room()
        mroom = MatrixRoom.objects.create(room_id=room.create.room_id, room_version="11")
        with transaction.atomic():
            for body in ("a", "bad", "c"):
                persist_event(mroom, room.send("org.concord.test", {"body": body}),
                              arrival=Arrival.LIVE, state_after=room.state)
    finally:
        unregister_listener(one)
    assert calls == [["a", "bad", "c"], "a", "bad", "c"]
    assert not MatrixRoom.objects.filter(room_id="!half-written:x").exists()
    assert not MatrixEvent.objects.filter(pending_arrival__gt="").exists()
