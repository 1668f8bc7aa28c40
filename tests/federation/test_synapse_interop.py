"""Concord against a real Synapse on loopback (TLS, throw-away CA): keys, signed requests, profiles,
refusals, transactions and the outbox. Marked ``synapse``; one Synapse per session."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

import pytest
import requests
from django.utils import timezone

from federation.protocol.signing import SigningKey
from federation.transport.auth import sign_request
from tests.federation.conftest import ConcordTLS
from tests.federation.rooms_helpers import wait_for
from tests.federation.signed_requests import signed_call
from tests.federation.synapse_harness import SynapseServer

pytestmark = [pytest.mark.synapse, pytest.mark.django_db(transaction=True)]


def synapse_key(synapse: SynapseServer) -> SigningKey:
    return SigningKey.from_key_file_line((synapse.dir / "signing.key").read_text().strip())


def test_synapse_fetches_our_keys_and_reads_a_concord_profile(fed: ConcordTLS, synapse: SynapseServer,
                                                              make_user: Any) -> None:
    make_user("alice", name="Alice Liddell")
    token = synapse.register("bob1")
    user_id = f"@alice:{fed.server_name}"
    r = synapse.client_get(f"/_matrix/client/v3/profile/{quote(user_id, safe='')}", token)
    assert r.status_code == 200, r.text
    assert r.json()["displayname"] == "Alice Liddell"


def test_we_fetch_synapse_keys_and_read_a_synapse_profile(fed: ConcordTLS, synapse: SynapseServer) -> None:
    from federation.handlers.keys import fetch_server_keys
    from federation.models import RemoteServerKey
    from federation.transport.client import FederationClient

    token = synapse.register("carol")
    r = synapse.client_put("/_matrix/client/v3/profile/" + quote(f"@carol:{synapse.server_name}") + "/displayname",
                           token, {"displayname": "Carol of Synapse"})
    assert r.status_code == 200, r.text
    response = fetch_server_keys(synapse.server_name)
    assert response["server_name"] == synapse.server_name
    row = RemoteServerKey.objects.get(server_name=synapse.server_name, key_id=synapse_key(synapse).key_id)
    assert row.valid_until_ts > time.time() * 1000
    profile = FederationClient().query_profile(synapse.server_name, f"@carol:{synapse.server_name}")
    assert profile["displayname"] == "Carol of Synapse"


def test_notary_serves_synapse_keys_countersigned(fed: ConcordTLS, synapse: SynapseServer) -> None:
    from federation.protocol.signing import verify_json_signature
    from federation.signing_key import get_signing_key

    s = requests.Session()
    s.trust_env = False
    r = s.post(fed.base_url + "/_matrix/key/v2/query", json={"server_keys": {synapse.server_name: {}}},
               verify=str(synapse.ca.ca_cert), timeout=30)
    assert r.status_code == 200, r.text
    [resp] = r.json()["server_keys"]
    verify_json_signature(resp, synapse.server_name, synapse_key(synapse).verify_key)
    verify_json_signature(resp, fed.server_name, get_signing_key().verify_key)


def test_synapse_refuses_bad_signature_and_wrong_destination(fed: ConcordTLS, synapse: SynapseServer) -> None:
    from federation.signing_key import get_signing_key

    synapse.register("bob2")

    path = "/_matrix/federation/v1/query/profile?user_id=" + quote(f"@bob2:{synapse.server_name}", safe="")
    ok = signed_call(synapse.base_url, synapse.ca.ca_cert, "GET", path, origin=fed.server_name,
                     destination=synapse.server_name, key=get_signing_key())
    # Synapse fetched our key from us over TLS to accept this.
    assert ok.status_code == 200, ok.text
    forged = SigningKey.from_seed(b"\x01" * 32, get_signing_key().version)
    bad = signed_call(synapse.base_url, synapse.ca.ca_cert, "GET", path, origin=fed.server_name,
                      destination=synapse.server_name, key=forged)
    assert bad.status_code == 401 and bad.json()["errcode"] == "M_UNAUTHORIZED"
    wrong = signed_call(synapse.base_url, synapse.ca.ca_cert, "GET", path, origin=fed.server_name,
                        destination="127.0.0.1:1", key=get_signing_key())
    assert wrong.status_code == 401


def test_we_refuse_bad_signatures_wrong_destination_and_accept_good(fed: ConcordTLS, synapse: SynapseServer,
                                                                    make_user: Any) -> None:
    make_user("dave", name="Dave")
    key = synapse_key(synapse)
    path = "/_matrix/federation/v1/query/profile?user_id=" + quote(f"@dave:{fed.server_name}", safe="")
    call = {"origin": synapse.server_name, "destination": fed.server_name}
    good = signed_call(fed.base_url, synapse.ca.ca_cert, "GET", path, key=key, **call)
    assert good.status_code == 200, good.text
    assert good.json() == {"displayname": "Dave"}
    forged = SigningKey.from_seed(b"\x02" * 32, key.version)
    bad = signed_call(fed.base_url, synapse.ca.ca_cert, "GET", path, key=forged, **call)
    assert (bad.status_code, bad.json()["errcode"]) == (401, "M_UNAUTHORIZED")
    wrong = signed_call(fed.base_url, synapse.ca.ca_cert, "GET", path, key=key, origin=synapse.server_name,
                        destination="example.org")
    assert (wrong.status_code, wrong.json()["errcode"]) == (401, "M_UNAUTHORIZED")
    # The signature covers the raw URI: the same signature on a decoded path does not verify.
    decoded = path.replace("%40", "@").replace("%3A", ":")
    auth = sign_request("GET", path, synapse.server_name, fed.server_name, key)
    r = requests.get(fed.base_url + decoded, headers={"Authorization": auth}, verify=str(synapse.ca.ca_cert),
                     timeout=30)
    assert r.status_code == 401
    unknown_key = SigningKey.from_seed(b"\x03" * 32, "nosuchkey")
    r = signed_call(fed.base_url, synapse.ca.ca_cert, "GET", path, key=unknown_key, **call)
    assert r.status_code == 401


def test_transactions_replayed_and_oversized(fed: ConcordTLS, synapse: SynapseServer) -> None:
    from federation.models import InboundTransaction

    key = synapse_key(synapse)
    call = {"origin": synapse.server_name, "destination": fed.server_name, "key": key}
    body = {"origin": synapse.server_name, "origin_server_ts": 1, "pdus": [],
            "edus": [{"edu_type": "m.presence", "content": {"push": []}}]}
    path = "/_matrix/federation/v1/send/txn-replay-1"
    first = signed_call(fed.base_url, synapse.ca.ca_cert, "PUT", path, content=body, **call)
    assert first.status_code == 200, first.text
    again = signed_call(fed.base_url, synapse.ca.ca_cert, "PUT", path, content=body, **call)
    assert again.status_code == 200 and again.json() == first.json()
    assert InboundTransaction.objects.filter(origin=synapse.server_name, txn_id="txn-replay-1").count() == 1
    too_many = dict(body, pdus=[{"type": "m.room.message"}] * 51, edus=[])
    r = signed_call(fed.base_url, synapse.ca.ca_cert, "PUT", "/_matrix/federation/v1/send/txn-big", content=too_many,
                    **call)
    assert (r.status_code, r.json()["errcode"]) == (400, "M_TOO_LARGE")
    r = signed_call(fed.base_url, synapse.ca.ca_cert, "PUT", "/_matrix/federation/v1/send/txn-edus",
                    content=dict(body, edus=[{"edu_type": "m.typing", "content": {}}] * 101), **call)
    assert r.status_code == 400
    huge = b'{"pdus":[],"edus":[],"pad":"' + b"x" * (9 * 1024 * 1024) + b'"}'
    r = signed_call(fed.base_url, synapse.ca.ca_cert, "PUT", "/_matrix/federation/v1/send/txn-huge", raw=huge,
                    sign_content={}, **call)
    assert (r.status_code, r.json()["errcode"]) == (413, "M_TOO_LARGE")
    assert not InboundTransaction.objects.filter(txn_id__in=["txn-big", "txn-edus", "txn-huge"]).exists()


def test_outbox_delivers_after_synapse_restarts(fed: ConcordTLS, synapse: SynapseServer) -> None:
    from federation.handlers.sender import send_pending
    from federation.models import Destination, OutboundEDU
    from federation.store.outbox import enqueue_edu

    dest = synapse.server_name
    synapse.stop()
    try:
        enqueue_edu([dest], "m.presence", {"push": []})
        assert send_pending(dest) == 0
        d = Destination.objects.get(server_name=dest)
        assert d.next_attempt_at is not None and d.failing_since is not None
        txn_id = OutboundEDU.objects.get(destination=d).txn_id
        assert txn_id
        # The backoff (shortened for tests) elapses; the retry really goes out (it moves the next
        # attempt on), Synapse is still down, and the transaction keeps its txnId.
        wait_for(lambda: timezone.now() >= d.next_attempt_at, timeout=10, what="the backoff to elapse")
        assert send_pending(dest) == 0
        retried = Destination.objects.get(server_name=dest)
        assert retried.next_attempt_at is not None and retried.next_attempt_at > d.next_attempt_at
        assert OutboundEDU.objects.get(destination=d).txn_id == txn_id
    finally:
        synapse.start()
    deadline = time.time() + 20
    while time.time() < deadline and OutboundEDU.objects.filter(destination_id=dest).exists():
        send_pending(dest)
        time.sleep(0.3)
    assert not OutboundEDU.objects.filter(destination_id=dest).exists()
    d = Destination.objects.get(server_name=dest)
    assert d.next_attempt_at is None and d.failing_since is None and d.last_success_at is not None
    assert f"/_matrix/federation/v1/send/{txn_id}" in synapse.log_text()
