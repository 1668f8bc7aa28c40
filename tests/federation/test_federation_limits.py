"""Inbound federation limits per origin, signed and over TLS: past the per-window limit a server
gets 429 ``M_LIMIT_EXCEEDED`` with ``retry_after_ms`` (as Synapse answers), and no more than
``CONCORD_FEDERATION_MAX_CONCURRENT`` of its requests run at once; other servers are not affected."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from django.test import override_settings

from tests.federation.conftest import ConcordTLS
from tests.federation.fakepeer import FakePeer
from tests.federation.signed_requests import call, peer_ca, signed_call
from tests.federation.synapse_harness import TestCA

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_origin_past_its_limit_gets_m_limit_exceeded(fed: ConcordTLS, peer: FakePeer, fed_ca: TestCA,
                                                         make_user: object) -> None:
    from django.core.cache import cache

    make_user("limited")  # type: ignore[operator]
    path = "/_matrix/federation/v1/query/profile?user_id=" + quote(f"@limited:{fed.server_name}", safe="")
    with override_settings(CONCORD_RATE_LIMITS=True, CONCORD_RATE_LIMIT_FEDERATION="6/60"):
        codes = [call(fed, peer, "GET", path).status_code for _ in range(6)]
        assert codes == [200] * 6
        r = call(fed, peer, "GET", path)
        assert r.status_code == 429, r.text
        body = r.json()
        assert body["errcode"] == "M_LIMIT_EXCEEDED" and 0 < body["retry_after_ms"] <= 120_000
        other = FakePeer(fed_ca)
        try:
            r = signed_call(fed.base_url, peer_ca(fed), "GET", path, origin=other.server_name,
                            destination=fed.server_name, key=other.key)
            assert r.status_code == 200, r.text  # per origin
            # Concurrency: with the origin's in-flight count at the cap, one more is refused.
            cache.set(f"rl:inflight:{other.server_name}", 5, timeout=60)
            r = signed_call(fed.base_url, peer_ca(fed), "GET", path, origin=other.server_name,
                            destination=fed.server_name, key=other.key)
            assert (r.status_code, r.json()["errcode"]) == (429, "M_LIMIT_EXCEEDED"), r.text
            assert cache.get(f"rl:inflight:{other.server_name}") == 5  # a refusal leaves the count as it was
        finally:
            other.close()
