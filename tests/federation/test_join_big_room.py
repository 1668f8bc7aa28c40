"""Joining a remote room with many members: the bulk path of ``join_via`` and the chat mirror.

A :class:`~tests.federation.fakepeer.FakePeer` room with a few hundred joined members and more
state is joined by a Concord user through ``channels.join``: every joined member ends up with a
puppet and a joined chat membership (display names from the member events), every state event
is stored and the room's current state is the peer's plus our join. Forged events in the
``send_join`` answer are refused: one with a bad signature is dropped, one validly signed but not
allowed by the auth rules is stored as rejected; neither reaches the room's state or the chat.
"""

from __future__ import annotations

from typing import Any

import pytest

from federation.protocol import SigningKey, build_event
from tests.federation.conftest import ConcordTLS
from tests.federation.fakepeer import FakePeer, PeerRoom
from tests.federation.rooms_helpers import ConcordApi

MEMBERS = 300
CUSTOM = 150


def big_room(peer: FakePeer, version: str) -> PeerRoom:
    room = PeerRoom(peer, version)
    room.standard()
    for i in range(1, MEMBERS):
        uid = peer.user(f"m{i:04d}")
        room.send("m.room.member", {"membership": "join", "displayname": f"Member {i}"}, sender=uid, state_key=uid)
    for i in range(CUSTOM):
        room.send("org.concord.test", {"n": i}, state_key=f"k{i}")
    return room


def joined_puppets(room_id: str) -> dict[str, str]:
    """``{username: display name}`` of the remote users joined to the chat room."""
    from rooms.models import Membership

    return dict(Membership.objects.filter(room_id=room_id, state=Membership.JOINED, user__is_remote=True)
                .values_list("user__username", "user__name"))


@pytest.mark.parametrize("version", ["10", "12"])
@pytest.mark.django_db(transaction=True)
def test_join_mirrors_every_member(fed: ConcordTLS, peer: FakePeer, make_user: Any, live_url: str,
                                   version: str) -> None:
    from federation.models import MatrixEvent, MatrixRoom

    room = big_room(peer, version)
    make_user("joiner")
    r = ConcordApi(live_url, "joiner").post("channels.join", roomId=room.room_id, via=[peer.server_name])
    assert r.get("success"), r
    rid = r["channel"]["_id"]

    puppets = joined_puppets(rid)
    expected = {peer.user(f"m{i:04d}"): f"Member {i}" for i in range(1, MEMBERS)}
    assert {k: v for k, v in puppets.items() if k != room.creator} == expected
    assert room.creator in puppets
    mroom = MatrixRoom.objects.get(room_id=room.room_id)
    state = {(t, sk): eid for t, sk, eid in mroom.current_state}
    assert ("m.room.member", f"@joiner:{fed.server_name}") in state
    assert state == room.state  # the peer's state, which now holds our join too
    assert MatrixEvent.objects.filter(event_id__in=list(room.state.values()), rejected_reason="").count() == \
        len(room.state)


@pytest.mark.django_db(transaction=True)
def test_forged_state_in_send_join_answer_is_refused(fed: ConcordTLS, peer: FakePeer, make_user: Any,
                                                     live_url: str) -> None:
    from federation.models import MatrixEvent, MatrixRoom
    from rooms.models import Membership

    room = big_room(peer, "10")
    intruder, outsider = peer.user("intruder"), peer.user("outsider")
    # Signed with a key the peer does not publish: the signature cannot be verified.
    bad_key = SigningKey.generate("forged")
    forged = build_event(room.rv, room_id=room.room_id, event_type="m.room.member", sender=intruder,
                         content={"membership": "join", "displayname": "Intruder"}, prev_events=[room.last],
                         state=room.state, origin_server_ts=room.ts + 1, server_name=peer.server_name,
                         signing_key=bad_key, state_key=intruder)
    # Validly signed, but its sender never joined: the auth rules refuse it (and it cites no
    # member event of its sender, so it passes the auth-events selection check and fails later).
    unauthorised = build_event(room.rv, room_id=room.room_id, event_type="org.concord.test",
                               sender=outsider, content={"n": -1}, prev_events=[room.last], state=room.state,
                               origin_server_ts=room.ts + 2, server_name=peer.server_name,
                               signing_key=peer.key, state_key="outsider")
    # A member event whose content was changed after signing: its content hash fails, so only the
    # redacted copy (no display name) may be kept.
    edited_id = peer.user("m0007")
    edited_pdu: dict[str, Any] = {}

    def tamper(answer: dict[str, Any]) -> None:
        answer["state"].append(dict(forged.pdu))
        answer["state"].append(dict(unauthorised.pdu))
        for pdu in answer["state"]:
            if pdu.get("state_key") == edited_id:
                pdu["content"] = dict(pdu["content"], displayname="Renamed In Transit")
                edited_pdu.update(pdu)

    peer.tamper_send_join = tamper
    make_user("joiner")
    r = ConcordApi(live_url, "joiner").post("channels.join", roomId=room.room_id, via=[peer.server_name])
    assert r.get("success"), r
    rid = r["channel"]["_id"]

    puppets = joined_puppets(rid)
    assert intruder not in puppets
    assert len(puppets) == MEMBERS
    assert puppets[edited_id] != "Renamed In Transit"
    state = {(t, sk): eid for t, sk, eid in MatrixRoom.objects.get(room_id=room.room_id).current_state}
    assert ("m.room.member", intruder) not in state
    assert ("org.concord.test", "outsider") not in state
    assert not MatrixEvent.objects.filter(event_id=forged.event_id).exists()
    assert MatrixEvent.objects.get(event_id=unauthorised.event_id).rejected_reason
    stored = MatrixEvent.objects.get(event_id=state[("m.room.member", edited_id)])
    assert "displayname" not in stored.pdu["content"] and edited_pdu
    assert not Membership.objects.filter(room_id=rid, user__username=intruder).exists()
