"""Portals: chat rooms that exist on both sides (a :class:`~rooms.models.Room` linked to a
:class:`~federation.models.MatrixRoom`).

* :func:`ensure_portal` federates a chat room: the Matrix room is created with its joined local
  members and their power levels (public channels get ``join_rule: public``, the alias
  ``#name:<server>`` and a directory entry; groups and DMs are invite-only), its read-only and
  history visibility settings, and its latest earlier messages (:func:`_bring_history`).
* :func:`create_portal_room` makes the chat room for a Matrix room from elsewhere, through
  ``rooms.actions`` (no members yet; the callers add them).
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction

from accounts.models import User
from federation import config
from federation.bridge import convert
from federation.bridge.content import message_content
from federation.bridge.users import is_ours, mxid_of
from federation.handlers.room_events import EventRefused, create_room, send_event
from federation.models import BridgedMessage, MatrixRoom
from federation.store.room_state import privileged_creators, state_events
from rooms.actions.rooms import do_create_portal_room, free_room_name
from rooms.models import Membership, Message, Room

log = logging.getLogger(__name__)


def portal_of(room: Room) -> MatrixRoom | None:
    """The Matrix room linked to a chat room, if any."""
    return MatrixRoom.objects.filter(chat_room=room).first()


def matrix_room(room_id: str) -> MatrixRoom | None:
    """A Matrix room we hold, with its chat room loaded (its state and extremities only when
    read: a big room's current state is a long list, and most callers need the chat room only)."""
    return MatrixRoom.objects.filter(room_id=room_id).select_related("chat_room").defer(
        "current_state", "forward_extremities").first()


def ensure_portal(room: Room, *, version: str | None = None, by: User | None = None) -> MatrixRoom:
    """The Matrix room of a chat room, created (with its joined local members) when missing."""
    existing = portal_of(room)
    if existing is not None:
        return existing
    with transaction.atomic():
        Room.objects.select_for_update().filter(id=room.id).first()
        existing = MatrixRoom.objects.filter(chat_room=room).first()
        if existing is not None:
            return existing
        members = list(Membership.objects.filter(room=room, state=Membership.JOINED, user__is_remote=False)
                       .select_related("user").order_by("joined_at"))
        creator = room.creator if room.creator is not None and not room.creator.is_remote else (
            by if by is not None else (members[0].user if members else None))
        if creator is None:
            raise ValueError("a room needs a local member to be federated")
        public = room.type == Room.CHANNEL
        me = config.server_name()
        mroom = create_room(mxid_of(creator), version=version or config.room_version_default(),
                            join_rule=convert.join_rule_for(public),
                            name=room.fname or room.name if room.type != Room.DIRECT else "", topic=room.topic,
                            chat_room_id=room.id, alias=f"#{room.name}:{me}" if public and room.name else None,
                            published=public, history_visibility=room.history_visibility)
        pl_users: dict[str, int] = {}
        for sub in members:
            if sub.user_id == creator.id:
                continue
            member = mxid_of(sub.user)
            if not public:  # an invite-only room: the creator lets each member in first
                send_event(mroom.room_id, "m.room.member", mxid_of(creator), {"membership": "invite"},
                           state_key=member)
            send_event(mroom.room_id, "m.room.member", member, {"membership": "join",
                       "displayname": sub.user.display_name}, state_key=member)
            level = convert.member_level({}, sub.roles, sub.muted)  # the new room's defaults: 0 for all
            if level:
                pl_users[mxid_of(sub.user)] = level
        read_only = room.read_only or room.broadcast
        if pl_users or read_only:
            update_power_levels(mroom, mxid_of(creator), pl_users, read_only=read_only or None)
        _bring_history(mroom, room, {mxid_of(creator), *(mxid_of(sub.user) for sub in members)})
        mroom.refresh_from_db()
    return mroom


def _bring_history(mroom: MatrixRoom, room: Room, joined: set[str]) -> None:
    """The room's latest messages from before it federated (at most
    ``CONCORD_FEDERATION_HISTORY_ON_FEDERATE``) become its first Matrix messages, oldest first,
    each sent by its author with its original time, so joiners can backfill them. Messages of
    authors who are not joined members now (they left, or are remote) and system messages stay
    in the chat only: Matrix only lets a room's members send into it."""
    limit = config.history_on_federate()
    if limit <= 0:
        return
    recent = list(Message.objects.filter(room=room, type="", deleted_at__isnull=True)
                  .select_related("user", "file").order_by("-created_at", "-id")[:limit])
    for msg in reversed(recent):
        if msg.user is None or msg.user.is_remote or mxid_of(msg.user) not in joined:
            continue
        event = send_event(mroom.room_id, "m.room.message", mxid_of(msg.user), message_content(msg),
                           origin_server_ts=int(msg.created_at.timestamp() * 1000))
        BridgedMessage.objects.get_or_create(event_id=event.event_id, defaults={"message_id": msg.id})


def update_power_levels(mroom: MatrixRoom, sender: str, users: dict[str, int] | None = None, *,
                        read_only: bool | None = None) -> bool:
    """Send ``m.room.power_levels`` with ``users`` merged into the current ones and, when
    ``read_only`` is given, messages opened to members or kept for moderators
    (:func:`~federation.bridge.convert.with_read_only`).

    Sent through :func:`send_state_as_local` (another local member sends it when ``sender`` may
    not); returns whether it was sent.
    """
    state = state_events(mroom)
    pl = state.get(("m.room.power_levels", ""))
    content: dict[str, Any] = dict(pl.content) if pl is not None else {}
    if read_only is not None:
        content = convert.with_read_only(content, read_only)
    current = dict(content.get("users") or {})
    current.update(users or {})
    creators = privileged_creators(mroom, state)
    for creator in creators:  # v12: unlimited power, and never listed
        current.pop(creator, None)
    content["users"] = current
    return send_state_as_local(mroom, sender, "m.room.power_levels", content)


def send_state_as_local(mroom: MatrixRoom, sender: str, event_type: str, content: dict[str, Any]) -> bool:
    """Send a state event (state key ``""``) that the chat has already allowed.

    Matrix may need more power than the chat asked of the acting user (a moderator may mute in
    the chat; the power levels need 100 here). When ``sender`` may not send it, it goes out from
    the room's most powerful local member who may (logged), so both sides agree. Returns False
    (logged) when no local member may send it: the change then stays local.
    """
    state = state_events(mroom)
    pl = state.get(("m.room.power_levels", ""))
    power = pl.content if pl is not None else {}
    creators = privileged_creators(mroom, state)
    locals_by_power = sorted(
        (mxid for (t, mxid), ev in state.items()
         if t == "m.room.member" and ev.membership == "join" and is_ours(mxid) and mxid != sender),
        key=lambda mxid: -convert.user_level(power, mxid, creators))
    for candidate in [sender, *locals_by_power]:
        try:
            send_event(mroom.room_id, event_type, candidate, content, state_key="")
        except EventRefused as exc:
            log.info("%s of %s not sendable by %s: %s", event_type, mroom.room_id, candidate, exc)
            continue
        if candidate != sender:
            log.info("%s of %s sent by %s on behalf of %s", event_type, mroom.room_id, candidate, sender)
        return True
    log.warning("%s of %s: no local member may send it; the change stays local", event_type, mroom.room_id)
    return False


def portal_name(name: str, matrix_room_id: str, room: Room | None = None) -> str:
    """A free chat handle for a remote room called ``name`` (``room``: the portal being renamed)."""
    return free_room_name(convert.portal_name_base(name, matrix_room_id), for_room=room)


def create_portal_room(mroom: MatrixRoom, *, name: str, topic: str, join_rule: str, is_direct: bool,
                       creator: User, dm_users: list[User] | None = None) -> Room:
    """The chat room that mirrors a remote Matrix room (no members yet; callers add them)."""
    with transaction.atomic():
        room: Room | None = None
        if is_direct and dm_users:
            key = ",".join(sorted({u.id for u in dm_users}))
            room = Room.objects.filter(type=Room.DIRECT, dm_key=key).first()
            if room is not None and portal_of(room) is not None:
                key = ""
            if room is None or not key:
                room = do_create_portal_room(Room.DIRECT, creator=creator, dm_key=key)
        else:
            room_type = Room.CHANNEL if join_rule == "public" else Room.GROUP
            room = do_create_portal_room(room_type, creator=creator, name=portal_name(name, mroom.room_id),
                                         fname=name, topic=topic)
        MatrixRoom.objects.filter(room_id=mroom.room_id).update(chat_room=room)
        mroom.chat_room = room
    return room
