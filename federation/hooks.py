"""What chat actions call so that their changes reach Matrix: one line per action.

Guarantees
    * A no-op (one settings check, nothing imported from the rest of federation) when federation
      is off, and inside :func:`federation.bridge.applying_remote` (changes that came from Matrix
      must not echo back).
    * Nothing is sent before the action's transaction commits (``transaction.on_commit``); a
      rolled-back action sends nothing. Callbacks run in commit order, so a room's events go out in
      the order the chat made them.
    * A failure here never fails the chat action: it is logged (see :func:`federation.bridge._send`).

Trade-off: the Matrix event is built just after the chat commit rather than inside it, so a
process killed between the two loses that one event on the Matrix side. Building it inside the
action's transaction would make chat writes wait on signing and hold the room lock longer; the
outbox itself is durable from the moment the event exists.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import transaction

if TYPE_CHECKING:
    from accounts.models import User
    from rooms.models import Membership, Message, Room


def _active() -> bool:
    if not getattr(settings, "CONCORD_SERVER_NAME", "") or not getattr(settings, "CONCORD_FEDERATION_ENABLED", True):
        return False
    from federation.bridge import is_applying_remote

    return not is_applying_remote()


def _later(fn: Callable[..., None], *args: Any) -> None:
    def run() -> None:
        import logging

        try:
            fn(*args)
        except Exception:
            logging.getLogger(__name__).exception("federation hook %s failed", fn.__name__)

    transaction.on_commit(run)


def member_joined(sub: Membership) -> None:
    """``do_add_member``: a user is now joined."""
    if _active():
        from federation import bridge

        _later(bridge.on_member_joined, sub.room_id, sub.user_id)


def member_left(room: Room, user: User, by: User | None = None, membership: str = "leave") -> None:
    """``do_leave`` / ``do_kick`` / ``do_ban`` / a revoked or declined invite."""
    if _active():
        from federation import bridge

        _later(bridge.on_member_left, room.id, user.id, by.id if by is not None else None, membership)


def message_sent(msg: Message) -> None:
    """``do_send_message``."""
    if _active():
        from federation import bridge

        _later(bridge.on_message, msg.id)


def message_deleted(msg: Message, by: User) -> None:
    """``do_delete_message``."""
    if _active():
        from federation import bridge

        _later(bridge.on_message_deleted, msg.id, by.id)


def room_setting_changed(room: Room, field: str, by: User) -> None:
    """``do_change_room_setting`` (name, topic) and ``do_set_room_type`` (``type``)."""
    if _active():
        from federation import bridge

        _later(bridge.on_room_setting, room.id, field, by.id)


def room_role_changed(room: Room, user: User, by: User) -> None:
    """``do_set_room_role``: power levels follow owner/moderator."""
    if _active():
        from federation import bridge

        _later(bridge.on_room_role, room.id, user.id, by.id)


def history_page_short(room: Room) -> bool:
    """``*.history`` answered fewer messages than asked while scrolling back: fetch older history of
    a federated room from another server (synchronously, bounded; see :mod:`federation.history`).

    Returns whether anything new was stored (then the caller reads the page again). False at once
    when federation is off or the room is not federated; never raises.
    """
    if not _active():
        return False
    try:
        from federation.history import backfill_older

        return backfill_older(room)
    except Exception:
        import logging

        logging.getLogger(__name__).exception("scroll-back backfill of %s failed", room.id)
        return False

