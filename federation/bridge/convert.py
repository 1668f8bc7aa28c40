"""Pure mappings between chat values and Matrix event content (no database, no Django).

The mapping
    ============================  ===========================================================
    chat                          Matrix
    ============================  ===========================================================
    local user ``alice``          ``@alice:<CONCORD_SERVER_NAME>``
    puppet ``@bob:example.org``   ``@bob:example.org``
    public channel (``c``)        ``join_rule: public``, alias ``#name:<server>``, published
    private group (``p``) / DM    ``join_rule: invite`` (a 1:1 DM invites with ``is_direct``)
    owner / moderator / member    power level 100 / 50 / 0
    message (markdown source)     ``m.room.message`` ``m.text``: ``body`` = the markdown,
                                  ``formatted_body`` = the sanitized HTML
                                  (``org.matrix.custom.html``); a thread reply carries
                                  ``m.relates_to`` ``rel_type: m.thread``
    room name / topic             ``m.room.name`` / ``m.room.topic``
    ============================  ===========================================================

Inbound text is taken from ``body`` (the plain/markdown form every client sends) and rendered and
sanitized by the chat's own markdown renderer; remote HTML is never stored as is.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

HTML_FORMAT = "org.matrix.custom.html"
MAX_TEXT = 20000
MAX_TOPIC = 10000
FILE_MSGTYPES = frozenset({"m.image", "m.file", "m.video", "m.audio"})

OWNER_LEVEL = 100
MODERATOR_LEVEL = 50
MEMBER_LEVEL = 0


def message_content(text: str, html: str = "", *, thread_root_event_id: str | None = None) -> dict[str, Any]:
    """A chat message -> ``m.room.message`` content (``m.text``; HTML only when the chat rendered some)."""
    content: dict[str, Any] = {"msgtype": "m.text", "body": text}
    if html:
        content["format"] = HTML_FORMAT
        content["formatted_body"] = html
    if thread_root_event_id:
        content["m.relates_to"] = {"rel_type": "m.thread", "event_id": thread_root_event_id}
    return content


@dataclass(frozen=True)
class IncomingMessage:
    """What the chat makes of an ``m.room.message``: its text and what it relates to."""

    text: str
    thread_root_event_id: str | None = None
    replaces_event_id: str | None = None


def incoming_message(content: Mapping[str, Any], sender_name: str) -> IncomingMessage | None:
    """``m.room.message`` content -> chat text (None: nothing to show, e.g. no ``body``)."""
    body = content.get("body")
    if not isinstance(body, str):
        return None
    text = body.replace("\x00", "")
    msgtype = content.get("msgtype")
    if msgtype == "m.emote":
        text = f"_{sender_name} {text}_"
    elif msgtype in FILE_MSGTYPES:
        url = content.get("url")
        text = f"{text} ({url})" if isinstance(url, str) else text
    rel = content.get("m.relates_to")
    thread = replaces = None
    if isinstance(rel, Mapping) and isinstance(rel.get("event_id"), str):
        if rel.get("rel_type") == "m.thread":
            thread = rel["event_id"]
        elif rel.get("rel_type") == "m.replace":
            replaces = rel["event_id"]
    return IncomingMessage(text[:MAX_TEXT], thread, replaces)


def power_level_for_roles(roles: list[str] | tuple[str, ...]) -> int:
    """A member's chat roles -> their power level (owner 100, moderator 50, else 0)."""
    if "owner" in roles:
        return OWNER_LEVEL
    if "moderator" in roles:
        return MODERATOR_LEVEL
    return MEMBER_LEVEL


def join_rule_for(is_public_channel: bool) -> str:
    """A public channel is ``public``; groups and DMs are ``invite``."""
    return "public" if is_public_channel else "invite"


def portal_name_base(name: str, matrix_room_id: str) -> str:
    """A chat handle for a remote room: its name with characters the chat does not allow replaced,
    or ``matrix-<id>`` when nothing usable is left (the caller makes it unique)."""
    base = re.sub(r"[^\w\-.]+", "-", name, flags=re.UNICODE).strip("-.")[:80]
    return base or "matrix-" + re.sub(r"[^\w]", "", matrix_room_id)[:12]


def sent_at(origin_server_ts: int, now: datetime | None = None) -> datetime:
    """When a remote event was sent, as the chat stores it: its ``origin_server_ts``, never in the future."""
    now = now or datetime.now(UTC)
    try:
        when = datetime.fromtimestamp(origin_server_ts / 1000, UTC)
    except (OverflowError, OSError, ValueError):
        return now
    return min(when, now)


def string_field(content: Mapping[str, Any], key: str) -> str | None:
    """``content[key]`` when it is a string, else None."""
    value = content.get(key)
    return value if isinstance(value, str) else None
