"""The pure rules of room_servers: server ACL globs (case-insensitive since spec v1.19; ``*`` and
``?`` only), IP literals, ports; history visibility for a server."""

from __future__ import annotations

import pytest

from federation.protocol.room_servers import acl_glob_matches, history_visible_to_server, server_acl_allows


@pytest.mark.parametrize(("pattern", "host", "matches"), [
    ("*.example.org", "a.example.org", True),
    ("*.example.org", "A.EXAMPLE.ORG", True),  # spec v1.19: case-insensitive
    ("*.Example.ORG", "b.example.org", True),
    ("*.example.org", "example.org", False),
    ("ex?mple.org", "example.org", True),
    ("ex?mple.org", "exmple.org", False),
    ("[ab].org", "a.org", False),  # brackets are literal, not a character class
    ("[ab].org", "[ab].org", True),
    ("evil.*", "evil.example.org", True),
    ("*", "anything", True),
    (".org", "x.org", False),  # a dot is a dot
])
def test_acl_globs(pattern: str, host: str, matches: bool) -> None:
    assert acl_glob_matches(pattern, host) is matches


def test_acl_deny_wins_ports_never_count_and_ip_literals() -> None:
    acl = {"allow": ["*"], "deny": ["Bad.Example.org"], "allow_ip_literals": False}
    assert not server_acl_allows(acl, "bad.example.org:8448")
    assert not server_acl_allows(acl, "BAD.example.ORG")
    assert server_acl_allows(acl, "good.example.org:8448")
    assert not server_acl_allows(acl, "127.0.0.1:8448") and not server_acl_allows(acl, "[::1]:8448")
    assert server_acl_allows({"allow": ["*"]}, "127.0.0.1")  # literals allowed by default
    assert not server_acl_allows({"deny": []}, "example.org")  # an empty allow list admits nobody
    assert server_acl_allows(None, "example.org")
    assert not server_acl_allows({"allow": "*"}, "example.org")  # malformed lists match nothing


@pytest.mark.parametrize(("visibility", "memberships", "joined_now", "visible"), [
    ("world_readable", frozenset(), False, True),
    ("shared", frozenset(), True, True),
    ("shared", frozenset(), False, False),
    ("shared", frozenset({"join"}), False, True),
    ("invited", frozenset({"invite"}), True, True),
    ("invited", frozenset(), True, False),
    ("joined", frozenset({"invite"}), True, False),
    ("joined", frozenset({"join"}), False, True),
    (None, frozenset(), True, True),  # missing or unknown: shared
    ("bogus", frozenset(), False, False),
])
def test_history_visibility_for_servers(visibility: object, memberships: frozenset[str], joined_now: bool,
                                        visible: bool) -> None:
    assert history_visible_to_server(visibility, memberships, joined_now) is visible
