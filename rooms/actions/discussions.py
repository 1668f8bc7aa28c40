"""Discussions (Rocket.Chat's ``rooms.createDiscussion``): a room of its own hanging off a parent room.

A discussion is an ordinary channel or private group (members, messages, counters, the sidebar
through the member's subscription) with ``Room.parent`` set. The parent shows one system message
``discussion-created`` pointing at it (``drid``); that message's ``dcount``/``dlm`` are read from
the discussion when serialized (:func:`rooms.serialization.message_json`), so a post in the
discussion writes nothing in the parent, where Rocket.Chat rewrites the parent's message each time.

Discussions stay on this server: a parent linked to Matrix refuses them (Rocket.Chat hides the
action in federated rooms; Matrix has no discussion concept the other servers would show).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.db.models import F

from accounts.serialization import avatar_url
from chat.api_errors import ApiError
from chat.ids import random_id
from rooms.actions.memberships import do_add_member
from rooms.actions.messages import do_send_message
from rooms.events import LiveEvent, send_to_room
from rooms.models import Message, Room
from rooms.serialization import is_federated, iso, message_json

if TYPE_CHECKING:
    from accounts.models import User

DISCUSSION_CREATED = "discussion-created"
FEDERATED_REFUSAL = "Discussions are not available in federated rooms: they would not reach the other Matrix servers"


def quoted_attachment(msg: Message) -> dict[str, Any]:
    """The attachment that shows ``msg`` inside another message (Rocket.Chat's embedded message)."""
    att: dict[str, Any] = {"text": "" if msg.deleted_at else msg.text, "ts": iso(msg.created_at),
                           "message_link": f"/room/{msg.room_id}?msg={msg.id}"}
    if msg.user is not None:
        att["author_name"] = msg.user.username
        att["author_icon"] = avatar_url(msg.user)
    if msg.attachments:
        att["attachments"] = list(msg.attachments)
    return att


def check_can_start_discussion(parent: Room) -> None:
    """Raise unless a discussion may hang off ``parent``: not itself a discussion (Rocket.Chat's
    ``error-nested-discussion``) and not linked to Matrix."""
    if parent.parent_id:
        raise ApiError("Cannot create nested discussions", "error-nested-discussion")
    if is_federated(parent):
        raise ApiError(FEDERATED_REFUSAL, "error-action-not-allowed")


@transaction.atomic
def do_create_discussion(creator: User, parent: Room, name: str, *, users: Iterable[User] = (),
                         parent_message: Message | None = None, reply: str = "") -> Room:
    """Create the discussion ``name`` of ``parent`` and announce it there.

    Guarantees, all in one transaction: the discussion is a channel when the parent is one and a
    private group otherwise (a DM's discussion is private); its handle (``name``) is random and
    ``fname`` is ``name``; ``creator`` owns it and ``users`` (plus the author of
    ``parent_message``) are members, remote users excepted (a discussion is not federated); the
    parent gets one ``discussion-created`` system message pointing at it, carrying
    ``parent_message`` as an attachment when given (the discussion also starts with it); a
    non-empty ``reply`` is then posted in the discussion by ``creator``. The caller checked the
    creator may post in the parent and :func:`check_can_start_discussion`.
    """
    check_can_start_discussion(parent)
    room_type = Room.CHANNEL if parent.type == Room.CHANNEL else Room.GROUP
    room = Room.objects.create(type=room_type, name=random_id(), fname=name[:255], creator=creator, parent=parent,
                               topic=parent.display_name,
                               description=parent_message.text if parent_message is not None else "")
    do_add_member(room, creator, roles=["owner"], system_message=False)
    invited: dict[str, User] = {}
    if parent_message is not None and parent_message.user is not None:
        invited[parent_message.user.id] = parent_message.user
    for user in users:
        invited[user.id] = user
    for user in invited.values():
        if user != creator and not user.is_remote and user.is_active:
            do_add_member(room, user, by=creator, system_message=False)

    attachments = [quoted_attachment(parent_message)] if parent_message is not None else []
    if parent_message is not None:  # the discussion opens with the message it is about
        opening = Message.objects.create(room=room, user=creator, attachments=attachments)
        send_to_room(room.id, LiveEvent("message.new", room.id, message_json(opening, fresh_mentions=[])))
    announce_in = parent_message.room if parent_message is not None else parent
    notice = Message.objects.create(room=announce_in, user=creator, type=DISCUSSION_CREATED, text=name,
                                    discussion=room, attachments=attachments)
    Room.objects.filter(id=announce_in.id).update(last_message_at=notice.created_at,
                                                  message_count=F("message_count") + 1)
    notice.discussion = room
    send_to_room(announce_in.id, LiveEvent("message.new", announce_in.id, message_json(notice, fresh_mentions=[])))
    if reply.strip():
        do_send_message(creator, room, reply)
        room.refresh_from_db()
    return room
