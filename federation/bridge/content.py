"""What a chat message becomes as Matrix content, read from the database (the pure part is
:mod:`federation.bridge.convert`): its bridged event, mention pills and ``m.mentions``, thread and
quote relations, and the file it carries. Used for live messages (:mod:`~federation.bridge.outgoing`)
and for the history a room brings when it first federates (:mod:`~federation.bridge.portals`)."""

from __future__ import annotations

from typing import Any

from accounts.models import User
from federation.bridge import convert, media
from federation.bridge.users import mxid_of
from federation.models import BridgedMessage
from rooms.models import Mention, Message


def event_of(message_id: str | None) -> str | None:
    """The Matrix event of a bridged chat message (its first: a message has one), if any."""
    if not message_id:
        return None
    return BridgedMessage.objects.filter(message_id=message_id).order_by("created_at").values_list(
        "event_id", flat=True).first()


def mentions_of(msg: Message) -> tuple[str, dict[str, Any]]:
    """The message's HTML with mention pills, and its ``m.mentions``."""
    users = list(User.objects.filter(id__in=Mention.objects.filter(message=msg).values("user_id")))
    mxids = {u.username.lstrip("@"): mxid_of(u) for u in users}  # as the HTML names them (no "@")
    return (convert.matrix_html(msg.html, mxids) if msg.html else "",
            convert.mentions_content(list(mxids.values()), room=bool(msg.mentions_all or msg.mentions_here)))


def message_content(msg: Message) -> dict[str, Any]:
    """The ``m.room.message`` content of a chat message: markdown body and sanitized HTML, thread
    and reply relations to bridged events, mentions; a file message carries the file, its caption
    as body."""
    html, mentions = mentions_of(msg)
    content = convert.message_content(msg.text, html, thread_root_event_id=event_of(msg.thread_root_id),
                                      reply_to_event_id=event_of(msg.quoted_id), mentions=mentions)
    file = media.file_content_of(msg)
    if file is not None:  # the file, its caption as body; the same relations and mentions
        content = {**file, **{k: v for k, v in content.items() if k in ("m.relates_to", "m.mentions")}}
    return content
