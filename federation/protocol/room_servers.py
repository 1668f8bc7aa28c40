"""Which servers a room involves, and whether its server ACL admits a server: pure rules over state.

* :func:`servers_in_room`: the servers with at least one joined member in a state map, in the
  order their first member appears (the one definition; the outbox's destinations, the
  ``servers_in_room`` of a ``send_join`` answer, ``query/directory`` and backfill candidates use it).
* :func:`history_visible_to_server`: whether a server may see an event's content under the
  room's ``m.room.history_visibility`` at that event (else it gets the redacted copy).
* :func:`server_acl_allows`: the ``m.room.server_acl`` check of the spec ("Server Access Control
  Lists"): IP literals refused when ``allow_ip_literals`` is false, then ``deny`` globs, then
  ``allow`` globs (:func:`acl_glob_matches`: ``*`` and ``?`` only, case-insensitive), matched
  against the host without its port; no ACL event means everyone.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Iterable, Mapping
from typing import Any

from .errors import InvalidIdentifier
from .events import Event, StateKey
from .ids import server_name_of


def servers_in_room(state: Mapping[StateKey, Event]) -> list[str]:
    """Servers with a joined member in ``state`` (``{(type, state_key): Event}``), without repeats."""
    servers: list[str] = []
    for (event_type, state_key), event in state.items():
        if event_type == "m.room.member" and event.membership == "join":
            try:
                server = server_name_of(state_key)
            except InvalidIdentifier:
                continue
            if server not in servers:
                servers.append(server)
    return servers


def server_has_member_joined(members: Iterable[Event], server: str) -> bool:
    """Whether one of ``members`` (``m.room.member`` events) is a join of a user of ``server``."""
    return any(ev.membership == "join" and (ev.state_key or "").endswith(":" + server) for ev in members)


def server_memberships(state: Mapping[StateKey, Event], server: str) -> frozenset[str]:
    """The memberships (``join``, ``invite``...) that users of ``server`` hold in ``state``."""
    out = set()
    for (event_type, state_key), event in state.items():
        if event_type != "m.room.member":
            continue
        try:
            if server_name_of(state_key) == server and event.membership:
                out.add(event.membership)
        except InvalidIdentifier:
            continue
    return frozenset(out)


def history_visible_to_server(visibility: Any, memberships_at_event: frozenset[str], joined_now: bool) -> bool:
    """The spec's history visibility for a server, at one event.

    ``world_readable``: always. ``shared`` (also any unknown or missing value, the spec's
    default): while the server has a member joined now, or had one joined at the event.
    ``invited``: a member invited or joined at the event. ``joined``: a member joined at the event.
    """
    if visibility == "world_readable":
        return True
    if visibility == "invited":
        return bool(memberships_at_event & {"join", "invite"})
    if visibility == "joined":
        return "join" in memberships_at_event
    return joined_now or "join" in memberships_at_event


def _host_of(server: str) -> str:
    return server.rsplit(":", 1)[0] if not server.endswith("]") else server


def server_acl_allows(acl: Mapping[str, Any] | None, server: str) -> bool:
    """Whether the ACL content ``acl`` (None: the room has none) lets ``server`` in (the port never counts)."""
    if acl is None:
        return True
    host = _host_of(server)
    if not acl.get("allow_ip_literals", True):
        try:
            ipaddress.ip_address(host.strip("[]"))
            return False
        except ValueError:
            pass
    deny = acl.get("deny", [])
    allow = acl.get("allow", [])
    if any(isinstance(p, str) and acl_glob_matches(p, host) for p in deny if isinstance(deny, list)):
        return False
    return any(isinstance(p, str) and acl_glob_matches(p, host) for p in allow if isinstance(allow, list))


@functools.lru_cache(maxsize=1024)
def _glob_regex(pattern: str) -> re.Pattern[str]:
    return re.compile("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern),
                      re.IGNORECASE | re.DOTALL)


def acl_glob_matches(pattern: str, host: str) -> bool:
    """The spec's ACL glob: ``*`` any run of characters, ``?`` one character, everything else
    literal (``[`` included, unlike shell globs), compared case-insensitively (spec v1.19)."""
    return _glob_regex(pattern).fullmatch(host) is not None
