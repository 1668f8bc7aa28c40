"""Federation administration over the REST API (``federation/admin.*``): status in words, rules
that take effect at once, destinations with their state and a retry, and the check in words; all
refused to non-admins."""

from __future__ import annotations

from typing import Any

import pytest

from tests.federation.conftest import ConcordTLS
from tests.federation.fakepeer import FakePeer
from tests.federation.rooms_helpers import ConcordApi

pytestmark = pytest.mark.django_db(transaction=True)


def test_admin_status_rules_destinations_and_check(fed: ConcordTLS, peer: FakePeer, admin_user: Any,
                                                    make_user: Any, live_url: str, settings: Any) -> None:
    from federation import config
    from federation.handlers.sender import send_pending
    from federation.store.outbox import enqueue_edu

    settings.CONCORD_FEDERATION_ALLOWED_SERVERS = []
    settings.CONCORD_FEDERATION_DENIED_SERVERS = []
    config.forget_stored_rules()
    make_user("plainuser")
    plain = ConcordApi(live_url, "plainuser")
    assert plain.get("federation/admin.status")["_status"] == 403
    assert plain.post("federation/admin.addRule", pattern="x.example", kind="deny")["_status"] == 403
    api = ConcordApi(live_url, admin_user.username)

    status = api.get("federation/admin.status")
    assert status["state"] == "Running" and status["serverName"] == fed.server_name, status
    assert status["rules"] == {"allow": [], "deny": [], "fromEnvironment": {"allow": None, "deny": None}}

    r = api.post("federation/admin.addRule", pattern="Spam.Example", kind="deny", note="spam")
    assert [x["pattern"] for x in r["rules"]["deny"]] == ["spam.example"]
    assert not config.server_allowed("spam.example")
    assert api.post("federation/admin.addRule", pattern="spam.example", kind="deny")["errorType"] == \
        "error-duplicate-rule"
    for bad in ({"pattern": "not a name", "kind": "deny"}, {"pattern": "x.example", "kind": "maybe"},
                {"pattern": "*evil", "kind": "deny"}):
        assert api.post("federation/admin.addRule", **bad)["_status"] == 400, bad
    assert api.post("federation/admin.removeRule", pattern="spam.example", kind="deny")["rules"]["deny"] == []
    assert config.server_allowed("spam.example")
    assert api.post("federation/admin.removeRule", pattern="spam.example", kind="deny")["errorType"] == \
        "error-rule-not-found"
    settings.CONCORD_FEDERATION_DENIED_SERVERS = ["env.example"]
    assert api.get("federation/admin.status")["rules"]["fromEnvironment"]["deny"] == ["env.example"]
    settings.CONCORD_FEDERATION_DENIED_SERVERS = []

    enqueue_edu([peer.server_name], "m.typing", {"n": 1})
    peer.fail_sends = 1
    send_pending(peer.server_name)
    row = next(d for d in api.get("federation/admin.status")["destinations"] if d["serverName"] == peer.server_name)
    assert row["state"] == "backing off" and row["queuedEdus"] == 1 and row["lastError"], row
    assert api.post("federation/admin.retry", serverName=peer.server_name)["sending"] is True
    assert api.post("federation/admin.retry", serverName="never.example")["_status"] == 400

    # The peer's signing key, fetched when its signed request came in, is listed.
    from urllib.parse import quote

    from tests.federation.signed_requests import call

    assert call(fed, peer, "GET", "/_matrix/federation/v1/query/profile?user_id="
                + quote(f"@plainuser:{fed.server_name}", safe="")).status_code == 200
    keys = [k for k in api.get("federation/admin.status")["remoteKeys"] if k["serverName"] == peer.server_name]
    assert keys and keys[0]["keyId"].startswith("ed25519:") and keys[0]["key"] and keys[0]["validUntil"], keys
    assert keys[0]["expiredAt"] is None

    check = api.post("federation/admin.check")
    assert check["ok"] is True and check["target"] == fed.server_name, check
    assert [s["label"] for s in check["steps"]][:2] == ["name resolution", "TLS and signing keys"]
    failed = api.post("federation/admin.check", serverName="nowhere.invalid")
    assert failed["ok"] is False and failed["steps"][0]["ok"] is False and failed["steps"][0]["detail"]
