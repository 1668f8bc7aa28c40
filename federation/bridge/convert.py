"""Pure mappings between chat values and Matrix event content (no database, no Django).

The mapping
    ============================  ===========================================================
    chat                          Matrix
    ============================  ===========================================================
    local user ``alice``          ``@alice:<CONCORD_SERVER_NAME>``
    puppet ``@bob:example.org``   ``@bob:example.org``
    public channel (``c``)        ``join_rule: public``, alias ``#name:<server>``, published
    private group (``p``) / DM    ``join_rule: invite`` (a 1:1 DM invites with ``is_direct``)
    owner / moderator / member    power level 100 / 50 / 0 (incoming: by thresholds, see
                                  :func:`role_for_level`)
    muted member                  power level one below what members need to send
                                  ``m.room.message`` (:func:`muted_level`)
    read-only / broadcast room    ``events_default`` (and ``events.m.room.message`` when set)
                                  at the moderators' level; writable: back to ``users_default``
    message (markdown source)     ``m.room.message`` ``m.text``: ``body`` = the markdown,
                                  ``formatted_body`` = the sanitized HTML
                                  (``org.matrix.custom.html``); a thread reply carries
                                  ``m.relates_to`` ``rel_type: m.thread``
    mentions ``@bob`` / ``@all``  ``m.mentions`` ``user_ids`` / ``room``, and a matrix.to pill
                                  link in ``formatted_body``
    quote (reply)                 ``m.relates_to.m.in_reply_to.event_id`` (no fallback text,
                                  as current clients send; an incoming fallback is removed)
    edit                          ``m.room.message`` with ``m.new_content`` and
                                  ``m.relates_to`` ``rel_type: m.replace`` (body ``* text``)
    reaction ``:thumbsup:``       ``m.reaction`` ``m.annotation`` with ``key`` ``👍``
                                  (:mod:`federation.bridge.emoji`); un-reacting redacts it
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


MENTION_SPAN_RE = re.compile(r'<span class="mention" data-username="([^"]+)">@([^<]+)</span>')


def matrix_html(html: str, mxids: Mapping[str, str]) -> str:
    """The chat's HTML with its user mentions as Matrix pills: ``<span class="mention"
    data-username="bob">@bob</span>`` -> ``<a href="https://matrix.to/#/@bob:hs">@bob</a>`` for
    every username in ``mxids`` (others, and ``@all``/``@here``, stay as they are)."""
    def pill(m: re.Match[str]) -> str:
        mxid = mxids.get(m.group(1))
        return f'<a href="https://matrix.to/#/{mxid}">@{m.group(2)}</a>' if mxid else m.group(0)

    return MENTION_SPAN_RE.sub(pill, html)


def mentions_content(user_ids: list[str] | tuple[str, ...] = (), *, room: bool = False) -> dict[str, Any]:
    """``m.mentions``: who is pinged (always sent, so that clients do not guess from the body)."""
    out: dict[str, Any] = {}
    if user_ids:
        out["user_ids"] = sorted(set(user_ids))
    if room:
        out["room"] = True
    return out


def mentioned_in(content: Mapping[str, Any]) -> tuple[list[str], bool]:
    """``m.mentions`` of incoming content: ``(user IDs, whole room)``; malformed parts ignored."""
    mentions = content.get("m.mentions")
    if not isinstance(mentions, Mapping):
        return [], False
    ids = mentions.get("user_ids")
    users = [u for u in ids if isinstance(u, str)][:100] if isinstance(ids, list) else []
    return users, mentions.get("room") is True


def message_content(text: str, html: str = "", *, thread_root_event_id: str | None = None,
                    reply_to_event_id: str | None = None, mentions: Mapping[str, Any] | None = None
                    ) -> dict[str, Any]:
    """A chat message -> ``m.room.message`` content (``m.text``; HTML only when the chat rendered some).

    A thread reply relates to the thread root (``m.thread``); a quote is a rich reply
    (``m.in_reply_to``), inside the thread relation when both apply (``is_falling_back`` false:
    the quote is meant). ``mentions`` is the ``m.mentions`` object (see :func:`mentions_content`).
    """
    content: dict[str, Any] = {"msgtype": "m.text", "body": text}
    if html:
        content["format"] = HTML_FORMAT
        content["formatted_body"] = html
    if mentions is not None:
        content["m.mentions"] = dict(mentions)
    if thread_root_event_id:
        rel: dict[str, Any] = {"rel_type": "m.thread", "event_id": thread_root_event_id}
        if reply_to_event_id:
            rel["is_falling_back"] = False
            rel["m.in_reply_to"] = {"event_id": reply_to_event_id}
        content["m.relates_to"] = rel
    elif reply_to_event_id:
        content["m.relates_to"] = {"m.in_reply_to": {"event_id": reply_to_event_id}}
    return content


MSGTYPE_OF_KIND = {"image": "m.image", "audio": "m.audio", "video": "m.video", "file": "m.file"}
MXC_RE = re.compile(r"^mxc://([A-Za-z0-9.\-:\[\]]{1,255})/([A-Za-z0-9_\-]{1,255})$")


@dataclass(frozen=True)
class FileInfo:
    """What the chat knows of a file, for ``m.image``/``m.file``/``m.audio``/``m.video``."""

    kind: str
    name: str
    content_type: str
    size: int
    width: int | None = None
    height: int | None = None


def file_content(info: FileInfo, url: str, caption: str = "", *, thumbnail_url: str | None = None,
                 thumbnail: FileInfo | None = None) -> dict[str, Any]:
    """A file message: ``body`` is the caption when there is one (with ``filename``), else the name."""
    details: dict[str, Any] = {"mimetype": info.content_type, "size": info.size}
    if info.width and info.height:
        details.update(w=info.width, h=info.height)
    if thumbnail_url and thumbnail is not None:
        details["thumbnail_url"] = thumbnail_url
        details["thumbnail_info"] = {"mimetype": thumbnail.content_type, "size": thumbnail.size,
                                     **({"w": thumbnail.width, "h": thumbnail.height} if thumbnail.width else {})}
    content: dict[str, Any] = {"msgtype": MSGTYPE_OF_KIND.get(info.kind, "m.file"), "body": caption or info.name,
                               "url": url, "info": details}
    if caption:
        content["filename"] = info.name
    return content


@dataclass(frozen=True)
class IncomingFile:
    """A file message from Matrix: where the file is and what it says it is."""

    server_name: str
    media_id: str
    name: str
    caption: str
    content_type: str
    size: int | None


def incoming_file(content: Mapping[str, Any]) -> IncomingFile | None:
    """``m.image``/``m.file``/``m.audio``/``m.video`` content -> the file to fetch (None: not a file
    message, or no usable ``mxc://`` URL, as in an encrypted file)."""
    msgtype = content.get("msgtype")
    if not isinstance(msgtype, str) or msgtype not in FILE_MSGTYPES:
        return None
    url = content.get("url")
    m = MXC_RE.match(url) if isinstance(url, str) else None
    if m is None:
        return None
    body = string_field(content, "body") or ""
    filename = string_field(content, "filename") or ""
    name, caption = (filename, body) if filename and filename != body else (body, "")
    raw_info = content.get("info")
    info: Mapping[str, Any] = raw_info if isinstance(raw_info, Mapping) else {}
    mimetype = string_field(info, "mimetype") or ""
    size = info.get("size") if type(info.get("size")) is int else None
    return IncomingFile(m.group(1), m.group(2), (name or "file").replace("\x00", "")[:200],
                        caption.replace("\x00", "")[:MAX_TEXT], mimetype[:255], size)


def edit_content(original_event_id: str, text: str, html: str = "", *,
                 mentions: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The replacement of a message's text (``m.replace``): the new content (with its mentions)
    plus the ``* `` fallback; the edit itself pings nobody again (empty ``m.mentions``)."""
    new = message_content(text, html, mentions=mentions)
    content: dict[str, Any] = {"msgtype": "m.text", "body": f"* {text}", "m.new_content": new,
                               "m.relates_to": {"rel_type": "m.replace", "event_id": original_event_id}}
    if mentions is not None:
        content["m.mentions"] = {}
    if html:
        content["format"] = HTML_FORMAT
        content["formatted_body"] = f"* {html}"
    return content


def reaction_content(target_event_id: str, key: str) -> dict[str, Any]:
    """``m.reaction`` content: an annotation of the target with ``key`` (the emoji character)."""
    return {"m.relates_to": {"rel_type": "m.annotation", "event_id": target_event_id, "key": key}}


@dataclass(frozen=True)
class IncomingReaction:
    """An ``m.reaction`` as the chat needs it."""

    target_event_id: str
    key: str


def incoming_reaction(content: Mapping[str, Any]) -> IncomingReaction | None:
    """``m.reaction`` content -> target and key (None unless a well-formed ``m.annotation``)."""
    rel = content.get("m.relates_to")
    if not isinstance(rel, Mapping) or rel.get("rel_type") != "m.annotation":
        return None
    target, key = rel.get("event_id"), rel.get("key")
    if not isinstance(target, str) or not isinstance(key, str) or not key.strip() or len(key) > 60:
        return None
    return IncomingReaction(target, key.strip())


def strip_reply_fallback(body: str) -> str:
    """A rich reply's body without its fallback: the leading ``> `` quote lines and the blank line after
    them (a body that is only a quote is left as it is)."""
    lines = body.split("\n")
    if not lines or not lines[0].startswith("> "):
        return body
    i = 0
    while i < len(lines) and lines[i].startswith(">"):
        i += 1
    if i >= len(lines) or lines[i] != "":
        return body  # a fallback always ends with a blank line: this is the message's own quote
    return "\n".join(lines[i + 1:])


@dataclass(frozen=True)
class IncomingMessage:
    """What the chat makes of an ``m.room.message``: its text and what it relates to."""

    text: str
    thread_root_event_id: str | None = None
    replaces_event_id: str | None = None
    reply_to_event_id: str | None = None
    mentioned_user_ids: tuple[str, ...] = ()
    mentions_room: bool = False


def incoming_message(content: Mapping[str, Any], sender_name: str) -> IncomingMessage | None:
    """``m.room.message`` content -> chat text (None: nothing to show, e.g. no ``body``)."""
    rel = content.get("m.relates_to")
    rel = rel if isinstance(rel, Mapping) else {}
    new_content = content.get("m.new_content")
    replaces = rel.get("event_id") if rel.get("rel_type") == "m.replace" else None
    if isinstance(replaces, str) and isinstance(new_content, Mapping):
        content = new_content  # an edit: the replacement text, not the "* " fallback
        edited_file = incoming_file(content)
        if edited_file is not None:  # a file's new caption (the chat keeps the file)
            content = {**content, "msgtype": "m.text", "body": edited_file.caption}
    elif replaces is not None:
        replaces = None  # an m.replace without m.new_content is not an edit
    body = content.get("body")
    if not isinstance(body, str):
        return None
    reply = rel.get("m.in_reply_to")
    reply_to = reply.get("event_id") if isinstance(reply, Mapping) else None
    reply_to = reply_to if isinstance(reply_to, str) and not rel.get("is_falling_back") else None
    if reply_to is not None:
        body = strip_reply_fallback(body)
    text = body.replace("\x00", "")
    msgtype = content.get("msgtype")
    msgtype = msgtype if isinstance(msgtype, str) else ""
    if msgtype == "m.emote":
        text = f"_{sender_name} {text}_"
    elif msgtype in FILE_MSGTYPES:
        url = content.get("url")
        text = f"{text} ({url})" if isinstance(url, str) else text
    thread = rel.get("event_id") if rel.get("rel_type") == "m.thread" else None
    users, whole_room = mentioned_in(content)
    return IncomingMessage(text[:MAX_TEXT], thread if isinstance(thread, str) else None,
                           replaces if isinstance(replaces, str) else None, reply_to, tuple(users), whole_room)


def power_level_for_roles(roles: list[str] | tuple[str, ...]) -> int:
    """A member's chat roles -> their power level (owner 100, moderator 50, else 0)."""
    if "owner" in roles:
        return OWNER_LEVEL
    if "moderator" in roles:
        return MODERATOR_LEVEL
    return MEMBER_LEVEL


def _int(value: Any, default: int) -> int:
    return value if type(value) is int else default


def user_level(power_levels: Mapping[str, Any], user_id: str, creators: frozenset[str] = frozenset()) -> float:
    """A user's power level: ``users[user]`` or ``users_default``; unlimited for a creator in rooms
    whose creators have infinite power (v12, ``creators`` given)."""
    if user_id in creators:
        return float("inf")
    users = power_levels.get("users")
    users = users if isinstance(users, Mapping) else {}
    return _int(users.get(user_id), _int(power_levels.get("users_default"), 0))


def role_for_level(power_levels: Mapping[str, Any], level: float) -> str | None:
    """The chat role a power level means, by thresholds rather than equality: ``owner`` from the
    level that may change the power levels, ``moderator`` from the level that may kick or ban
    (the lower of the two), else none. Custom levels in between keep the lower role."""
    state_default = _int(power_levels.get("state_default"), 50)
    owner_at = _int(_events(power_levels).get("m.room.power_levels"), state_default)
    moderator_at = moderator_level(power_levels)
    if level >= owner_at:
        return "owner"
    if level >= moderator_at:
        return "moderator"
    return None


def _events(power_levels: Mapping[str, Any]) -> Mapping[str, Any]:
    events = power_levels.get("events")
    return events if isinstance(events, Mapping) else {}


def message_level(power_levels: Mapping[str, Any]) -> int:
    """The level needed to send ``m.room.message``: ``events`` entry, else ``events_default``."""
    return _int(_events(power_levels).get("m.room.message"), _int(power_levels.get("events_default"), 0))


def moderator_level(power_levels: Mapping[str, Any]) -> int:
    """The level that may kick or ban (the lower of the two)."""
    return min(_int(power_levels.get("ban"), 50), _int(power_levels.get("kick"), 50))


def members_level(power_levels: Mapping[str, Any]) -> int:
    """The level of a member nobody has singled out (``users_default``)."""
    return _int(power_levels.get("users_default"), 0)


def is_read_only(power_levels: Mapping[str, Any]) -> bool:
    """Plain members may not send messages: the chat's read-only."""
    return message_level(power_levels) > members_level(power_levels)


def muted_level(power_levels: Mapping[str, Any]) -> int:
    """The level a muted member gets: one below the lower of the members' level and the message
    level, so the member stays muted when a read-only room becomes writable again."""
    return min(message_level(power_levels), members_level(power_levels)) - 1


def is_muted(power_levels: Mapping[str, Any], level: float) -> bool:
    """A member below both the members' level and the message level is muted (the same line
    :func:`muted_level` draws; Element's "mute", one below ``events_default``, is seen as muted too)."""
    return level < min(message_level(power_levels), members_level(power_levels))


def member_level(power_levels: Mapping[str, Any], roles: list[str] | tuple[str, ...], muted: bool) -> int:
    """The level a chat member should have in a room with these power levels: muted members
    :func:`muted_level`, others by their roles (:func:`power_level_for_roles`)."""
    return muted_level(power_levels) if muted else power_level_for_roles(roles)


def with_read_only(power_levels: Mapping[str, Any], read_only: bool) -> dict[str, Any]:
    """The power levels with messages open to members (``read_only`` False) or to moderators
    only: ``events_default`` and, when the room sets it, ``events.m.room.message``."""
    content = dict(power_levels)
    level = moderator_level(power_levels) if read_only else members_level(power_levels)
    content["events_default"] = level
    events = dict(_events(power_levels))
    if "m.room.message" in events:
        events["m.room.message"] = level
        content["events"] = events
    return content


PRESENCE_OF_STATUS = {"online": "online", "away": "unavailable", "busy": "unavailable", "offline": "offline"}


def presence_content(user_id: str, status: str, status_text: str = "") -> dict[str, Any]:
    """One ``m.presence`` push entry for a chat status (away and busy are ``unavailable``)."""
    presence = PRESENCE_OF_STATUS.get(status, "offline")
    entry: dict[str, Any] = {"user_id": user_id, "presence": presence, "currently_active": presence == "online",
                             "last_active_ago": 0}
    if status_text:
        entry["status_msg"] = status_text[:255]
    return entry


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
