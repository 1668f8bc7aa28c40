"""EDU registry: ``edu_type -> handler``, filled at start-up (``FederationConfig.ready``).

A handler gets ``(origin, content)``. Unknown EDU types are ignored (the spec lets servers drop
EDUs they do not understand). Handlers never raise out of :func:`dispatch_edus`: an EDU is
best-effort and must not fail the transaction that carried it.

Server ACLs: EDUs that belong to a room are subject to the room's ``m.room.server_acl`` like PDUs
(spec, "Server Access Control Lists"; MSC4163). :func:`dispatch_edus` drops an ``m.typing`` whose
room denies the origin, and strips from an ``m.receipt`` the rooms that deny it, before any
handler runs; dropped parts are logged. EDUs that are not per room (presence) are not affected.

Built-in handlers:
* ``m.typing`` -> the chat room's live ``typing`` event via ``rooms.actions.typing.do_set_typing``
  (only for a Matrix room linked to a chat room, a user of the sending server, known here);
* ``m.receipt`` -> the live ``receipt`` event for each ``m.read`` receipt, same conditions;
* ``m.presence`` -> accepted; remote users known here get their status updated.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from federation.protocol.ids import server_name_of

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


def _from_origin(user_id: object, origin: str) -> bool:
    return isinstance(user_id, str) and ":" in user_id and server_name_of(user_id) == origin


def _chat_room_and_user(room_id: object, user_id: str) -> tuple[Any, Any] | None:
    from accounts.models import User
    from federation.models import MatrixRoom

    if not isinstance(room_id, str):
        return None
    room = MatrixRoom.objects.filter(room_id=room_id).select_related("chat_room").first()
    if room is None or room.chat_room is None:
        return None
    user = User.objects.filter(username=user_id, is_remote=True).first()
    if user is None:
        return None
    return room.chat_room, user


def handle_typing(origin: str, content: dict[str, Any]) -> None:
    """``m.typing``: ``{room_id, user_id, typing}``."""
    from rooms.actions.typing import do_set_typing

    user_id = content.get("user_id")
    if not _from_origin(user_id, origin):
        return
    found = _chat_room_and_user(content.get("room_id"), str(user_id))
    if found:
        do_set_typing(found[1], found[0], bool(content.get("typing")))


def handle_receipt(origin: str, content: dict[str, Any]) -> None:
    """``m.receipt``: ``{room_id: {"m.read": {user_id: {"event_ids": [...], "data": {"ts": ms}}}}}``."""
    from rooms.events import LiveEvent, send_to_room

    for room_id, kinds in content.items():
        if not isinstance(kinds, dict):
            continue
        reads = kinds.get("m.read")
        if not isinstance(reads, dict):
            continue
        for user_id, receipt in reads.items():
            if not _from_origin(user_id, origin) or not isinstance(receipt, dict):
                continue
            found = _chat_room_and_user(room_id, user_id)
            if not found:
                continue
            data = receipt.get("data")
            ts = data.get("ts") if isinstance(data, dict) else None
            when = datetime.fromtimestamp(ts / 1000, UTC) if isinstance(ts, int) else datetime.now(UTC)
            room, user = found
            send_to_room(room.id, LiveEvent("receipt", room.id, {
                "user": {"_id": user.id, "username": user.username, "name": user.display_name},
                "ts": when.isoformat()}))


_PRESENCE_TO_STATUS = {"online": "online", "unavailable": "away", "offline": "offline"}


def handle_presence(origin: str, content: dict[str, Any]) -> None:
    """``m.presence``: ``{"push": [{user_id, presence, ...}]}``; updates known remote users' status."""
    from accounts.models import User

    push = content.get("push")
    if not isinstance(push, list):
        return
    for item in push[:1000]:
        if not isinstance(item, dict) or not _from_origin(item.get("user_id"), origin):
            continue
        status = _PRESENCE_TO_STATUS.get(str(item.get("presence")))
        if status:
            User.objects.filter(username=item["user_id"], is_remote=True).update(status=status)


def register_builtin_handlers() -> None:
    """Fill the registry with the built-in handlers (called from ``FederationConfig.ready``)."""
    register_edu_handler("m.typing", handle_typing)
    register_edu_handler("m.receipt", handle_receipt)
    register_edu_handler("m.presence", handle_presence)
