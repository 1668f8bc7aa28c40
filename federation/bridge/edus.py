"""What EDUs do to the chat: the handlers :mod:`federation.handlers.edus` dispatches to.

Registered at start-up (:func:`register_edu_handlers`, from ``FederationConfig.ready``):

* ``m.typing`` -> the chat room's live ``typing`` event via ``rooms.actions.typing.do_set_typing``
  (only for a Matrix room linked to a chat room, a user of the sending server, known here);
* ``m.receipt`` -> the remote user's read position (``do_mark_read``: read receipts and the live
  ``receipt`` event) for each ``m.read`` receipt, same conditions;
* ``m.presence`` -> accepted; remote users known here get their status updated.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from accounts.actions import do_set_remote_profile
from accounts.models import User
from federation import config
from federation.bridge import convert
from federation.bridge.portals import matrix_room
from federation.handlers.edus import register_edu_handler
from federation.hooks import applying_remote
from federation.models import BridgedMessage
from federation.protocol.ids import server_name_of
from rooms.actions.messages import do_mark_read
from rooms.actions.typing import do_set_typing
from rooms.events import LiveEvent, send_to_room
from rooms.models import Membership, Message, Room


def _from_origin(user_id: object, origin: str) -> bool:
    return isinstance(user_id, str) and ":" in user_id and server_name_of(user_id) == origin


def _chat_room_and_user(room_id: object, user_id: str) -> tuple[Room, User] | None:
    if not isinstance(room_id, str):
        return None
    mroom = matrix_room(room_id)
    if mroom is None or mroom.chat_room is None:
        return None
    user = User.objects.filter(username=user_id, is_remote=True).first()
    if user is None:
        return None
    return mroom.chat_room, user


def handle_typing(origin: str, content: dict[str, Any]) -> None:
    """``m.typing``: ``{room_id, user_id, typing}`` (ignored with ``CONCORD_FEDERATION_TYPING`` off)."""
    if not config.edus_enabled("typing"):
        return
    user_id = content.get("user_id")
    if not _from_origin(user_id, origin):
        return
    found = _chat_room_and_user(content.get("room_id"), str(user_id))
    if found:
        with applying_remote():
            do_set_typing(found[1], found[0], bool(content.get("typing")))


def handle_receipt(origin: str, content: dict[str, Any]) -> None:
    """``m.receipt``: ``{room_id: {"m.read": {user_id: {"event_ids": [...], "data": {"ts": ms}}}}}``.

    The remote user's read position moves to the bridged message of the (latest known) event, never
    backwards: it shows in ``chat.getMessageReadReceipts`` and as a live ``receipt``. A receipt for
    an event we cannot place is shown live only, with its time. Ignored with
    ``CONCORD_FEDERATION_RECEIPTS`` off.
    """
    if not config.edus_enabled("receipts"):
        return
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
            room, user = found
            event_ids = receipt.get("event_ids")
            read = _latest_message(room, event_ids if isinstance(event_ids, list) else [])
            sub = Membership.objects.filter(room=room, user=user, state=Membership.JOINED).first()
            if sub is None:
                continue  # not a member here: nothing to show
            if read is not None:
                if sub.last_read_at is None or sub.last_read_at < read.created_at:
                    with applying_remote():
                        do_mark_read(user, room, at=read.created_at)
                continue
            data = receipt.get("data")
            ts = data.get("ts") if isinstance(data, dict) else None
            when = convert.sent_at(ts) if isinstance(ts, int) else datetime.now(UTC)
            send_to_room(room.id, LiveEvent("receipt", room.id, {
                "user": {"_id": user.id, "username": user.username, "name": user.display_name},
                "ts": when.isoformat()}))


def _latest_message(room: Room, event_ids: list[Any]) -> Message | None:
    """The newest chat message of ``room`` bridged from one of ``event_ids``."""
    ids = [e for e in event_ids[:20] if isinstance(e, str)]
    links = BridgedMessage.objects.filter(event_id__in=ids).values_list("message_id", flat=True)
    return Message.objects.filter(id__in=list(links), room=room).order_by("-created_at").first() if ids else None


_PRESENCE_TO_STATUS = {"online": "online", "unavailable": "away", "offline": "offline"}


def handle_presence(origin: str, content: dict[str, Any]) -> None:
    """``m.presence``: ``{"push": [{user_id, presence, ...}]}``; updates known remote users' status
    (ignored with ``CONCORD_FEDERATION_PRESENCE`` off)."""
    if not config.edus_enabled("presence"):
        return
    push = content.get("push")
    if not isinstance(push, list):
        return
    for item in push[:1000]:
        if not isinstance(item, dict) or not _from_origin(item.get("user_id"), origin):
            continue
        status = _PRESENCE_TO_STATUS.get(str(item.get("presence")))
        user = User.objects.filter(username=item["user_id"], is_remote=True).first() if status else None
        if user is not None:
            do_set_remote_profile(user, status=status)


def register_edu_handlers() -> None:
    """Fill the EDU registry with the chat's handlers (called from ``FederationConfig.ready``)."""
    register_edu_handler("m.typing", handle_typing)
    register_edu_handler("m.receipt", handle_receipt)
    register_edu_handler("m.presence", handle_presence)
