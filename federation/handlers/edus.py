"""EDU registry: ``edu_type -> handler``, filled at start-up (``FederationConfig.ready``) by the
bridge (:mod:`federation.bridge.edus`), which owns what an EDU does to the chat.

A handler gets ``(origin, content)``. Unknown EDU types are ignored (the spec lets servers drop
EDUs they do not understand). Handlers never raise out of :func:`dispatch_edus`: an EDU is
best-effort and must not fail the transaction that carried it.

Server ACLs: EDUs that belong to a room are subject to the room's ``m.room.server_acl`` like PDUs
(spec, "Server Access Control Lists"; MSC4163). :func:`dispatch_edus` drops an ``m.typing`` whose
room denies the origin, and strips from an ``m.receipt`` the rooms that deny it, before any
handler runs; dropped parts are logged. EDUs that are not per room (presence) are not affected.

The handlers themselves (typing, receipts, presence) live in :mod:`federation.bridge.edus`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

EduHandler = Callable[[str, dict[str, Any]], None]
_registry: dict[str, EduHandler] = {}


def register_edu_handler(edu_type: str, handler: EduHandler) -> None:
    """Register (or replace) the handler of an EDU type."""
    _registry[edu_type] = handler


def registered_edu_types() -> list[str]:
    """The EDU types with a handler."""
    return sorted(_registry)


RoomFilter = Callable[[str], bool]


def _allow_all(room_id: str) -> bool:
    return True


def acl_filtered(edu_type: str, content: dict[str, Any], origin: str,
                 room_allowed: RoomFilter) -> dict[str, Any] | None:
    """``content`` without the parts whose room's server ACL denies ``origin``; None if nothing is left.

    Guarantee: ``m.typing`` is all or nothing (one room); ``m.receipt`` keeps exactly the rooms
    ``room_allowed`` accepts; other EDU types are returned unchanged.
    """
    if edu_type == "m.typing":
        room_id = content.get("room_id")
        if isinstance(room_id, str) and not room_allowed(room_id):
            log.info("dropped m.typing from %s: the server ACL of %s denies it", origin, room_id)
            return None
        return content
    if edu_type == "m.receipt":
        kept = {room_id: v for room_id, v in content.items() if not isinstance(room_id, str) or room_allowed(room_id)}
        if len(kept) < len(content):
            log.info("dropped receipts from %s for %d room(s) whose server ACL denies it", origin,
                     len(content) - len(kept))
        return kept or None
    return content


def dispatch_edus(origin: str, edus: list[Any], room_allowed: RoomFilter = _allow_all) -> int:
    """Hand each well-formed EDU to its handler; returns how many were handled.

    Args:
        origin: the server that sent the transaction.
        edus: the transaction's ``edus``.
        room_allowed: ``room_id -> bool``, whether the room's server ACL lets ``origin`` in
            (see :func:`acl_filtered`); by default every room does.
    """
    handled = 0
    for edu in edus:
        if not isinstance(edu, dict):
            continue
        edu_type, content = edu.get("edu_type"), edu.get("content")
        handler = _registry.get(edu_type) if isinstance(edu_type, str) else None
        if handler is None or not isinstance(content, dict):
            continue
        filtered = acl_filtered(str(edu_type), content, origin, room_allowed)
        if filtered is None:
            continue
        content = filtered
        try:
            handler(origin, content)
            handled += 1
        except Exception:  # best effort by design: log, never fail the transaction
            log.exception("EDU %s from %s failed", edu_type, origin)
    return handled
