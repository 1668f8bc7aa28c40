"""Events of a room this server holds only an invite for (no state), from a scripted peer over
signed TLS: a leave of one of our users by someone else is accepted only when it withdraws an
invite we hold (the chat invitation disappears); otherwise it gets its error and is not stored."""

from __future__ import annotations

from typing import Any

import pytest

from tests.federation.conftest import ConcordTLS
from tests.federation.fakepeer import FakePeer, PeerRoom
from tests.federation.signed_requests import call, send_txn

pytestmark = pytest.mark.django_db(transaction=True)


def test_only_the_withdrawal_of_an_invite_we_hold_is_accepted(fed: ConcordTLS, peer: FakePeer,
                                                              make_user: Any) -> None:
    from federation.models import MatrixEvent
    from rooms.models import Membership

    make_user("oobbob")
    make_user("oobcarol")
    bob, carol = f"@oobbob:{fed.server_name}", f"@oobcarol:{fed.server_name}"
    room = PeerRoom(peer, "11")
    room.standard()
    invite = room.send("m.room.member", {"membership": "invite"}, state_key=bob)
    r = call(fed, peer, "PUT", f"/_matrix/federation/v2/invite/{room.room_id}/{invite.event_id}",
             {"room_version": "11", "event": dict(invite.pdu), "invite_room_state": []})
    assert r.status_code == 200, r.text
    sub = Membership.objects.get(user__username="oobbob")
    assert sub.state == Membership.INVITED

    not_invited = room.send("m.room.member", {"membership": "leave"}, state_key=carol)
    withdrawn = room.send("m.room.member", {"membership": "leave"}, state_key=bob)
    results = send_txn(fed, peer, [not_invited.pdu, withdrawn.pdu])
    assert "does not withdraw an invite we hold" in results[not_invited.event_id]["error"]
    assert results[withdrawn.event_id] == {}
    assert not MatrixEvent.objects.filter(event_id=not_invited.event_id).exists()
    sub.refresh_from_db()
    assert sub.state == Membership.LEFT
