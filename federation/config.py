"""The one reader of the federation settings (``CONCORD_*``, see :mod:`chat.settings_federation`).

Every module of :mod:`federation` asks here instead of reading ``django.conf.settings``: values are
read at call time (so tests and a settings reload take effect at once) and defaults live in one
place. The server allow/deny rule is here too: the environment's lists, or where one is empty
the rules an admin keeps in the database (:class:`~federation.models.ServerRule`).

Some switches are also run-time settings an admin changes over REST or on the Federation page
(Rocket.Chat's ``Federation_Matrix_enabled``, ``Federation_Matrix_enable_ephemeral_events``,
``Federation_Matrix_max_size_of_public_rooms_users``, and Concord's ``Federation_Matrix_typing``,
``_receipts``, ``_presence``). Their store belongs to the chat
(:mod:`accounts.server_settings`), which this layer may not import: the chat registers its reader
here at start-up (:func:`use_run_time_settings`); without one, the environment's values apply.

Layer: just above :mod:`federation.models` (the stored rules); imports Django settings and the models.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import DatabaseError

from federation.models import ServerRule


def _get(name: str, default: Any) -> Any:
    return getattr(settings, name, default)


_run_time_reader: Callable[[str], Any] | None = None


def use_run_time_settings(reader: Callable[[str], Any] | None) -> None:
    """Read the run-time settings through ``reader`` (a setting id -> its current value, whose
    defaults are the environment's values); None: the environment's values only."""
    global _run_time_reader
    _run_time_reader = reader


def _run_time(setting_id: str, environment_value: Any) -> Any:
    return environment_value if _run_time_reader is None else _run_time_reader(setting_id)


def server_name() -> str:
    """``CONCORD_SERVER_NAME``: our Matrix server name (empty when federation is not configured)."""
    return str(_get("CONCORD_SERVER_NAME", "") or "")


def enabled() -> bool:
    """Whether federation is on: a server name is set and the switch ``Federation_Matrix_enabled``
    (by default ``CONCORD_FEDERATION_ENABLED``) is on.

    TLS problems do not turn it off (a TLS-terminating proxy may be in front); they are reported
    by :func:`federation.status.federation_status`.
    """
    return bool(server_name()) and bool(_run_time("Federation_Matrix_enabled",
                                                  _get("CONCORD_FEDERATION_ENABLED", True)))


def data_dir() -> Path:
    """Where our signing key lives (``CONCORD_DATA_DIR``)."""
    return Path(settings.DATA_DIR)


def tls_files() -> tuple[str, str]:
    """``(CONCORD_TLS_CERT, CONCORD_TLS_KEY)``; empty strings when unset."""
    return str(_get("CONCORD_TLS_CERT", "") or ""), str(_get("CONCORD_TLS_KEY", "") or "")


def ca_bundle() -> str:
    """Extra CA certificates trusted for outbound requests (``CONCORD_FEDERATION_CA_BUNDLE``)."""
    return str(_get("CONCORD_FEDERATION_CA_BUNDLE", "") or "")


def allow_private_addresses() -> bool:
    """``CONCORD_FEDERATION_ALLOW_PRIVATE``: peers on loopback/private addresses are allowed."""
    return bool(_get("CONCORD_FEDERATION_ALLOW_PRIVATE", False))


def dns_servers() -> list[str]:
    """``CONCORD_FEDERATION_DNS_SERVERS``: nameservers for lookups (empty: the system resolver)."""
    return list(_get("CONCORD_FEDERATION_DNS_SERVERS", []) or [])


def well_known_server() -> str:
    """``CONCORD_WELL_KNOWN_SERVER``: the delegation target we serve, if any."""
    return str(_get("CONCORD_WELL_KNOWN_SERVER", "") or "")


def request_timeout() -> float:
    """Seconds for an outbound request (``CONCORD_FEDERATION_TIMEOUT``, default 30)."""
    return float(_get("CONCORD_FEDERATION_TIMEOUT", 30))


def lease_seconds() -> float:
    """How long a sender holds a destination: ``CONCORD_FEDERATION_LEASE_SECONDS`` (default 120),
    never less than the request timeout plus 5 s (a live sender never loses it mid-request)."""
    return max(float(_get("CONCORD_FEDERATION_LEASE_SECONDS", 120)), request_timeout() + 5)


def backoff_bounds() -> tuple[float, float]:
    """``(CONCORD_FEDERATION_BACKOFF_MIN, CONCORD_FEDERATION_BACKOFF_MAX)`` in seconds."""
    return float(_get("CONCORD_FEDERATION_BACKOFF_MIN", 60)), float(_get("CONCORD_FEDERATION_BACKOFF_MAX",
                                                                            86400 * 7))


def catch_up_after() -> float:
    """Seconds of failures after which a destination switches to catch-up (default 3600)."""
    return float(_get("CONCORD_FEDERATION_CATCHUP_AFTER", 3600))


def key_validity_ms() -> int:
    """How long our key responses are valid (``CONCORD_FEDERATION_KEY_VALIDITY`` seconds), in ms."""
    return int(_get("CONCORD_FEDERATION_KEY_VALIDITY", 7 * 86400)) * 1000


def room_version_default() -> str:
    """The room version of rooms we create (``CONCORD_FEDERATION_ROOM_VERSION``, default 12)."""
    return str(_get("CONCORD_FEDERATION_ROOM_VERSION", "12"))


def history_on_federate() -> int:
    """How many of a room's latest messages become Matrix history when it first federates
    (``CONCORD_FEDERATION_HISTORY_ON_FEDERATE``, default 200; 0: none)."""
    return int(_get("CONCORD_FEDERATION_HISTORY_ON_FEDERATE", 200))


def unsent_window() -> float:
    """How far back (seconds) the beat looks for local messages whose Matrix event was never made."""
    return float(_get("CONCORD_FEDERATION_UNSENT_WINDOW", 3600))


def send_wait() -> float:
    """Seconds ``/send`` waits for its PDUs' processing before answering (``CONCORD_FEDERATION_SEND_WAIT``, 0)."""
    return max(0.0, float(_get("CONCORD_FEDERATION_SEND_WAIT", 0)))


def inbound_threads() -> int:
    """Threads per process that process staged PDUs (``CONCORD_FEDERATION_INBOUND_THREADS``, 2)."""
    return max(1, int(_get("CONCORD_FEDERATION_INBOUND_THREADS", 2)))


def max_concurrent_requests() -> int:
    """Requests one remote server may have in progress at once (``CONCORD_FEDERATION_MAX_CONCURRENT``, 5)."""
    return int(_get("CONCORD_FEDERATION_MAX_CONCURRENT", 5))


def edus_enabled(kind: str) -> bool:
    """Rocket.Chat's federation switches: whether ``typing``, ``receipts`` or ``presence`` cross
    servers, both ways: its run-time switch ``Federation_Matrix_<kind>`` (default
    ``CONCORD_FEDERATION_TYPING`` / ``_RECEIPTS`` / ``_PRESENCE``, on) while the run-time switch
    ``Federation_Matrix_enable_ephemeral_events`` (default on) is on."""
    return bool(_run_time(f"Federation_Matrix_{kind}", _get(f"CONCORD_FEDERATION_{kind.upper()}", True))) \
        and bool(_run_time("Federation_Matrix_enable_ephemeral_events", True))


def stall_notice_after() -> float:
    """Seconds a server may fail before its rooms get a notice (``CONCORD_FEDERATION_STALL_NOTICE_AFTER``, 3600)."""
    return float(_get("CONCORD_FEDERATION_STALL_NOTICE_AFTER", 3600))


def max_remote_room_size() -> int:
    """Largest remote public room (by its directory's member count) users may join from the
    directory (``Federation_Matrix_max_size_of_public_rooms_users``, by default
    ``CONCORD_FEDERATION_MAX_REMOTE_ROOM_SIZE``, 100 as in Rocket.Chat; 0: no cap)."""
    return int(_run_time("Federation_Matrix_max_size_of_public_rooms_users",
                         _get("CONCORD_FEDERATION_MAX_REMOTE_ROOM_SIZE", 100)))


def publish_rooms() -> bool:
    """Whether other servers may list our public channels (``publicRooms``;
    ``CONCORD_FEDERATION_PUBLISH_ROOMS``, default on). Aliases resolve either way."""
    return bool(_get("CONCORD_FEDERATION_PUBLISH_ROOMS", True))


RULES_TTL_SECONDS = 5.0
_rules_cache: tuple[float, dict[str, list[str]]] | None = None


def _stored_rules() -> dict[str, list[str]]:
    """The allow/deny rules an admin keeps in the database (:class:`~federation.models.ServerRule`),
    read at most every :data:`RULES_TTL_SECONDS` per process (a change shows everywhere within it)."""
    global _rules_cache
    now = time.monotonic()
    if _rules_cache is not None and now - _rules_cache[0] < RULES_TTL_SECONDS:
        return _rules_cache[1]
    rules: dict[str, list[str]] = {ServerRule.ALLOW: [], ServerRule.DENY: []}
    try:
        for pattern, kind in ServerRule.objects.values_list("pattern", "kind"):
            rules.setdefault(kind, []).append(pattern)
    except DatabaseError:  # no table yet (before migrate): no stored rules
        pass
    _rules_cache = (now, rules)
    return rules


def forget_stored_rules() -> None:
    """Read the stored rules again on next use (after an admin change, in this process)."""
    global _rules_cache
    _rules_cache = None


def allowed_servers() -> list[str]:
    """``CONCORD_FEDERATION_ALLOWED_SERVERS`` when set, else the admin's allow rules (both empty:
    everyone not denied)."""
    env = list(_get("CONCORD_FEDERATION_ALLOWED_SERVERS", []) or [])
    return env or list(_stored_rules()[ServerRule.ALLOW])


def denied_servers() -> list[str]:
    """``CONCORD_FEDERATION_DENIED_SERVERS`` when set, else the admin's deny rules."""
    env = list(_get("CONCORD_FEDERATION_DENIED_SERVERS", []) or [])
    return env or list(_stored_rules()[ServerRule.DENY])


def lists_from_environment() -> dict[str, bool]:
    """Which of the two lists the environment sets (then the admin's rules of that kind are unused)."""
    return {ServerRule.ALLOW: bool(_get("CONCORD_FEDERATION_ALLOWED_SERVERS", [])),
            ServerRule.DENY: bool(_get("CONCORD_FEDERATION_DENIED_SERVERS", []))}


def _pattern_matches(pattern: str, server: str) -> bool:
    host = server.rsplit(":", 1)[0] if not server.endswith("]") else server
    pattern = pattern.strip().lower()
    server, host = server.lower(), host.lower()
    if pattern.startswith("*."):
        domain = pattern[2:]
        return host.endswith("." + domain) and len(host) > len(domain) + 1
    return pattern in (server, host)


def server_allowed(server: str) -> bool:
    """Whether we talk to ``server``: not on the deny list, and on the allow list when it has entries.

    Entries are exact server names (with or without port) or ``*.domain`` wildcards, which match
    sub-domains of ``domain`` only; a bare suffix never matches (``evilexample.org`` is not
    ``example.org``). Our own name is always allowed.
    """
    if server == server_name():
        return True
    if any(_pattern_matches(p, server) for p in denied_servers()):
        return False
    allow = allowed_servers()
    return not allow or any(_pattern_matches(p, server) for p in allow)
