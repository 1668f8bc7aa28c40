"""Inbound transactions with real signed PDUs from a scripted peer, EDUs to live events, and the
room-event endpoints, all over TLS against the running Concord."""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import quote

import pytest
from asgiref.sync import async_to_sync

from federation.protocol import Event
from tests.federation.conftest import ConcordTLS
from tests.federation.fakepeer import FakePeer
from tests.federation.signed_requests import call, joined_room, peer_ca, send_txn, signed_call
from tests.federation.synapse_harness import TestCA

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("version", ["10", "11", "12"])
def test_pdus_accepted_in_order_and_bad_ones_rejected(fed: ConcordTLS, peer: FakePeer, version: str) -> None:
    from federation.models import MatrixEvent, MatrixRoom
    from federation.store.events import decode_state

    room = joined_room(fed, peer, version)
    msg = room.send("m.room.message", {"msgtype": "m.text", "body": "hello"})
    # A user who never joined changes the power levels: fails auth against its auth events.
    intruder = room.send("m.room.power_levels", {"users": {peer.user("mallory"): 100}}, state_key="",
                         sender=peer.user("mallory"), advance=False)
    results = send_txn(fed, peer, [msg.pdu, intruder.pdu])
    assert results[msg.event_id] == {}
    assert "error" in results[intruder.event_id]
    assert MatrixEvent.objects.get(event_id=intruder.event_id).rejected_reason
    mr = MatrixRoom.objects.get(room_id=room.room_id)
    assert mr.forward_extremities == [msg.event_id]
    assert decode_state(mr.current_state)[("m.room.power_levels", "")] == room.state[("m.room.power_levels", "")]


def test_malformed_forged_and_unknown_room_pdus_are_not_stored(fed: ConcordTLS, peer: FakePeer) -> None:
    from federation.models import MatrixEvent

    room = joined_room(fed, peer)
    good = room.send("m.room.message", {"msgtype": "m.text", "body": "ok"}, advance=False)
    with_float = dict(good.pdu, content={"body": 1.5})
    huge_int = dict(good.pdu, content={"body": 2**60})
    forged = room.send("m.room.message", {"body": "hi"}, sender="@eve:evil.example", advance=False)
    other_room = dict(good.pdu, room_id="!nowhere:elsewhere.example")
    too_big = dict(good.pdu, content={"body": "x" * 70000})
    body = {"origin": peer.server_name, "origin_server_ts": 1,
            "pdus": [with_float, forged.pdu, other_room, too_big], "edus": []}
    # Floats and huge ints are not valid canonical JSON: the whole body is refused before anything.
    r = call(fed, peer, "PUT", "/_matrix/federation/v1/send/bad-json", raw=json.dumps(body).encode(), sign_content={})
    assert (r.status_code, r.json()["errcode"]) == (400, "M_BAD_JSON")
    r = call(fed, peer, "PUT", "/_matrix/federation/v1/send/bad-json2",
             raw=json.dumps(dict(body, pdus=[huge_int])).encode(), sign_content={})
    assert r.status_code == 400
    results = send_txn(fed, peer, [forged.pdu, other_room, too_big])
    assert "error" in results[forged.event_id]
    assert all("error" in v for v in results.values())
    assert not MatrixEvent.objects.filter(event_id__in=[forged.event_id]).exists()
    assert MatrixEvent.objects.filter(room_id=room.room_id).count() == 5


def test_missing_prev_events_are_fetched_with_get_missing_events(fed: ConcordTLS, peer: FakePeer) -> None:
    from federation.models import MatrixEvent

    room = joined_room(fed, peer)
    gap = [room.send("m.room.message", {"msgtype": "m.text", "body": f"m{i}"}) for i in range(4)]
    results = send_txn(fed, peer, [gap[-1].pdu])
    assert results == {gap[-1].event_id: {}}
    assert any("get_missing_events" in r for r in peer.requests)
    stored = list(MatrixEvent.objects.filter(event_id__in=[e.event_id for e in gap]).order_by("stream")
                  .values_list("event_id", "rejected_reason"))
    assert stored == [(e.event_id, "") for e in gap]


def test_serving_room_events_to_members_only(fed: ConcordTLS, peer: FakePeer, fed_ca: TestCA) -> None:
    room = joined_room(fed, peer)
    msgs = [room.send("m.room.message", {"msgtype": "m.text", "body": f"m{i}"}) for i in range(3)]
    send_txn(fed, peer, [m.pdu for m in msgs])
    rid = quote(room.room_id, safe="")
    last = msgs[-1]
    r = call(fed, peer, "GET", f"/_matrix/federation/v1/event/{quote(last.event_id, safe='')}")
    assert r.status_code == 200 and r.json()["pdus"] == [dict(last.pdu)]
    r = call(fed, peer, "GET", f"/_matrix/federation/v1/state_ids/{rid}?event_id={quote(last.event_id, safe='')}")
    assert r.status_code == 200, r.text
    assert set(r.json()["pdu_ids"]) == set(room.state.values())
    r = call(fed, peer, "GET", f"/_matrix/federation/v1/state/{rid}?event_id={quote(last.event_id, safe='')}")
    assert {Event(p, room.rv).event_id for p in r.json()["pdus"]} == set(room.state.values())
    r = call(fed, peer, "GET", f"/_matrix/federation/v1/event_auth/{rid}/{quote(last.event_id, safe='')}")
    assert r.status_code == 200 and len(r.json()["auth_chain"]) >= 3
    r = call(fed, peer, "POST", f"/_matrix/federation/v1/get_missing_events/{rid}",
             {"earliest_events": [msgs[0].event_id], "latest_events": [last.event_id], "limit": 10})
    assert [Event(p, room.rv).event_id for p in r.json()["events"]] == [msgs[1].event_id]
    r = call(fed, peer, "GET", f"/_matrix/federation/v1/backfill/{rid}?v={quote(last.event_id, safe='')}&limit=3")
    assert [Event(p, room.rv).event_id for p in r.json()["pdus"]] == [m.event_id for m in reversed(msgs)]
    outsider = FakePeer(fed_ca)
    try:
        r = signed_call(fed.base_url, peer_ca(fed), "GET", f"/_matrix/federation/v1/state_ids/{rid}?event_id="
                        + quote(last.event_id, safe=""), origin=outsider.server_name, destination=fed.server_name,
                        key=outsider.key)
        assert (r.status_code, r.json()["errcode"]) == (403, "M_FORBIDDEN")
    finally:
        outsider.close()
    r = call(fed, peer, "GET", "/_matrix/federation/v1/event/%24nope")
    assert (r.status_code, r.json()["errcode"]) == (404, "M_NOT_FOUND")


def test_expired_key_is_refused(fed: ConcordTLS, fed_ca: TestCA, make_user: Any) -> None:
    make_user("erin")
    stale = FakePeer(fed_ca, key_validity_ms=-60_000)
    try:
        r = signed_call(fed.base_url, peer_ca(fed), "GET", "/_matrix/federation/v1/query/profile?user_id="
                        + quote(f"@erin:{fed.server_name}", safe=""), origin=stale.server_name,
                        destination=fed.server_name, key=stale.key)
        assert (r.status_code, r.json()["errcode"]) == (401, "M_UNAUTHORIZED")
    finally:
        stale.close()


def test_typing_and_receipt_edus_reach_live_clients(fed: ConcordTLS, peer: FakePeer, make_user: Any) -> None:
    from accounts.models import User
    from federation.models import MatrixRoom
    from rooms.actions.rooms import do_create_room
    from rooms.events import room_group
    from rooms.live_fanout import tap

    owner = make_user("owner")
    remote = User.objects.create(username=peer.user("bob"), is_remote=True, name="Bob")
    chat_room = do_create_room(owner, "c", "fedroom", members=[remote])
    MatrixRoom.objects.create(room_id="!linked:" + peer.server_name, room_version="10", chat_room=chat_room)
    edus = [{"edu_type": "m.typing", "content": {"room_id": "!linked:" + peer.server_name,
                                                 "user_id": peer.user("bob"), "typing": True}},
            {"edu_type": "m.typing", "content": {"room_id": "!linked:" + peer.server_name,
                                                 "user_id": "@forged:other.example", "typing": True}},
            {"edu_type": "m.receipt", "content": {"!linked:" + peer.server_name: {"m.read": {
                peer.user("bob"): {"event_ids": ["$x"], "data": {"ts": 1700000000000}}}}}},
            {"edu_type": "m.presence", "content": {"push": [{"user_id": peer.user("bob"), "presence": "online"}]}}]

    async def listen() -> list[tuple[str, str]]:
        # Listen to the room's group as a WebSocket of this process would.
        from asgiref.sync import sync_to_async

        async with tap(room_group(chat_room.id)) as events:
            await sync_to_async(send_txn)(fed, peer, [], edus)
            got: list[tuple[str, str]] = []
            while ("receipt", peer.user("bob")) not in got and len(got) < 10:
                g = await asyncio.wait_for(events.get(), timeout=10)
                got.append((g["type"], g["data"].get("username") or g["data"].get("user", {}).get("username")))
            return got

    got = async_to_sync(listen)()
    assert ("typing", peer.user("bob")) in got
    assert not any(u == "@forged:other.example" for _, u in got)
    assert User.objects.get(pk=remote.pk).status == "online"


def test_history_visibility_at_each_event_decides_what_a_server_is_served(
        fed: ConcordTLS, peer: FakePeer, fed_ca: TestCA) -> None:
    """A server whose user joined while the room was ``joined`` gets the events from before its
    join redacted (``/event``, ``/backfill``, ``/get_missing_events``) and no state there; events
    of the ``shared`` period and after its join come whole; the room's own server sees everything."""
    from federation.protocol.builder import build_event

    room = joined_room(fed, peer)
    text = {"msgtype": "m.text", "body": "shared period"}
    before = room.send("m.room.message", text)
    vis = room.send("m.room.history_visibility", {"history_visibility": "joined"}, state_key="")
    hidden = room.send("m.room.message", {"msgtype": "m.text", "body": "joined period"})
    olive_peer = FakePeer(fed_ca)
    try:
        olive = olive_peer.user("olive")
        room.ts += 1
        join = build_event(room.rv, room_id=room.room_id, event_type="m.room.member", sender=olive,
                           content={"membership": "join"}, prev_events=[room.last], state=room.state,
                           origin_server_ts=room.ts, server_name=olive_peer.server_name,
                           signing_key=olive_peer.key, state_key=olive)
        room.last = join
        room.state[("m.room.member", olive)] = join.event_id
        after = room.send("m.room.message", {"msgtype": "m.text", "body": "after olive"})
        results = send_txn(fed, peer, [e.pdu for e in (before, vis, hidden, join, after)])
        assert all(v == {} for v in results.values()), results

        def as_olive(method: str, path: str, content: Any = None) -> Any:
            return signed_call(fed.base_url, peer_ca(fed), method, path, origin=olive_peer.server_name,
                               destination=fed.server_name, key=olive_peer.key, content=content)

        def event(caller: Any, ev: Event) -> dict[str, Any]:
            r = caller("GET", f"/_matrix/federation/v1/event/{quote(ev.event_id, safe='')}")
            assert r.status_code == 200, r.text
            return dict(r.json()["pdus"][0]["content"])

        assert event(as_olive, before) == text
        assert event(as_olive, hidden) == {}  # redacted: the event stays, its content does not
        assert event(as_olive, after)["body"] == "after olive"
        assert event(lambda m, p: call(fed, peer, m, p), hidden)["body"] == "joined period"
        rid = quote(room.room_id, safe="")
        r = as_olive("GET", f"/_matrix/federation/v1/backfill/{rid}?v={quote(after.event_id, safe='')}&limit=5")
        bodies = {Event(p, room.rv).event_id: p["content"].get("body") for p in r.json()["pdus"]}
        assert bodies[after.event_id] == "after olive" and bodies[hidden.event_id] is None
        assert bodies[before.event_id] == "shared period"
        r = as_olive("POST", f"/_matrix/federation/v1/get_missing_events/{rid}",
                     {"earliest_events": [before.event_id], "latest_events": [after.event_id], "limit": 10})
        missing = {Event(p, room.rv).event_id: p["content"] for p in r.json()["events"]}
        assert missing[hidden.event_id] == {} and missing[join.event_id] == {"membership": "join"}
        r = as_olive("GET", f"/_matrix/federation/v1/state_ids/{rid}?event_id={quote(hidden.event_id, safe='')}")
        assert (r.status_code, r.json()["errcode"]) == (403, "M_FORBIDDEN")
        r = as_olive("GET", f"/_matrix/federation/v1/state_ids/{rid}?event_id={quote(after.event_id, safe='')}")
        assert r.status_code == 200, r.text
    finally:
        olive_peer.close()


def test_requests_and_events_signed_with_a_known_insecure_key_are_refused(
        fed: ConcordTLS, peer: FakePeer, monkeypatch: pytest.MonkeyPatch) -> None:
    from federation.models import MatrixEvent
    from federation.protocol import signing

    room = joined_room(fed, peer)
    msg = room.send("m.room.message", {"msgtype": "m.text", "body": "signed with a public key"})
    monkeypatch.setattr(signing, "KNOWN_INSECURE_KEYS", frozenset({peer.key.verify_key.encode()}))
    r = call(fed, peer, "PUT", "/_matrix/federation/v1/send/insecure1",
             {"origin": peer.server_name, "origin_server_ts": 1, "pdus": [msg.pdu], "edus": []})
    assert (r.status_code, r.json()["errcode"]) == (401, "M_UNAUTHORIZED")
    assert not MatrixEvent.objects.filter(event_id=msg.event_id).exists()
