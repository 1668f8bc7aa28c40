"""Matrix -> chat: a table from event type to one small handler, fed by the event store.

:func:`on_persisted` is the listener the bridge registers with
:func:`federation.store.events.register_listener` (``FederationConfig.ready``). It runs after the
event's commit, for accepted events of other servers' users in rooms linked to a chat room,
whichever way they arrived: live (a transaction, a join or leave handshake) or from history
(backfill). Handlers run inside :func:`federation.hooks.applying_remote`, so the chat actions they
call do not echo the change back to Matrix, and (as the store runs every listener) inside a
savepoint: a handler that fails is logged and leaves nothing half-written.

History
    Backfilled events are from the past: only timeline handlers (:data:`TIMELINE`: messages, edits,
    reactions and redactions) apply them; state handlers (membership, name, topic) would turn today's chat
    state back into yesterday's, so they see live events only. Out-of-band events (an invite
    withdrawn in a room we are not in, see :mod:`federation.handlers.receive`) go to the member
    handler.

Idempotence
    The store may hand an event over twice (after a crash, see :mod:`federation.store.events`):
    messages and reactions are linked to their event (:class:`~federation.models.BridgedMessage`,
    :class:`~federation.models.BridgedReaction`) and skipped when already linked; an edit to the
    text a message already has changes nothing; memberships, names and topics are compared with the
    chat's before anything is written.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from django.db import transaction

from accounts.models import User
from chat.api_errors import ApiError
from federation.bridge import convert, emoji, remote_media
from federation.bridge.portals import matrix_room, portal_name
from federation.bridge.users import is_ours, local_user_for, may_federate, mxid_of, puppet_for, user_for_mxid
from federation.hooks import applying_remote
from federation.models import BridgedMessage, BridgedReaction, MatrixRoom
from federation.protocol.errors import InvalidIdentifier
from federation.protocol.events import Event
from federation.protocol.ids import UserId
from federation.store.events import Arrival, PersistedEvent, delivery_event_ids, delivery_memo
from federation.store.room_state import privileged_creators
from rooms.access import UNKNOWN_MEMBERSHIP, check_can_post
from rooms.actions.memberships import (
    do_add_member,
    do_ban,
    do_decline_invite,
    do_invite,
    do_kick,
    do_leave,
    do_set_muted,
    do_set_room_role,
    do_unban,
)
from rooms.actions.messages import (
    Post,
    do_delete_message,
    do_edit_message,
    do_send_message,
    do_send_messages_to_rooms,
    do_toggle_reaction,
)
from rooms.actions.rooms import do_change_room_setting, do_set_display_name
from rooms.models import Membership, Message, Room

log = logging.getLogger(__name__)

HISTORY_VISIBILITIES = frozenset(v for v, _ in Room.HISTORY_VISIBILITIES)


@dataclass(frozen=True)
class Incoming:
    """One event to mirror: the portal, its chat room, the event, the chat user who sent it and
    how it arrived (live, or from history)."""

    mroom: MatrixRoom
    room: Room
    event: Event
    sender: User
    arrival: Arrival = Arrival.LIVE


Handler = Callable[[Incoming], None]


def on_member(ev: Incoming) -> None:
    """``m.room.member``: join / invite / leave (own leave, decline or kick) / ban."""
    event, room = ev.event, ev.room
    state_key = event.state_key or ""
    try:
        UserId.parse(state_key)
    except InvalidIdentifier:
        log.info("ignored the member event %s: its state key is not a user ID", event.event_id)
        return
    displayname = convert.string_field(event.content, "displayname")
    target = (local_user_for(state_key) if is_ours(state_key)
              else puppet_for(state_key, fetch_profile=displayname is None, displayname=displayname))
    if target is None:
        return
    if target.is_remote and event.sender == event.state_key:  # their own member event: their profile
        remote_media.queue_avatar(target, event.content.get("avatar_url"))
    sub = Membership.objects.filter(room=room, user=target).first()
    m = event.membership
    if m == "join":
        if sub is None or sub.state != Membership.JOINED:
            do_add_member(room, target, system_message=room.type != Room.DIRECT)
    elif m == "invite":
        if not target.is_remote and (sub is None or sub.state == Membership.LEFT):
            if not target.is_active or not may_federate(target):
                log.info("ignored the invite %s: %s may not take part in federated rooms", event.event_id,
                         target.username)
                return
            do_invite(room, target, by=ev.sender)
    elif m == "ban":
        if sub is None or not sub.banned:
            do_ban(room, target, by=ev.sender)
    elif m == "leave":
        if sub is not None and sub.banned and event.sender != event.state_key:
            do_unban(room, target, by=ev.sender)  # Matrix's unban: a leave of the banned user by another
            return
        if sub is None or sub.state == Membership.LEFT:
            return
        if sub.state == Membership.INVITED:  # declined (by us, from elsewhere) or withdrawn by them
            do_decline_invite(sub, by=ev.sender if event.sender != event.state_key else None)
        elif event.sender == event.state_key:
            # Matrix has no "last owner" rule: the leave happened, the chat follows.
            do_leave(room, target, enforce_last_owner=False)
        else:
            do_kick(room, target, by=ev.sender, enforce_last_owner=False)


def _message_of(event_id: str | None, room: Room) -> Message | None:
    """The chat message bridged from (or to) ``event_id`` in this room, if any."""
    link = BridgedMessage.objects.filter(event_id=event_id).first() if event_id else None
    return Message.objects.filter(id=link.message_id, room=room).first() if link is not None else None


def _already_bridged(event_id: str) -> bool:
    """Whether ``event_id`` has its chat message already. Read once per delivery for all its events
    (the memo is emptied when a listener call fails, and then read again); each event is delivered
    to one listener call at a time, so no other writer links an event of this delivery meanwhile."""
    memo = delivery_memo()
    ids = delivery_event_ids()
    if event_id not in ids:
        return BridgedMessage.objects.filter(event_id=event_id).exists()
    linked = memo.get("bridged")
    if linked is None:
        linked = memo["bridged"] = set(BridgedMessage.objects.filter(event_id__in=ids)
                                       .values_list("event_id", flat=True))
    return event_id in linked


@dataclass(frozen=True)
class _NewMessage:
    """An ``m.room.message`` that passed :func:`on_message`'s checks: what to post (or, with
    ``incoming.replaces_event_id``, the edit to apply)."""

    ev: Incoming
    incoming: convert.IncomingMessage
    mentions: list[str]
    root: Message | None = None
    quoted: Message | None = None
    file: convert.IncomingFile | None = None

    @property
    def plain(self) -> bool:
        """A post with no thread, quote or file (what :func:`rooms.actions.messages.do_send_messages` takes)."""
        return not self.incoming.replaces_event_id and self.root is None and self.quoted is None and self.file is None


def _new_message(ev: Incoming, before_lookups: Callable[[], None] = lambda: None) -> _NewMessage | None:
    """:func:`on_message`'s checks: None when there is nothing to do (the event is linked to a chat
    message already, shows no text, or the post check refuses the sender). ``before_lookups`` runs
    before the message's thread root or quoted message is looked up (a caller holding posts back
    writes them then)."""
    if _already_bridged(ev.event.event_id):
        return None
    incoming = convert.incoming_message(ev.event.content, ev.sender.display_name)
    if incoming is None or not incoming.text.strip():
        return None
    mentions = _mentioned_usernames(incoming)
    if incoming.replaces_event_id:
        return _NewMessage(ev, incoming, mentions)
    if incoming.thread_root_event_id or incoming.reply_to_event_id:
        before_lookups()
    root = _message_of(incoming.thread_root_event_id, ev.room)
    quoted = _message_of(incoming.reply_to_event_id, ev.room)
    file = convert.incoming_file(ev.event.content)
    if ev.arrival is Arrival.LIVE:  # the chat's post check too (muted, banned, not joined), except read-only:
        memo = delivery_memo()  # Matrix's power levels already decided who may write (read-only follows them)
        key = ("membership", ev.room.id, ev.sender.id)
        try:
            memo[key] = check_can_post(ev.sender, ev.room, memo.get(key, UNKNOWN_MEMBERSHIP), read_only_decided=True)
        except ApiError as exc:
            log.info("refused the message %s by %s: %s", ev.event.event_id, ev.event.sender, exc)
            return None
    return _NewMessage(ev, incoming, mentions, root, quoted, file)


def on_message(ev: Incoming) -> None:
    """``m.room.message``: a chat message with the event's time (thread replies in their thread,
    rich replies as quotes); an ``m.replace`` edits the message it replaces."""
    new = _new_message(ev)
    if new is not None:
        _post_one(new)


def _post_one(new: _NewMessage) -> None:
    """Apply the edit, or post the message (in its thread, with its quote or file) and link it."""
    ev = new.ev
    if new.incoming.replaces_event_id:
        _edit(ev, new.incoming.replaces_event_id, new.incoming.text, new.mentions)
        return
    file, incoming, root, quoted = new.file, new.incoming, new.root, new.quoted
    msg = do_send_message(ev.sender, ev.room, file.caption if file is not None else incoming.text,
                          attachments=[remote_media.placeholder_attachment(file)] if file is not None else None,
                          thread_root_id=root.id if root is not None else None,
                          quoted_id=quoted.id if quoted is not None else None, skip_post_check=True,
                          created_at=convert.sent_at(ev.event.origin_server_ts), mentions=new.mentions)
    # Checked absent above, and the store delivers an event to one listener call at a time: a link
    # there after all fails the insert, rolling back the message too (the event is redelivered).
    BridgedMessage.objects.create(event_id=ev.event.event_id, message_id=msg.id)
    if file is not None:
        remote_media.queue_file(msg, ev.event.event_id, file)


def _post_plain(news: list[_NewMessage]) -> None:
    """Post plain messages (of any chat rooms) together (:func:`do_send_messages_to_rooms`) and
    link each to its event: what :func:`on_message` does for each, in order, in fewer writes."""
    if not news:
        return
    by_room: dict[str, list[_NewMessage]] = {}
    for new in news:
        by_room.setdefault(new.ev.room.id, []).append(new)
    groups = list(by_room.values())
    try:
        posted = do_send_messages_to_rooms([(group[0].ev.room, [
            Post(n.ev.sender, n.incoming.text, convert.sent_at(n.ev.event.origin_server_ts), tuple(n.mentions))
            for n in group]) for group in groups])
    except ApiError:  # a text the chat refuses (e.g. too long): raised before any write; each alone
        for new in news:
            try:
                with transaction.atomic():
                    _post_one(new)
            except ApiError as exc:  # as the store logs a listener's failure on one event
                log.info("the message %s was not bridged: %s", new.ev.event.event_id, exc)
        return
    BridgedMessage.objects.bulk_create([BridgedMessage(event_id=n.ev.event.event_id, message_id=m.id)
                                        for group, msgs in zip(groups, posted, strict=True)
                                        for n, m in zip(group, msgs, strict=True)])


def _mentioned_usernames(incoming: convert.IncomingMessage) -> list[str]:
    """``m.mentions`` as chat usernames: our users by localpart, remote ones by Matrix ID (puppets);
    ``room`` as ``all`` (the chat still checks the sender may mention everyone)."""
    names = []
    for mxid in incoming.mentioned_user_ids:
        local = local_user_for(mxid) if is_ours(mxid) else None
        names.append(local.username if local is not None else mxid)
    return names + (["all"] if incoming.mentions_room else [])


def _edit(ev: Incoming, original_event_id: str, text: str, mentions: list[str]) -> None:
    """An edit from Matrix: applied only by the original's own sender (the spec's rule for
    replacements; anyone else's is ignored), keeping the edit history."""
    msg = _message_of(original_event_id, ev.room)
    if msg is None or msg.deleted_at or msg.user_id != ev.sender.id:
        log.info("ignored the edit %s of %s by %s: unknown message or not its sender", ev.event.event_id,
                 original_event_id, ev.event.sender)
        return
    do_edit_message(ev.sender, msg, text, mentions=mentions)


def on_reaction(ev: Incoming) -> None:
    """``m.reaction`` (``m.annotation``): the sender's chat reaction on the message, by shortcode."""
    if BridgedReaction.objects.filter(event_id=ev.event.event_id).exists():
        return
    reaction = convert.incoming_reaction(ev.event.content)
    msg = _message_of(reaction.target_event_id, ev.room) if reaction is not None else None
    if reaction is None or msg is None or msg.deleted_at:
        log.info("ignored the reaction %s: malformed, or to an unknown message", ev.event.event_id)
        return
    code = emoji.shortcode_for_key(reaction.key)
    try:
        do_toggle_reaction(ev.sender, msg, code, should_react=True)
    except ApiError as exc:
        log.info("ignored the reaction %s: %s", ev.event.event_id, exc)
        return
    BridgedReaction.objects.get_or_create(event_id=ev.event.event_id, defaults={
        "message_id": msg.id, "user_id": ev.sender.id, "emoji": code})


def on_redaction(ev: Incoming) -> None:
    """``m.room.redaction`` of a bridged message (the chat message is deleted) or reaction (removed)."""
    target_id = ev.event.redacts or ev.event.content.get("redacts")
    reaction = BridgedReaction.objects.filter(event_id=target_id).first() if isinstance(target_id, str) else None
    if reaction is not None:
        msg = Message.objects.filter(id=reaction.message_id, room=ev.room).first()
        if reaction.user_id != ev.sender.id:
            log.info("ignored the redaction %s of another user's reaction", ev.event.event_id)
            return
        if msg is not None and not msg.deleted_at:
            with contextlib.suppress(ApiError):
                do_toggle_reaction(ev.sender, msg, reaction.emoji, should_react=False)
        reaction.delete()
        return
    msg = _message_of(target_id if isinstance(target_id, str) else None, ev.room)
    if msg is not None and not msg.deleted_at:
        with contextlib.suppress(ApiError):
            do_delete_message(ev.sender, msg)


def on_name(ev: Incoming) -> None:
    """``m.room.name``: the chat room's handle (made unique) and its shown name."""
    name = convert.string_field(ev.event.content, "name")
    room = ev.room
    if ev.event.state_key != "" or room.type == Room.DIRECT or not name or not name.strip() or name == room.fname:
        return
    handle = portal_name(name, ev.mroom.room_id, room)
    if handle != room.name:
        do_change_room_setting(room, "name", handle, by=ev.sender)
    do_set_display_name(room, name)


def on_power_levels(ev: Incoming) -> None:
    """``m.room.power_levels``: every joined member's chat role follows their level (thresholds, see
    :func:`federation.bridge.convert.role_for_level`; the last owner is kept, the chat's rule), a
    member below the message level is muted (:func:`~federation.bridge.convert.is_muted`), and the
    room is read-only while plain members may not send messages."""
    if ev.event.state_key != "":
        return
    power, room = ev.event.content, ev.room
    creators = privileged_creators(ev.mroom)
    read_only = convert.is_read_only(power)
    if read_only != (room.read_only or room.broadcast):
        if not read_only and room.broadcast:
            room = do_change_room_setting(room, "broadcast", False, by=ev.sender)
        room = do_change_room_setting(room, "read_only", read_only, by=ev.sender)
    for sub in Membership.objects.filter(room=room, state=Membership.JOINED).select_related("user"):
        level = convert.user_level(power, mxid_of(sub.user), creators)
        want = convert.role_for_level(power, level)
        for role in ("owner", "moderator"):
            if (want == role) != (role in sub.roles):
                try:
                    do_set_room_role(room, sub.user, role, want == role, by=ev.sender)
                except ApiError as exc:
                    log.info("power levels %s: %s keeps %s: %s", ev.event.event_id, sub.user.username, role, exc)
        muted = convert.is_muted(power, level)
        if muted != sub.muted:
            do_set_muted(room, sub.user, muted, by=ev.sender)


def on_topic(ev: Incoming) -> None:
    """``m.room.topic``."""
    topic = convert.string_field(ev.event.content, "topic")
    if ev.event.state_key == "" and topic is not None and topic != ev.room.topic:
        do_change_room_setting(ev.room, "topic", topic[:convert.MAX_TOPIC], by=ev.sender)


def on_history_visibility(ev: Incoming) -> None:
    """``m.room.history_visibility``: the chat room's setting (an unknown value is ignored)."""
    value = convert.string_field(ev.event.content, "history_visibility")
    if ev.event.state_key == "" and value in HISTORY_VISIBILITIES and value != ev.room.history_visibility:
        do_change_room_setting(ev.room, "history_visibility", value, by=ev.sender)


INCOMING: dict[str, Handler] = {
    "m.room.member": on_member,
    "m.room.message": on_message,
    "m.room.redaction": on_redaction,
    "m.reaction": on_reaction,
    "m.room.name": on_name,
    "m.room.topic": on_topic,
    "m.room.power_levels": on_power_levels,
    "m.room.history_visibility": on_history_visibility,
}
TIMELINE = frozenset({"m.room.message", "m.room.redaction", "m.reaction"})


def wants(p: PersistedEvent) -> bool:
    """The listener's filter: accepted live or history events of other servers with a handler."""
    if not p.accepted or p.arrival is Arrival.OUTLIER or p.event.type not in INCOMING:
        return False
    if p.arrival is Arrival.OUT_OF_BAND:  # an invite withdrawn in a room we are not in
        return p.event.type == "m.room.member"
    if p.arrival is Arrival.HISTORY and p.event.type not in TIMELINE:
        return False
    return not is_ours(p.event.sender)


def _incoming(p: PersistedEvent) -> Incoming | None:
    """The event with its portal and sender, or None when it is not mirrored (not wanted, or no
    portal). Call inside :func:`federation.hooks.applying_remote` (the sender may be created)."""
    if not wants(p):
        return None
    # Consecutive messages of one delivery (a transaction's burst) share the portal, the senders
    # and their memberships (see delivery_memo): a message changes none of them. Any other event
    # may (a name, a member, power levels), so it starts afresh.
    memo = delivery_memo()
    if p.event.type != "m.room.message":
        memo.clear()
    mroom = memo.get(("portal", p.room_id)) or matrix_room(p.room_id)
    if mroom is None or mroom.chat_room is None:
        return None
    memo[("portal", p.room_id)] = mroom
    sender = memo.get(("user", p.event.sender)) or user_for_mxid(p.event.sender, fetch_profile=False)
    memo[("user", p.event.sender)] = sender
    return Incoming(mroom, mroom.chat_room, p.event, sender, p.arrival)


def on_persisted(p: PersistedEvent) -> None:
    """Mirror one persisted event in the linked chat room (no-op without a portal)."""
    # The store runs each listener call in a savepoint and logs what it raises: a handler that
    # fails leaves nothing half-written and does not stop the room's other events.
    with applying_remote():
        ev = _incoming(p)
        if ev is not None:
            INCOMING[p.event.type](ev)


def _read_senders(events: Sequence[PersistedEvent]) -> None:
    """Read the remote senders of the messages among ``events`` (their puppets) and their chat
    memberships into the delivery memo at once, a query for all instead of two per sender: the
    rows :func:`_incoming` and :func:`_new_message` would read for each (a sender without a
    membership is recorded as having none; a puppet not created yet is left to them)."""
    memo = delivery_memo()
    by_room: dict[str, set[str]] = {}
    for p in events:
        if p.event.type == "m.room.message" and wants(p) and ("user", p.event.sender) not in memo:
            by_room.setdefault(p.room_id, set()).add(p.event.sender)
    mxids = set().union(*by_room.values()) if by_room else set()
    canonical = set()
    for mxid in mxids:
        with contextlib.suppress(InvalidIdentifier):
            if str(UserId.parse(mxid)) == mxid:  # the name user_for_mxid looks up
                canonical.add(mxid)
    if not canonical:
        return
    users = {u.username: u for u in User.objects.filter(username__in=canonical, is_remote=True)}
    for mxid, user in users.items():
        memo[("user", mxid)] = user
    unread = [room_id for room_id in by_room if ("portal", room_id) not in memo]
    for mroom in (MatrixRoom.objects.filter(room_id__in=unread).select_related("chat_room")
                  .defer("current_state", "forward_extremities") if unread else ()):
        memo[("portal", mroom.room_id)] = mroom  # the row matrix_room() reads, for all the rooms at once
    portals = {}
    for room_id, senders in by_room.items():
        mroom = memo.get(("portal", room_id))
        if mroom is not None and mroom.chat_room is not None:
            portals[mroom.chat_room.id] = [users[m] for m in senders if m in users]
    if not any(portals.values()):
        return
    subs = {(sub.room_id, sub.user_id): sub for sub in Membership.objects.filter(
        room_id__in=portals, user__in={u.id for found in portals.values() for u in found})}
    for chat_room_id, found in portals.items():
        for user in found:
            memo[("membership", chat_room_id, user.id)] = subs.get((chat_room_id, user.id))


def batchable(p: PersistedEvent) -> bool:
    """The events the store may hand to :func:`on_persisted_many` together: messages. Others (a
    member, power levels...) go to :func:`on_persisted` one at a time, each in its own savepoint,
    so that one failing cannot undo another's writes."""
    return p.event.type == "m.room.message"


def on_persisted_many(events: Sequence[PersistedEvent]) -> None:
    """:func:`on_persisted` for consecutive events of a delivery, in order, with each run of plain
    messages (to any chat rooms: each room's in order) posted together (:func:`_post_plain`). A
    plain message is held back until the run ends: before any other event, and before a thread
    root or quoted message is looked up (it may be one held back), so every handler sees the
    chat as one event at a time would have left it. The store calls this in one savepoint and, if
    it raises, :func:`on_persisted` for each event instead."""
    held: list[_NewMessage] = []
    _read_senders(events)

    def flush() -> None:
        _post_plain(held)
        held.clear()

    with applying_remote():
        for p in events:
            ev = _incoming(p)
            if ev is None:
                continue
            if p.event.type != "m.room.message":
                flush()
                INCOMING[p.event.type](ev)
                continue
            new = _new_message(ev, before_lookups=flush)
            if new is None:
                continue
            if new.plain:
                held.append(new)
                continue
            flush()
            _post_one(new)
        flush()
