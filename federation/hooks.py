"""What chat actions call so that their changes reach Matrix: one line per action.

The hooks know nothing of how a change becomes a Matrix event: they forward to the
:class:`FederationSink` that :mod:`federation.bridge.outgoing` registers at start-up
(``FederationConfig.ready``), so ``rooms.actions`` never imports the bridge and the bridge may
import the actions without a cycle.

Guarantees
    * A no-op (one settings check) when federation is off, when no sink is registered, and inside
      :func:`applying_remote` (changes that came from Matrix must not echo back).
    * Nothing is sent before the action's transaction commits (``transaction.on_commit``); a
      rolled-back action sends nothing. Callbacks run in commit order, so a room's events go out in
      the order the chat made them.
    * A failure in the sink never fails the chat action: it is logged.

Trade-off: the Matrix event is built just after the chat commit rather than inside it, so a
process killed between the two loses that one event on the Matrix side. Building it inside the
action's transaction would make chat writes wait on signing and hold the room lock longer; the
outbox itself is durable from the moment the event exists.

Layer: bottom (imports :mod:`federation.config` only); the chat side's types are named for the
type checker alone.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from django.db import transaction

from federation import config

if TYPE_CHECKING:  # names for annotations only; never imported at run time
    from accounts.models import User
    from rooms.models import Membership, Message, Room

log = logging.getLogger(__name__)


class FederationSink(Protocol):
    """Where chat changes go after commit (implemented by :mod:`federation.bridge.outgoing`).

    Every method takes IDs, never model instances: it runs after the action's commit.
    """

    def member_joined(self, room_id: str, user_id: str) -> None: ...

    def member_left(self, room_id: str, user_id: str, by_id: str | None, membership: str) -> None: ...

    def member_unbanned(self, room_id: str, user_id: str, by_id: str) -> None: ...

    def message_sent(self, message_id: str) -> None: ...

    def message_deleted(self, message_id: str, by_id: str) -> None: ...

    def message_edited(self, message_id: str, by_id: str) -> None: ...

    def reaction_changed(self, message_id: str, user_id: str, emoji: str, added: bool) -> None: ...

    def typing_changed(self, room_id: str, username: str, typing: bool) -> None: ...

    def read_marked(self, room_id: str, user_id: str, at_ms: int) -> None: ...

    def room_setting_changed(self, room_id: str, field: str, by_id: str) -> None: ...

    def room_role_changed(self, room_id: str, user_id: str, by_id: str) -> None: ...

    def presence_changed(self, user_id: str) -> None: ...

    def history_page_short(self, room_id: str) -> bool: ...


_sink: FederationSink | None = None
_applying_remote: contextvars.ContextVar[bool] = contextvars.ContextVar("fed_applying_remote", default=False)


def register_sink(sink: FederationSink | None) -> None:
    """Install (or, with None, remove) the sink the hooks forward to."""
    global _sink
    _sink = sink


@contextlib.contextmanager
def applying_remote() -> Iterator[None]:
    """Chat actions run inside this block come from Matrix: their hooks must not send anything."""
    token = _applying_remote.set(True)
    try:
        yield
    finally:
        _applying_remote.reset(token)


def is_applying_remote() -> bool:
    """Whether the current code runs inside :func:`applying_remote`."""
    return _applying_remote.get()


def _active_sink() -> FederationSink | None:
    if _sink is None or is_applying_remote() or not config.enabled():  # the cheap tests first
        return None
    return _sink


def _later(fn: Callable[..., Any], *args: Any) -> None:
    def run() -> None:
        try:
            fn(*args)
        except Exception:
            log.exception("federation hook %s failed", getattr(fn, "__name__", fn))

    transaction.on_commit(run)


def member_joined(sub: Membership) -> None:
    """``do_add_member``: a user is now joined."""
    if (sink := _active_sink()) is not None:
        _later(sink.member_joined, sub.room_id, sub.user_id)


def member_left(room: Room, user: User, by: User | None = None, membership: str = "leave") -> None:
    """``do_leave`` / ``do_kick`` / ``do_ban`` / a revoked or declined invite."""
    if (sink := _active_sink()) is not None:
        _later(sink.member_left, room.id, user.id, by.id if by is not None else None, membership)


def member_unbanned(room: Room, user: User, by: User) -> None:
    """``do_unban``: the ban is lifted (in Matrix: a leave of the banned user, sent by ``by``)."""
    if (sink := _active_sink()) is not None:
        _later(sink.member_unbanned, room.id, user.id, by.id)


def message_sent(msg: Message) -> None:
    """``do_send_message``."""
    if (sink := _active_sink()) is not None:
        _later(sink.message_sent, msg.id)


def message_deleted(msg: Message, by: User) -> None:
    """``do_delete_message``."""
    if (sink := _active_sink()) is not None:
        _later(sink.message_deleted, msg.id, by.id)


def message_edited(msg: Message, by: User) -> None:
    """``do_edit_message``: the text changed."""
    if (sink := _active_sink()) is not None:
        _later(sink.message_edited, msg.id, by.id)


def reaction_changed(msg: Message, user: User, emoji: str, added: bool) -> None:
    """``do_toggle_reaction``: ``user``'s ``emoji`` on ``msg`` was added or removed."""
    if (sink := _active_sink()) is not None:
        _later(sink.reaction_changed, msg.id, user.id, emoji, added)


def typing_changed(room_id: str, username: str, typing: bool) -> None:
    """``do_set_typing`` / ``expire_typing``: a user started or stopped typing (sent at once: typing
    is ephemeral and not part of any transaction)."""
    if (sink := _active_sink()) is not None:
        _later(sink.typing_changed, room_id, username, typing)


def read_marked(room: Room, user: User, at: datetime) -> None:
    """``do_mark_read``: the user has read the room up to ``at``."""
    if (sink := _active_sink()) is not None:
        _later(sink.read_marked, room.id, user.id, int(at.timestamp() * 1000))


def room_setting_changed(room: Room, field: str, by: User) -> None:
    """``do_change_room_setting`` (name, topic, read_only, broadcast) and ``do_set_room_type`` (``type``)."""
    if (sink := _active_sink()) is not None:
        _later(sink.room_setting_changed, room.id, field, by.id)


def room_role_changed(room: Room, user: User, by: User) -> None:
    """``do_set_room_role``: power levels follow owner/moderator."""
    if (sink := _active_sink()) is not None:
        _later(sink.room_role_changed, room.id, user.id, by.id)


def member_muted(room: Room, user: User, by: User) -> None:
    """``do_set_muted``: the member's power level goes below (or back above) the message level."""
    if (sink := _active_sink()) is not None:
        _later(sink.room_role_changed, room.id, user.id, by.id)


def presence_changed(user: User) -> None:
    """``do_update_profile``: a local user's status changed."""
    if (sink := _active_sink()) is not None:
        _later(sink.presence_changed, user.id)


def history_page_short(room: Room) -> bool:
    """``*.history`` answered fewer messages than asked while scrolling back: fetch older history of
    a federated room from another server (synchronously, bounded; see :mod:`federation.handlers.backfill`).

    Returns whether anything new was stored (then the caller reads the page again). False at once
    when federation is off or the room is not federated; never raises.
    """
    sink = _active_sink()
    if sink is None:
        return False
    try:
        return sink.history_page_short(room.id)
    except Exception:
        log.exception("scroll-back backfill of %s failed", room.id)
        return False
