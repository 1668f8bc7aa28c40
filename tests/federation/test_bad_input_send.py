"""Bad input to ``PUT /send`` and the federation boundary, signed and over TLS (issue 5, "Bad input").

What ``test_inbound_and_serving`` and ``test_keys_status_endpoints`` already cover is not repeated
(floats / huge integers refusing the body, a forged sender, a room we are not in, a 70 kB PDU,
malformed JSON through the test client). Here: a forged transaction ``origin``; PDUs breaking the
format limits (255-byte fields, depth, too many prev events, missing fields, not an object); an
unknown room version; NUL characters; malformed JSON on a real signed TLS request; huge headers.
Each gets the spec's error (per PDU inside a 200, or a 4xx for the request), is logged, never gets
a 500 and is never stored as accepted.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
import requests

from tests.federation.conftest import ConcordTLS
from tests.federation.fakepeer import FakePeer, PeerRoom
from tests.federation.signed_requests import call, joined_room, send_txn

pytestmark = pytest.mark.django_db(transaction=True)


def _accepted(event_ids: list[str]) -> int:
    from federation.models import MatrixEvent

    return MatrixEvent.objects.filter(event_id__in=event_ids, rejected_reason="", soft_failed=False).count()


def test_forged_transaction_origin_is_refused(fed: ConcordTLS, peer: FakePeer) -> None:
    room = joined_room(fed, peer)
    m = room.send("m.room.message", {"msgtype": "m.text", "body": "hi"})
    body = {"origin": "someone.else.example", "origin_server_ts": 1, "pdus": [m.pdu], "edus": []}
    r = call(fed, peer, "PUT", "/_matrix/federation/v1/send/forged-origin", body)
    assert (r.status_code, r.json()["errcode"]) == (400, "M_FORBIDDEN")
    assert _accepted([m.event_id]) == 0


def test_pdus_breaking_the_format_are_refused_one_by_one(fed: ConcordTLS, peer: FakePeer,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    room = joined_room(fed, peer)
    good = room.send("m.room.message", {"msgtype": "m.text", "body": "fine"}, advance=False)
    long_type = room.send("x" * 256, {"body": "long type"}, advance=False)
    long_sender_user = "@" + "m" * 250 + ":" + peer.server_name
    long_sender = room.send("m.room.message", {"body": "long sender"}, sender=long_sender_user, advance=False)
    too_deep = dict(good.pdu, depth=-1)
    many_prevs = dict(good.pdu, prev_events=[f"$p{i}" for i in range(21)])
    missing_fields = {k: v for k, v in good.pdu.items() if k not in ("sender", "auth_events")}
    not_an_object = ["m.room.message"]
    bad = [long_type.pdu, long_sender.pdu, too_deep, many_prevs, missing_fields, not_an_object]
    with caplog.at_level(logging.INFO, logger="federation.handlers.receive"):
        results = send_txn(fed, peer, [*bad, good.pdu])
    assert results[good.event_id] == {}
    assert all("error" in v for k, v in results.items() if k != good.event_id)
    assert _accepted([long_type.event_id, long_sender.event_id]) == 0
    from federation.models import MatrixEvent, StagedPDU

    assert MatrixEvent.objects.filter(room_id=room.room_id).count() == 6  # the 5 set-up events + good
    assert not StagedPDU.objects.exists()
    assert "refused PDU" in caplog.text or "dropped a PDU" in caplog.text


def test_unknown_room_version_is_refused_per_pdu(fed: ConcordTLS, peer: FakePeer) -> None:
    from federation.models import MatrixRoom

    room = PeerRoom(peer, "10")
    MatrixRoom.objects.create(room_id=room.room_id, room_version="99")  # a version we do not implement
    results = send_txn(fed, peer, [e.pdu for e in room.standard()])
    # No event ID can be computed without knowing the version: the PDUs are dropped (logged).
    assert all("error" in v for v in results.values())
    assert _accepted([e.event_id for e in room.timeline]) == 0


def test_nul_characters_never_give_a_500(fed: ConcordTLS, peer: FakePeer) -> None:
    from django.db import connection

    from federation.models import MatrixEvent

    room = joined_room(fed, peer)
    m = room.send("m.room.message", {"msgtype": "m.text", "body": "nul \u0000 inside"})
    body = {"origin": peer.server_name, "origin_server_ts": 1, "pdus": [m.pdu], "edus": []}
    r = call(fed, peer, "PUT", "/_matrix/federation/v1/send/nul", body)
    assert r.status_code == 200, r.text
    result = r.json()["pdus"][m.event_id]
    if connection.vendor == "postgresql":
        # jsonb cannot hold NUL: this PDU is refused on its own, and nothing of it is stored.
        assert "cannot store this event" in result.get("error", ""), result
        assert not MatrixEvent.objects.filter(event_id=m.event_id).exists()
    else:
        # SQLite stores the text as it is: the event is accepted like any other.
        assert result == {}
        assert _accepted([m.event_id]) == 1


@pytest.mark.parametrize("raw", [b'{"pdus": [', b'{"pdus": []}garbage', b"\xff\xfe{}", b'{"pdus": NaN}',
                                 b'{"a": Infinity}'])
def test_malformed_json_over_tls_is_a_4xx(fed: ConcordTLS, peer: FakePeer, raw: bytes) -> None:
    r = call(fed, peer, "PUT", "/_matrix/federation/v1/send/malformed", raw=raw, sign_content={})
    assert r.status_code == 400, r.text
    assert r.json()["errcode"] in ("M_NOT_JSON", "M_BAD_JSON")


@pytest.mark.parametrize("content", [[], "just a string", {"pdus": {"x": 1}}, {"pdus": [], "edus": "no"}])
def test_well_formed_json_of_the_wrong_shape_is_m_bad_json(fed: ConcordTLS, peer: FakePeer, content: Any) -> None:
    """Signed correctly (authentication passes), but not a transaction: 400 ``M_BAD_JSON``."""
    r = call(fed, peer, "PUT", "/_matrix/federation/v1/send/wrong-shape", raw=json.dumps(content).encode(),
             sign_content=content)
    assert (r.status_code, r.json()["errcode"]) == (400, "M_BAD_JSON"), r.text


def test_huge_headers_are_refused_without_a_500(fed: ConcordTLS, peer: FakePeer) -> None:
    from django.conf import settings

    s = requests.Session()
    s.trust_env = False
    url = fed.base_url + "/_matrix/federation/v1/send/huge"
    auth = 'X-Matrix origin="' + peer.server_name + '",key="ed25519:1",sig="' + "A" * 10_000 + '"'
    r = s.put(url, data=b"{}", headers={"Authorization": auth, "Content-Type": "application/json"},
              verify=settings.CONCORD_FEDERATION_CA_BUNDLE, timeout=30)
    assert (r.status_code, r.json()["errcode"]) == (401, "M_UNAUTHORIZED")
    try:
        r = s.put(url, data=b"{}", headers={"X-Filler": "x" * 200_000},
                  verify=settings.CONCORD_FEDERATION_CA_BUNDLE, timeout=30)
        # Refused by the HTTP server itself, or (within its limits) by authentication; never a 500.
        assert r.status_code in (400, 401, 413, 431), r.status_code
    except requests.ConnectionError:
        pass  # or the connection is closed: either way, no 500 and nothing processed
    r = s.put(url, data=json.dumps({"pdus": []}).encode(), headers={"Content-Type": "application/json"},
              verify=settings.CONCORD_FEDERATION_CA_BUNDLE, timeout=30)
    assert (r.status_code, r.json()["errcode"]) == (401, "M_UNAUTHORIZED")
