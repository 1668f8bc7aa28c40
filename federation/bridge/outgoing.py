"""Chat -> Matrix: what a chat change becomes in the portal's Matrix room.

:class:`ChatToMatrix` is the :class:`~federation.hooks.FederationSink` registered at start-up;
the hooks call it after the chat action's commit, with IDs (messages, their deletion, edits and
quotes, reactions, memberships, room settings and roles). Each method loads what it needs,
skips rooms that are not portals (or that we are no longer in) and sends through
:func:`federation.handlers.room_events.send_event`; a refused or failed send is logged, never
raised into the chat.

A message's event is built after the chat commit (see :mod:`federation.hooks`), so a process
killed between the two, or a database error in the hook (PostgreSQL restarting), would leave the
message on this server only. :func:`bridge_unsent_messages` (a step of the beat task) closes that
gap: local messages of live portals from the last ``CONCORD_FEDERATION_UNSENT_WINDOW`` seconds that
have no event yet get one, dated with the message's own time, so the other servers (which order a
room's history by ``origin_server_ts``) show it where it was posted. Exactly once: an event and its
:class:`~federation.models.BridgedMessage` row are written in one transaction, under the portal's
row lock, after checking that no row exists (so the hook and a sweep never both send one).
"""

from __future__ import annotations

import enum
import logging
from datetime import timedelta
from typing import Any

from django.core.cache import cache
from django.db import transaction
from django.db.models import Exists, F, OuterRef
from django.utils import timezone

from accounts.models import User
from federation import config
from federation.bridge import convert, emoji, media
from federation.bridge.content import event_of, mentions_of, message_content
from federation.bridge.portals import portal_of, send_state_as_local, update_power_levels
from federation.bridge.users import mxid_of
from federation.handlers.backfill import backfill_older
from federation.handlers.room_events import EventRefused, send_event
from federation.models import BridgedMessage, BridgedReaction, MatrixRoom
from federation.protocol.events import Event
from federation.protocol.ids import server_name_of
from federation.store.outbox import enqueue_edu
from federation.store.room_state import joined_servers, membership_of, state_content
from rooms.models import Membership, Message, Room

log = logging.getLogger(__name__)


def _send(room_id: str, event_type: str, sender: str, content: dict[str, Any], **kw: Any) -> Event | None:
    try:
        return send_event(room_id, event_type, sender, content, **kw)
    except EventRefused as exc:
        log.warning("not sending %s by %s in %s: %s", event_type, sender, room_id, exc)
    except Exception:
        log.exception("sending %s by %s in %s failed", event_type, sender, room_id)
    return None


def _live_portal(room: Room | None) -> MatrixRoom | None:
    """The portal's Matrix room when we are still in it (it has a current state)."""
    mroom = portal_of(room) if room is not None else None
    return mroom if mroom is not None and mroom.current_state else None


class Bridged(enum.Enum):
    """What :func:`bridge_message` did."""

    SENT = "sent"
    ALREADY = "already"  # the message has its event (sent by someone else meanwhile)
    NOT_BRIDGED = "not bridged"  # not a local user's message in a live portal: stays in the chat
    REFUSED = "refused"  # the auth rules refused the event (logged)


UNSENT_GRACE_SECONDS = 5.0
"""Messages younger than this are left to their own hook (it normally runs within milliseconds)."""


def bridge_message(message_id: str) -> Bridged:
    """Send a local user's message in a portal as its ``m.room.message``, unless it has one.

    Guarantees: at most one event per message, even when called concurrently for the same message
    (the check and the event + :class:`BridgedMessage` write happen in one transaction under the
    portal's row lock); the event's ``origin_server_ts`` is the message's creation time. Errors
    other than a refusal (a database error) propagate, with nothing written.
    """
    msg = Message.objects.filter(id=message_id).select_related("user", "room", "file").first()
    if msg is None or msg.type or msg.user is None or msg.user.is_remote or msg.deleted_at:
        return Bridged.NOT_BRIDGED
    mroom = _live_portal(msg.room)
    if mroom is None:
        return Bridged.NOT_BRIDGED
    with transaction.atomic():
        MatrixRoom.objects.select_for_update().filter(room_id=mroom.room_id).first()
        if BridgedMessage.objects.filter(message_id=msg.id).exists():
            return Bridged.ALREADY
        sender = mxid_of(msg.user)
        try:
            event = send_event(mroom.room_id, "m.room.message", sender, message_content(msg),
                               origin_server_ts=int(msg.created_at.timestamp() * 1000))
        except EventRefused as exc:
            log.warning("not sending message %s by %s in %s: %s", msg.id, sender, mroom.room_id, exc)
            return Bridged.REFUSED
        BridgedMessage.objects.get_or_create(event_id=event.event_id, defaults={"message_id": msg.id})
    return Bridged.SENT


def _given_up_key(message_id: str) -> str:
    return f"federation:unsent-given-up:{message_id}"


def bridge_unsent_messages(limit: int = 200) -> int:
    """Beat: give their event to local messages of live portals that have none (their hook was cut
    short by a crash or failed), oldest first; returns how many were sent.

    Looks at messages posted since the portal exists, at most ``CONCORD_FEDERATION_UNSENT_WINDOW``
    seconds ago and at least :data:`UNSENT_GRACE_SECONDS` ago. A message whose send is refused
    (e.g. its author may not post in the Matrix room) is not tried again within the window
    (remembered in the cache); one that fails for another reason is tried on the next run.
    """
    window = config.unsent_window()
    if window <= 0:
        return 0
    now = timezone.now()
    candidates = list(
        Message.objects.filter(created_at__gte=F("room__matrix_room__created_at"))
        .filter(created_at__gte=now - timedelta(seconds=window),
                created_at__lt=now - timedelta(seconds=UNSENT_GRACE_SECONDS),
                type="", deleted_at__isnull=True, user__is_remote=False)
        .filter(~Exists(BridgedMessage.objects.filter(message_id=OuterRef("id"))))
        .order_by("created_at", "id").values_list("id", flat=True)[:limit])
    if not candidates:
        return 0
    try:
        given_up = set(cache.get_many([_given_up_key(m) for m in candidates]))
    except Exception:  # no cache: try them all
        given_up = set()
    sent = 0
    for message_id in candidates:
        if _given_up_key(message_id) in given_up:
            continue
        try:
            outcome = bridge_message(message_id)
        except Exception:  # e.g. the database is going away: the next run tries again
            log.warning("could not send the Matrix event of message %s; the next run will", message_id,
                        exc_info=True)
            return sent
        if outcome is Bridged.SENT:
            sent += 1
            log.warning("sent the Matrix event of message %s, which its post did not send", message_id)
        elif outcome is not Bridged.ALREADY:
            try:
                cache.set(_given_up_key(message_id), 1, timeout=int(window))
            except Exception:
                pass
    return sent


class ChatToMatrix:
    """The sink of :mod:`federation.hooks` (see the module docstring)."""

    def member_joined(self, room_id: str, user_id: str) -> None:
        """A local user joined a portal: their ``m.room.member`` join."""
        room = Room.objects.filter(id=room_id).first()
        user = User.objects.filter(id=user_id, is_remote=False).first()
        mroom = portal_of(room) if room is not None else None
        if mroom is None or user is None:
            return
        mxid = mxid_of(user)
        if membership_of(mroom, mxid) == "join":
            return
        if not mroom.current_state:
            log.warning("%s joined %s, which we are not in any more: not sent", mxid, mroom.room_id)
            return
        _send(mroom.room_id, "m.room.member", mxid, {"membership": "join", "displayname": user.display_name},
              state_key=mxid)

    def member_left(self, room_id: str, user_id: str, by_id: str | None, membership: str = "leave") -> None:
        """A member left, was kicked or banned (``by`` someone else), or an invite was revoked."""
        mroom = _live_portal(Room.objects.filter(id=room_id).first())
        user = User.objects.filter(id=user_id).first()
        by = User.objects.filter(id=by_id).first() if by_id else user
        if mroom is None or user is None or by is None or by.is_remote:
            return
        target = mxid_of(user)
        if membership == "leave" and membership_of(mroom, target) in (None, "leave", "ban"):
            return
        extra = [server_name_of(target)] if user.is_remote else []
        _send(mroom.room_id, "m.room.member", mxid_of(by), {"membership": membership}, state_key=target,
              extra_destinations=extra)

    def member_unbanned(self, room_id: str, user_id: str, by_id: str) -> None:
        """A ban lifted by a local user: ``m.room.member`` leave of the banned user (Matrix's unban)."""
        mroom = _live_portal(Room.objects.filter(id=room_id).first())
        user = User.objects.filter(id=user_id).first()
        by = User.objects.filter(id=by_id, is_remote=False).first()
        if mroom is None or user is None or by is None or membership_of(mroom, mxid_of(user)) != "ban":
            return
        target = mxid_of(user)
        extra = [server_name_of(target)] if user.is_remote else []
        _send(mroom.room_id, "m.room.member", mxid_of(by), {"membership": "leave"}, state_key=target,
              extra_destinations=extra)

    def message_sent(self, message_id: str) -> None:
        """A local user's message in a portal: ``m.room.message`` (markdown body + sanitized HTML)."""
        bridge_message(message_id)

    def message_edited(self, message_id: str, by_id: str) -> None:
        """A bridged message's text changed: an ``m.replace`` of its event (by its own author only:
        Matrix ignores replacements by anyone else)."""
        msg = Message.objects.filter(id=message_id).select_related("user", "room", "file").first()
        original = event_of(message_id)
        if msg is None or original is None or msg.user is None or msg.user.is_remote or msg.user_id != by_id:
            return
        mroom = _live_portal(msg.room)
        if mroom is not None:
            html, mentions = mentions_of(msg)
            content = convert.edit_content(original, msg.text, html, mentions=mentions)
            file = media.file_content_of(msg)
            if file is not None:  # the new content replaces the whole message: keep the file in it
                content["m.new_content"] = {**file, "m.mentions": content["m.new_content"].get("m.mentions", {})}
            _send(mroom.room_id, "m.room.message", mxid_of(msg.user), content)

    def reaction_changed(self, message_id: str, user_id: str, emoji_code: str, added: bool) -> None:
        """A local user's reaction on a bridged message: ``m.reaction`` (added) or its redaction (removed)."""
        user = User.objects.filter(id=user_id, is_remote=False).first()
        msg = Message.objects.filter(id=message_id).select_related("room").first()
        target = event_of(message_id)
        mroom = _live_portal(msg.room) if msg is not None else None
        if user is None or target is None or mroom is None:
            return
        if added:
            event = _send(mroom.room_id, "m.reaction", mxid_of(user),
                          convert.reaction_content(target, emoji.key_for_shortcode(emoji_code)))
            if event is not None:
                BridgedReaction.objects.get_or_create(event_id=event.event_id, defaults={
                    "message_id": message_id, "user_id": user_id, "emoji": emoji_code})
            return
        for link in BridgedReaction.objects.filter(message_id=message_id, user_id=user_id, emoji=emoji_code):
            if _send(mroom.room_id, "m.room.redaction", mxid_of(user), {}, redacts=link.event_id) is not None:
                link.delete()

    def typing_changed(self, room_id: str, username: str, typing: bool) -> None:
        """A local user typing in a portal: ``m.typing`` to the room's other servers (not with
        ``CONCORD_FEDERATION_TYPING`` off)."""
        if not config.edus_enabled("typing"):
            return
        mroom = _live_portal(Room.objects.filter(id=room_id).first())
        user = User.objects.filter(username=username, is_remote=False).first()
        if mroom is None or user is None:
            return
        enqueue_edu(joined_servers(mroom), "m.typing", {"room_id": mroom.room_id, "user_id": mxid_of(user),
                                                        "typing": typing})

    def read_marked(self, room_id: str, user_id: str, at_ms: int) -> None:
        """A local user read a portal up to ``at_ms``: ``m.receipt`` (``m.read``) of the latest bridged
        message by then (not with ``CONCORD_FEDERATION_RECEIPTS`` off)."""
        if not config.edus_enabled("receipts"):
            return
        room = Room.objects.filter(id=room_id).first()
        mroom = _live_portal(room)
        user = User.objects.filter(id=user_id, is_remote=False).first()
        if mroom is None or user is None:
            return
        newest = (Message.objects.filter(room_id=room_id, created_at__lte=convert.sent_at(at_ms),
                                         id__in=BridgedMessage.objects.values("message_id"))
                  .order_by("-created_at").values_list("id", flat=True).first())
        latest = event_of(newest)
        if latest is None:
            return
        enqueue_edu(joined_servers(mroom), "m.receipt", {mroom.room_id: {"m.read": {mxid_of(user): {
            "event_ids": [latest], "data": {"ts": at_ms}}}}})

    def presence_changed(self, user_id: str) -> None:
        """A local user's status changed: ``m.presence`` to every server sharing a portal with them
        (online; away and busy as ``unavailable``; offline), not with ``CONCORD_FEDERATION_PRESENCE`` off."""
        if not config.edus_enabled("presence"):
            return
        user = User.objects.filter(id=user_id, is_remote=False).first()
        if user is None:
            return
        servers: set[str] = set()
        rooms = Membership.objects.filter(user=user, state=Membership.JOINED).values("room_id")
        for mroom in MatrixRoom.objects.filter(chat_room_id__in=rooms).exclude(current_state=[]):
            servers.update(joined_servers(mroom))
        servers.discard(config.server_name())
        if servers:
            enqueue_edu(sorted(servers), "m.presence", {"push": [convert.presence_content(
                mxid_of(user), user.status, user.status_text)]})

    def message_deleted(self, message_id: str, by_id: str) -> None:
        """A bridged message was deleted: ``m.room.redaction``."""
        event_id = event_of(message_id)
        msg = Message.objects.filter(id=message_id).select_related("room").first()
        by = User.objects.filter(id=by_id, is_remote=False).first()
        if event_id is None or msg is None or by is None:
            return
        mroom = _live_portal(msg.room)
        if mroom is not None:
            _send(mroom.room_id, "m.room.redaction", mxid_of(by), {}, redacts=event_id)

    def room_setting_changed(self, room_id: str, field: str, by_id: str) -> None:
        """Name, topic, type, read-only or history visibility changed by a local user:
        ``m.room.name`` / ``m.room.topic`` / join rules / power levels (``events_default``) /
        ``m.room.history_visibility``."""
        room = Room.objects.filter(id=room_id).first()
        by = User.objects.filter(id=by_id, is_remote=False).first()
        mroom = _live_portal(room)
        if room is None or mroom is None or by is None:
            return
        if field == "name":
            _send(mroom.room_id, "m.room.name", mxid_of(by), {"name": room.fname or room.name}, state_key="")
        elif field == "topic":
            _send(mroom.room_id, "m.room.topic", mxid_of(by), {"topic": room.topic}, state_key="")
        elif field in ("read_only", "broadcast"):
            read_only = room.read_only or room.broadcast
            power = state_content(mroom, ("m.room.power_levels", "")) or {}
            if convert.is_read_only(power) != read_only:
                update_power_levels(mroom, mxid_of(by), read_only=read_only)
        elif field == "history_visibility":
            send_state_as_local(mroom, mxid_of(by), "m.room.history_visibility",
                                {"history_visibility": room.history_visibility})
        elif field == "type":
            _send(mroom.room_id, "m.room.join_rules", mxid_of(by),
                  {"join_rule": convert.join_rule_for(room.type == Room.CHANNEL)}, state_key="")

    def room_role_changed(self, room_id: str, user_id: str, by_id: str) -> None:
        """A member's roles or mute changed: owner -> power 100, moderator -> 50, neither -> 0,
        muted -> below the message level (:func:`federation.bridge.convert.member_level`)."""
        mroom = _live_portal(Room.objects.filter(id=room_id).first())
        sub = Membership.objects.filter(room_id=room_id, user_id=user_id).select_related("user").first()
        by = User.objects.filter(id=by_id, is_remote=False).first()
        if mroom is None or sub is None or by is None:
            return
        power = state_content(mroom, ("m.room.power_levels", "")) or {}
        update_power_levels(mroom, mxid_of(by), {mxid_of(sub.user): convert.member_level(power, sub.roles,
                                                                                          sub.muted)})

    def history_page_short(self, room_id: str) -> bool:
        """Scroll back past what we hold: fetch older history of the portal from another server."""
        room = Room.objects.filter(id=room_id).first()
        mroom = portal_of(room) if room is not None else None
        return mroom is not None and backfill_older(mroom)
