"""The server allow and deny lists (``CONCORD_FEDERATION_ALLOWED_SERVERS`` / ``_DENIED_SERVERS``).

Entries are exact server names (with or without the port) or ``*.domain`` wildcards that match
sub-domains only; nothing is ever a suffix match (``evilexample.com`` is neither ``example.com``
nor ``*.example.com``). A refused server's signed requests get 403 ``M_FORBIDDEN``; our users
cannot invite its users or join its rooms, and nothing is sent to it, all without contacting it.
Cases with a real Synapse are marked ``synapse``.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.federation.conftest import ConcordTLS
from tests.federation.fakepeer import FakePeer
from tests.federation.rooms_helpers import ConcordApi, SynapseUser
from tests.federation.signed_requests import peer_ca, signed_call
from tests.federation.synapse_harness import SynapseServer, TestCA


@pytest.mark.parametrize(("allow", "deny", "server", "expected"), [
    # exact names: the whole host, with or without the port; never a suffix
    ([], ["example.com"], "example.com", False),
    ([], ["example.com"], "example.com:8448", False),
    ([], ["example.com"], "evilexample.com", True),
    ([], ["example.com"], "a.example.com", True),
    ([], ["example.com:8448"], "example.com:8449", True),
    (["example.com"], [], "example.com", True),
    (["example.com"], [], "evilexample.com", False),
    (["example.com"], [], "example.com.evil.org", False),
    (["example.com"], [], "sub.example.com", False),
    # wildcards: sub-domains at any depth, never the bare domain, never a longer name
    ([], ["*.example.com"], "a.example.com", False),
    ([], ["*.example.com"], "a.b.example.com:8448", False),
    ([], ["*.example.com"], "example.com", True),
    ([], ["*.example.com"], "evilexample.com", True),
    ([], ["*.example.com"], "a.evilexample.com", True),
    (["*.example.com"], [], "evilexample.com", False),
    (["*.example.com"], [], "example.com", False),
    (["*.example.com"], [], "x.example.com", True),
    (["*.example.com"], [], "x.example.com.evil.org", False),
    # case-insensitive; IP literals; the deny list wins over the allow list
    ([], ["EXAMPLE.com"], "example.COM", False),
    (["[::1]"], [], "[::1]:8448", True),
    (["127.0.0.1"], [], "127.0.0.10", False),
    (["*.example.com"], ["bad.example.com"], "bad.example.com", False),
    (["*.example.com"], ["bad.example.com"], "good.example.com", True),
    ([], [], "anything.org", True),
])
@pytest.mark.django_db  # an empty list falls back to the admin's stored rules (none here)
def test_allow_and_deny_patterns(settings: Any, allow: list[str], deny: list[str], server: str,
                                 expected: bool) -> None:
    from federation.config import forget_stored_rules, server_allowed

    forget_stored_rules()
    settings.CONCORD_SERVER_NAME = "concord.test"
    settings.CONCORD_FEDERATION_ALLOWED_SERVERS = allow
    settings.CONCORD_FEDERATION_DENIED_SERVERS = deny
    assert server_allowed(server) is expected


@pytest.mark.django_db(transaction=True)
def test_denied_servers_signed_requests_get_m_forbidden(fed: ConcordTLS, peer: FakePeer, settings: Any,
                                                        fed_ca: TestCA, make_user: Any) -> None:
    make_user("dora")
    user = f"@dora:{fed.server_name}"

    def call(method: str, path: str, content: Any = None) -> Any:
        return signed_call(fed.base_url, fed_ca.ca_cert, method, path, origin=peer.server_name,
                           destination=fed.server_name, key=peer.key, content=content)

    probes = [
        ("GET", f"/_matrix/federation/v1/query/profile?user_id={user.replace(':', '%3A')}", None),
        ("GET", "/_matrix/federation/v1/make_join/%21r%3Ax/%40x%3A" + peer.server_name.replace(":", "%3A"), None),
        ("PUT", "/_matrix/federation/v2/invite/%21r%3Ax/%24e", {"room_version": "10", "event": {}}),
        ("PUT", "/_matrix/federation/v1/send/t1", {"origin": peer.server_name, "origin_server_ts": 1, "pdus": []}),
    ]
    assert call(*probes[0]).status_code == 200  # not listed: served

    for allow, deny in (([], [peer.server_name]), (["*.example.com"], []), (["127.0.0.1:1"], [])):
        settings.CONCORD_FEDERATION_ALLOWED_SERVERS = allow
        settings.CONCORD_FEDERATION_DENIED_SERVERS = deny
        for method, path, content in probes:
            r = call(method, path, content)
            assert r.status_code == 403, (allow, deny, path, r.text)
            assert r.json()["errcode"] == "M_FORBIDDEN"


@pytest.mark.django_db(transaction=True)
def test_our_users_cannot_reach_refused_servers(fed: ConcordTLS, settings: Any, make_user: Any,
                                                live_url: str) -> None:
    """Invites and joins towards a refused server fail at once; nothing is sent there (no network)."""
    from django.db import transaction

    from federation.bridge.portals import ensure_portal
    from federation.models import OutboundEDU, OutboundPDU
    from federation.store.outbox import enqueue_edu, enqueue_pdu
    from rooms.models import Room

    make_user("olga")
    api = ConcordApi(live_url, "olga")
    rid = api.post("groups.create", name="lists")["group"]["_id"]
    settings.CONCORD_FEDERATION_ALLOWED_SERVERS = ["example.com", "*.example.org"]
    for target in ("@eve:evilexample.com", "@eve:example.org", "@eve:evilexample.org"):
        r = api.post("groups.invite", roomId=rid, username=target)
        assert r["_status"] == 400 and r["errorType"] == "error-not-allowed", r
    for target in ("#room:evilexample.com", "#room:example.org"):
        r = api.post("channels.join", roomId=target)
        assert not r.get("success") and "not allowed" in r["error"], r
    r = api.post("channels.join", roomId="!abc:evilexample.com", via=["evil.example.com.net"])
    assert not r.get("success"), r

    mroom = ensure_portal(Room.objects.get(id=rid))
    with transaction.atomic():  # rolled back: no send is ever scheduled, not even to allowed names
        enqueue_pdu(["evilexample.com", "example.com"], mroom.room_id, "$x", {"type": "m.room.message"})
        enqueue_edu(["evilexample.com", "a.example.org"], "m.typing", {})
        assert set(OutboundPDU.objects.values_list("destination_id", flat=True)) == {"example.com"}
        assert set(OutboundEDU.objects.values_list("destination_id", flat=True)) == {"a.example.org"}
        transaction.set_rollback(True)


@pytest.mark.synapse
@pytest.mark.django_db(transaction=True)
def test_denied_synapse_cannot_invite_or_join(fed: ConcordTLS, synapse: SynapseServer, settings: Any,
                                              make_user: Any, live_url: str) -> None:
    make_user("nina")
    api = ConcordApi(live_url, "nina")
    rid = api.post("channels.create", name="denied")["channel"]["_id"]
    alias = api.post("rooms.federation", roomId=rid)["federation"]["alias"]
    settings.CONCORD_FEDERATION_DENIED_SERVERS = [synapse.server_name.split(":")[0]]  # host only: any port
    quinn = SynapseUser(synapse, "quinn")
    room_id = quinn.create_room(preset="private_chat")
    r = quinn.invite(room_id, f"@nina:{fed.server_name}")
    assert r.status_code == 403, r.text
    assert r.json().get("errcode") == "M_FORBIDDEN", r.text
    assert quinn.join(alias).status_code != 200
    from rooms.models import Membership

    assert not Membership.objects.filter(room_id=rid, user__username=quinn.user_id).exists()
    r2 = api.post("channels.invite", roomId=rid, username=quinn.user_id)
    assert r2["_status"] == 400, r2


@pytest.mark.django_db(transaction=True)
def test_lists_edited_at_run_time_in_django_admin(fed: ConcordTLS, peer: FakePeer, admin_user: Any,
                                                  settings: Any) -> None:
    """An admin denies a server in Django admin: its signed requests get 403 at once (this
    process; others within seconds); an environment list, when set, wins over the stored rules."""
    from django.test import Client

    from federation import config
    from federation.models import Destination, OutboundEDU, ServerRule

    settings.CONCORD_FEDERATION_ALLOWED_SERVERS = []
    settings.CONCORD_FEDERATION_DENIED_SERVERS = []
    config.forget_stored_rules()
    path = "/_matrix/federation/v1/query/profile?user_id=%40admin%3A" + fed.server_name

    def status() -> int:
        return signed_call(fed.base_url, peer_ca(fed), "GET", path, origin=peer.server_name,
                           destination=fed.server_name, key=peer.key).status_code

    assert status() == 200
    web = Client()
    web.force_login(admin_user)
    r = web.post("/admin/federation/serverrule/add/", {"pattern": f"  {peer.server_name.upper()} ", "kind": "deny",
                                                       "note": "spam"})
    assert r.status_code == 302, r.content[:500]
    assert ServerRule.objects.get().pattern == peer.server_name.lower()
    assert status() == 403 and not config.server_allowed(peer.server_name)
    listing = web.get("/admin/federation/serverrule/")
    assert listing.status_code == 200 and b"yes" in listing.content
    # The environment's list wins while it is set.
    settings.CONCORD_FEDERATION_DENIED_SERVERS = ["someone.else.example"]
    assert config.server_allowed(peer.server_name)
    assert b"environment" in web.get("/admin/federation/serverrule/").content
    settings.CONCORD_FEDERATION_DENIED_SERVERS = []
    web.post(f"/admin/federation/serverrule/{ServerRule.objects.get().pk}/delete/", {"post": "yes"})
    assert status() == 200

    # Destinations: state, queue, and "retry now" clearing a backoff.
    from django.utils import timezone

    Destination.objects.create(server_name="down.example", retry_interval=600, failing_since=timezone.now(),
                               next_attempt_at=timezone.now() + timezone.timedelta(minutes=10),
                               last_error="connection refused")
    OutboundEDU.objects.create(destination_id="down.example", edu_type="m.typing", content={})
    page = web.get("/admin/federation/destination/")
    assert page.status_code == 200 and b"backing off" in page.content and b"connection refused" in page.content
    r = web.post("/admin/federation/destination/", {"action": "retry", "_selected_action": ["down.example"]})
    assert r.status_code == 302
    dest = Destination.objects.get(server_name="down.example")
    assert dest.next_attempt_at is None and dest.retry_interval == 0
    for url in ("/admin/federation/remoteserverkey/", "/admin/federation/matrixroom/"):
        assert web.get(url).status_code == 200
