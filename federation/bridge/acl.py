"""A room's server ACL (``m.room.server_acl``) as its owners edit it from the chat.

:func:`set_server_acl` checks what the chat gives (patterns as the spec's globs, at most
:data:`MAX_ENTRIES` each, never an ACL that would shut our own server out) and sends the event
through :func:`~federation.bridge.portals.send_state_as_local`. Incoming ACL events need nothing
here: the store reads the room's current ACL on every request (:mod:`federation.store.room_state`).
"""

from __future__ import annotations

from typing import Any

from federation import config
from federation.bridge.portals import send_state_as_local
from federation.bridge.users import mxid_of
from federation.models import MatrixRoom
from federation.protocol.room_servers import server_acl_allows
from federation.store.room_state import joined_servers, state_content

MAX_ENTRIES = 100
MAX_PATTERN = 255


class AclError(ValueError):
    """The ACL given is not one to send (the message says why)."""


def _patterns(value: Any, name: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > MAX_ENTRIES:
        raise AclError(f'"{name}" must be a list of at most {MAX_ENTRIES} server patterns')
    out = []
    for item in value:
        if not isinstance(item, str) or not item.strip() or len(item) > MAX_PATTERN or any(c.isspace() for c in
                                                                                           item.strip()):
            raise AclError(f'"{name}" holds something that is not a server pattern: {str(item)[:60]!r}')
        out.append(item.strip().lower())
    return list(dict.fromkeys(out))


def acl_of(mroom: MatrixRoom) -> dict[str, Any] | None:
    """The room's current ACL in the REST API's shape (None: it has none)."""
    content = state_content(mroom, ("m.room.server_acl", ""))
    if content is None:
        return None
    return {"allow": list(content.get("allow") or []), "deny": list(content.get("deny") or []),
            "allowIpLiterals": bool(content.get("allow_ip_literals", True))}


def set_server_acl(mroom: MatrixRoom, by: Any, *, allow: Any, deny: Any, allow_ip_literals: Any) -> dict[str, Any]:
    """Send the room's new ACL (``allow`` empty means everyone: ``["*"]``).

    Raises:
        AclError: malformed lists, or an ACL that would keep our own server out (the room would
            be lost to us), or one no local member may send.
    """
    content = {"allow": _patterns(allow, "allow") or ["*"], "deny": _patterns(deny, "deny"),
               "allow_ip_literals": bool(True if allow_ip_literals is None else allow_ip_literals)}
    me = config.server_name()
    if not server_acl_allows(content, me):
        raise AclError(f"That ACL would shut this server ({me}) out of its own room")
    if not send_state_as_local(mroom, mxid_of(by), "m.room.server_acl", content):
        raise AclError("No member of this server may change the room's server ACL")
    mroom.refresh_from_db()
    return {**(acl_of(mroom) or {}), "servers": joined_servers(mroom)}
