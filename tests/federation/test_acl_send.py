"""Server ACLs (``m.room.server_acl``) inside ``PUT /send``: checked per PDU and per typing/receipt EDU
against the transaction's origin, per room, over TLS against the running Concord.

The scripted peers are named ``127.0.0.1:<port>``; ACLs ignore ports, so an ACL that denies
``127.0.0.1`` (or refuses IP literals) denies the sending peer itself."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.federation.conftest import ConcordTLS
from tests.federation.fakepeer import FakePeer, PeerRoom
from tests.federation.signed_requests import joined_room, send_txn

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def edu_spy() -> Iterator[list[tuple[str, str, dict[str, Any]]]]:
    """Replace the typing/receipt handlers with recorders for the test; restore the real ones after."""
    from federation.bridge.edus import register_edu_handlers
    from federation.handlers.edus import register_edu_handler

    seen: list[tuple[str, str, dict[str, Any]]] = []
    for edu_type in ("m.typing", "m.receipt"):
        register_edu_handler(edu_type, lambda origin, content, t=edu_type: seen.append((t, origin, content)))
    try:
        yield seen
    finally:
        register_edu_handlers()


def msg(room: PeerRoom, body: str) -> Any:
    return room.send("m.room.message", {"msgtype": "m.text", "body": body})


def typing(room: PeerRoom, peer: FakePeer) -> dict[str, Any]:
    return {"edu_type": "m.typing", "content": {"room_id": room.room_id, "user_id": peer.user("alice"),
                                                "typing": True}}


def receipt(rooms: list[PeerRoom], peer: FakePeer) -> dict[str, Any]:
    return {"edu_type": "m.receipt", "content": {r.room_id: {"m.read": {peer.user("alice"): {
        "event_ids": [r.last.event_id], "data": {"ts": 1700000000000}}}} for r in rooms}}


@pytest.mark.parametrize("acl", [{"allow": ["*"], "deny": ["127.0.0.1"]},
                                 {"allow": ["*"], "allow_ip_literals": False},
                                 {"allow": ["example.org", "*.example.org"]}])
def test_pdus_and_edus_of_a_denied_origin_are_refused_per_room(fed: ConcordTLS, peer: FakePeer,
                                                               edu_spy: list[Any], acl: dict[str, Any]) -> None:
    from federation.models import MatrixEvent

    banned = joined_room(fed, peer)
    open_room = joined_room(fed, peer)
    acl_event = banned.send("m.room.server_acl", acl, state_key="")
    assert send_txn(fed, peer, [acl_event.pdu]) == {acl_event.event_id: {}}  # no ACL yet: accepted

    refused, accepted = msg(banned, "after the ban"), msg(open_room, "elsewhere")
    results = send_txn(fed, peer, [refused.pdu, accepted.pdu],
                       [typing(banned, peer), typing(open_room, peer), receipt([banned, open_room], peer)])
    assert "server ACL" in results[refused.event_id]["error"]
    assert results[accepted.event_id] == {}
    assert not MatrixEvent.objects.filter(event_id=refused.event_id).exists()
    assert MatrixEvent.objects.filter(event_id=accepted.event_id, rejected_reason="").exists()
    # Typing: only the open room's; receipt: the open room's part only.
    assert [(t, c.get("room_id")) for t, _, c in edu_spy if t == "m.typing"] == [("m.typing", open_room.room_id)]
    [(_, origin, content)] = [e for e in edu_spy if e[0] == "m.receipt"]
    assert origin == peer.server_name and list(content) == [open_room.room_id]


def test_an_acl_that_allows_the_origin_changes_nothing(fed: ConcordTLS, peer: FakePeer, edu_spy: list[Any]) -> None:
    room = joined_room(fed, peer)
    acl_event = room.send("m.room.server_acl", {"allow": ["127.0.0.*"], "deny": ["evil.example"],
                                                "allow_ip_literals": True}, state_key="")
    m = msg(room, "still welcome")
    results = send_txn(fed, peer, [acl_event.pdu, m.pdu], [typing(room, peer), receipt([room], peer)])
    assert results == {acl_event.event_id: {}, m.event_id: {}}
    assert sorted(t for t, _, _ in edu_spy) == ["m.receipt", "m.typing"]


def test_lifting_the_ban_lets_the_origin_back_in(fed: ConcordTLS, peer: FakePeer, edu_spy: list[Any]) -> None:
    """The ACL is read from the room's *current* state at each transaction."""
    room = joined_room(fed, peer)
    ban = room.send("m.room.server_acl", {"allow": ["*"], "deny": ["127.0.0.1"]}, state_key="")
    assert send_txn(fed, peer, [ban.pdu]) == {ban.event_id: {}}
    # The peer cannot send the lifting event itself (its PDUs are refused): put it in as another
    # server of the room would have, directly in our store's current state.
    lift = room.send("m.room.server_acl", {"allow": ["*"]}, state_key="")
    assert "error" in send_txn(fed, peer, [lift.pdu])[lift.event_id]
    from federation.models import MatrixEvent, MatrixRoom
    from federation.store.events import decode_state, encode_state
    from federation.store.room_state import origin_allowed_by_acl

    mroom = MatrixRoom.objects.get(room_id=room.room_id)
    assert not origin_allowed_by_acl(mroom, peer.server_name)
    MatrixEvent.objects.create(event_id=lift.event_id, room=mroom, type=lift.type, state_key="", sender=lift.sender,
                               origin_server_ts=lift.origin_server_ts, depth=lift.depth, pdu=dict(lift.pdu))
    state = decode_state(mroom.current_state)
    state[("m.room.server_acl", "")] = lift.event_id
    MatrixRoom.objects.filter(pk=mroom.pk).update(current_state=encode_state(state))
    assert origin_allowed_by_acl(MatrixRoom.objects.get(pk=mroom.pk), peer.server_name)
    send_txn(fed, peer, [], [typing(room, peer)])
    assert [t for t, _, _ in edu_spy] == ["m.typing"]


def test_acl_filter_of_edus_unit() -> None:
    from federation.handlers.edus import acl_filtered

    def only_a(room_id: str) -> bool:
        return room_id == "!a:x"

    assert acl_filtered("m.typing", {"room_id": "!b:x"}, "o", only_a) is None
    assert acl_filtered("m.typing", {"room_id": "!a:x"}, "o", only_a) == {"room_id": "!a:x"}
    assert acl_filtered("m.receipt", {"!a:x": {}, "!b:x": {}}, "o", only_a) == {"!a:x": {}}
    assert acl_filtered("m.receipt", {"!b:x": {}}, "o", only_a) is None
    assert acl_filtered("m.presence", {"push": []}, "o", only_a) == {"push": []}
