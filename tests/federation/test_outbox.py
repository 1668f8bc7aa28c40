"""The durable outbox against a scripted peer: batching, same txnId on retry, backoff, a crashed
sender's lease, catch-up after a long outage, waking on inbound requests, the beat re-drive."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from tests.federation.conftest import ConcordTLS
from tests.federation.fakepeer import FakePeer
from tests.federation.signed_requests import signed_call

pytestmark = pytest.mark.django_db(transaction=True)


def fake_pdu(room: str, n: int) -> tuple[str, dict[str, Any]]:
    return f"$ev{room}{n}", {"type": "m.room.message", "room_id": f"!{room}:x", "content": {"n": n}}


def test_batches_of_50_pdus_and_100_edus_in_order(fed: ConcordTLS, peer: FakePeer) -> None:
    from federation.handlers.sender import send_pending
    from federation.store.outbox import enqueue_edu, enqueue_pdu

    for n in range(120):
        eid, pdu = fake_pdu("a", n)
        enqueue_pdu([peer.server_name, fed.server_name], "!a:x", eid, pdu)
    for n in range(150):
        enqueue_edu([peer.server_name], "m.typing", {"n": n})
    assert send_pending(peer.server_name) == 3
    sizes = [(len(b["pdus"]), len(b["edus"])) for _, b in peer.transactions]
    assert sizes == [(50, 100), (50, 50), (20, 0)]
    assert [p["content"]["n"] for _, b in peer.transactions for p in b["pdus"]] == list(range(120))
    assert [e["content"]["n"] for _, b in peer.transactions for e in b["edus"]] == list(range(150))
    assert len({t for t, _ in peer.transactions}) == 3
    assert all(b["origin"] == fed.server_name for _, b in peer.transactions)


def test_retry_reuses_the_txn_id_with_jittered_backoff(fed: ConcordTLS, peer: FakePeer, settings: Any) -> None:
    from federation.handlers.sender import send_pending
    from federation.models import Destination
    from federation.store.outbox import enqueue_edu

    settings.CONCORD_FEDERATION_BACKOFF_MIN = 10
    settings.CONCORD_FEDERATION_BACKOFF_MAX = 25
    enqueue_edu([peer.server_name], "m.typing", {"n": 1})
    peer.fail_sends = 3
    intervals = []
    for _ in range(3):
        assert send_pending(peer.server_name) == 0
        d = Destination.objects.get(pk=peer.server_name)
        delay = (d.next_attempt_at - timezone.now()).total_seconds()
        intervals.append(d.retry_interval)
        assert 0.8 * d.retry_interval - 1 <= delay <= 1.4 * d.retry_interval
        assert send_pending(peer.server_name) == 0  # still backing off: no request
        Destination.objects.filter(pk=peer.server_name).update(next_attempt_at=timezone.now())
    assert intervals == [10, 20, 25]
    assert send_pending(peer.server_name) == 1
    sent = [p for p in peer.requests if p.startswith("PUT")]
    assert len(sent) == 4 and len(set(sent)) == 1  # four attempts, one txnId
    assert Destination.objects.get(pk=peer.server_name).retry_interval == 0


def test_a_crashed_sender_loses_and_duplicates_nothing(fed: ConcordTLS, peer: FakePeer) -> None:
    """A worker killed after stamping a transaction and taking the lease: the lease runs out, the
    next run sends exactly that transaction under the same txnId, then the rest."""
    from federation.handlers.sender import send_pending
    from federation.models import Destination, OutboundPDU
    from federation.store.outbox import build_transaction, enqueue_pdu

    for n in range(60):
        eid, pdu = fake_pdu("b", n)
        enqueue_pdu([peer.server_name], "!b:x", eid, pdu)
    dest = Destination.objects.get(pk=peer.server_name)
    stamped = build_transaction(dest)
    Destination.objects.filter(pk=peer.server_name).update(lease_until=timezone.now() + timedelta(seconds=60),
                                                           lease_token="dead-worker")
    assert send_pending(peer.server_name) == 0  # someone (the dead worker) holds the lease
    Destination.objects.filter(pk=peer.server_name).update(lease_until=timezone.now() - timedelta(seconds=1))
    assert send_pending(peer.server_name) == 2
    assert peer.transactions[0][0] == stamped
    ns = [p["content"]["n"] for _, b in peer.transactions for p in b["pdus"]]
    assert ns == list(range(60))
    assert not OutboundPDU.objects.exists()


def test_catch_up_after_a_long_outage_sends_newest_per_room(fed: ConcordTLS, peer: FakePeer) -> None:
    from federation.handlers.sender import send_pending
    from federation.models import Destination
    from federation.store.outbox import enqueue_edu, enqueue_pdu

    for room in ("r1", "r2"):
        for n in range(5):
            eid, pdu = fake_pdu(room, n)
            enqueue_pdu([peer.server_name], f"!{room}:x", eid, pdu)
    enqueue_edu([peer.server_name], "m.typing", {"stale": True})
    Destination.objects.filter(pk=peer.server_name).update(failing_since=timezone.now() - timedelta(hours=2),
                                                           retry_interval=3600)
    assert send_pending(peer.server_name) == 1
    [(_, body)] = peer.transactions
    assert [p["content"]["n"] for p in body["pdus"]] == [4, 4] and body["edus"] == []


def test_inbound_request_wakes_the_queue_and_beat_redrives(fed: ConcordTLS, peer: FakePeer, make_user: Any,
                                                          settings: Any) -> None:
    from federation.handlers.sender import send_pending
    from federation.models import Destination
    from federation.store.outbox import due_destinations, enqueue_edu

    settings.CONCORD_FEDERATION_BACKOFF_MIN = 3600
    settings.CONCORD_FEDERATION_BACKOFF_MAX = 7200
    settings.CELERY_TASK_ALWAYS_EAGER = True
    from chat.celery import app

    app.conf.task_always_eager = True
    try:
        peer.fail_sends = 1
        enqueue_edu([peer.server_name], "m.typing", {"n": 1})  # eager: sent on commit, fails
        d = Destination.objects.get(pk=peer.server_name)
        assert d.next_attempt_at is not None and d.next_attempt_at > timezone.now() + timedelta(minutes=30)
        assert peer.server_name not in due_destinations()
        make_user("frank")
        r = signed_call(fed.base_url, settings.CONCORD_FEDERATION_CA_BUNDLE, "GET",
                        f"/_matrix/federation/v1/query/profile?user_id=%40frank%3A{fed.server_name}",
                        origin=peer.server_name, destination=fed.server_name, key=peer.key)
        assert r.status_code == 200
        deadline = time.time() + 10
        while time.time() < deadline and not peer.transactions:
            time.sleep(0.1)
        assert len(peer.transactions) == 1
    finally:
        app.conf.task_always_eager = False
    enqueue_edu([peer.server_name], "m.typing", {"n": 2})
    assert peer.server_name in due_destinations()
    assert send_pending(peer.server_name) == 1


def test_rooms_are_told_when_a_server_stalls_and_when_it_is_back(fed: ConcordTLS, peer: FakePeer,
                                                                 settings: Any, make_user: Any) -> None:
    from federation.handlers.sender import send_pending
    from federation.models import Destination, MatrixRoom
    from federation.store.outbox import enqueue_edu
    from rooms.actions.rooms import do_create_room
    from rooms.models import Message
    from tests.federation.signed_requests import joined_room

    room = joined_room(fed, peer)
    chat = do_create_room(make_user("stallwatch"), "c", "stalls")
    MatrixRoom.objects.filter(room_id=room.room_id).update(chat_room=chat)
    quiet = do_create_room(make_user("elsewhere"), "c", "unshared")

    def notices(room_id: str) -> list[tuple[str, str]]:
        return list(Message.objects.filter(room_id=room_id, type__startswith="federation-").order_by(
            "created_at").values_list("type", "text"))

    settings.CONCORD_FEDERATION_STALL_NOTICE_AFTER = 3600
    enqueue_edu([peer.server_name], "m.typing", {"n": 1})
    peer.fail_sends = 3
    assert send_pending(peer.server_name) == 0
    assert notices(chat.id) == []  # failing, but not for long yet
    settings.CONCORD_FEDERATION_STALL_NOTICE_AFTER = 0
    for _ in range(2):  # however many more failures: one notice
        Destination.objects.filter(pk=peer.server_name).update(next_attempt_at=timezone.now())
        assert send_pending(peer.server_name) == 0
    assert notices(chat.id) == [("federation-delayed", peer.server_name)]
    Destination.objects.filter(pk=peer.server_name).update(next_attempt_at=timezone.now())
    assert send_pending(peer.server_name) == 1
    assert notices(chat.id) == [("federation-delayed", peer.server_name), ("federation-resumed", peer.server_name)]
    assert notices(quiet.id) == []
    assert Destination.objects.get(pk=peer.server_name).stall_noticed_at is None
