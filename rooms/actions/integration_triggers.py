"""Which outgoing integrations a new message triggers, decided after its commit at one cache read.

Design:

* :func:`message_sent` is what :func:`rooms.actions.messages.do_send_message` calls. It only
  registers an ``on_commit`` callback: nothing is read or sent inside the message's transaction,
  and nothing at all happens if it rolls back.
* After commit the callback reads the *trigger index* (:func:`trigger_index`): this process's
  copy if it is under :data:`LOCAL_SECONDS` old, else one Redis GET of the Django cache, shared by
  every process. With no enabled outgoing integration the index is empty and that read is the
  whole cost of a post. A change reaches the writing process at once and every other process
  within :data:`LOCAL_SECONDS` (as run-time settings do). The index maps rooms (by id), room types
  (Rocket.Chat's ``all_public_channels``, ``all_private_groups``, ``all_direct_messages``) and
  users (``@username``: DMs with them) to the integrations listening there, with their trigger
  words, so that the words are matched here and a Celery task is queued only for a message that
  really triggers (never one per message in a busy channel).
* A message by the integration's own user never triggers it (its answers would loop).
* A writer of integrations (:mod:`rooms.actions.integrations`) puts the rebuilt index into the
  cache after its commit (:func:`refresh_index_on_commit`). A reader that missed the cache
  rebuilds it and only *adds* its copy, so it cannot replace a writer's fresher one; the entry
  also expires after :data:`INDEX_SECONDS`, which bounds any other race.
* The delivery itself is a Celery task (:mod:`rooms.tasks`), installed at start-up with
  :func:`set_delivery_scheduler` (actions never import tasks).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from django.core.cache import cache
from django.db import transaction

from accounts.models import User
from rooms.models import Integration, Membership, Room

if TYPE_CHECKING:
    from rooms.models import Message

INDEX_KEY = "integrations:outgoing-index:v1"
INDEX_SECONDS = 300
SCOPED_CHANNELS = {"all_public_channels": Room.CHANNEL, "all_private_groups": Room.GROUP,
                   "all_direct_messages": Room.DIRECT}

#: ``(integration_id, message_id, url, trigger_word)`` -> queue a delivery (a Celery task).
DeliveryScheduler = Callable[[str, str, str, str], None]
_scheduler: list[DeliveryScheduler] = []


def set_delivery_scheduler(scheduler: DeliveryScheduler) -> None:
    """Install what queues one delivery (``RoomsConfig.ready``: the Celery task)."""
    _scheduler[:] = [scheduler]


def build_index() -> dict[str, Any]:
    """The trigger index, from the enabled outgoing ``sendMessage`` integrations in the database.

    Shape: ``{"hooks": {id: {"user": id, "words": [...], "anywhere": bool, "urls": [...]}},
    "rooms": {room_id: [ids]}, "types": {room_type: [ids]}, "users": {user_id: [ids]}}``;
    ``{}`` when there is none.
    """
    hooks: dict[str, Any] = {}
    rooms: dict[str, list[str]] = {}
    types: dict[str, list[str]] = {}
    users: dict[str, list[str]] = {}
    wanted_users: dict[str, list[str]] = {}
    for integ in Integration.objects.filter(type=Integration.OUTGOING, enabled=True, event="sendMessage"):
        hooks[integ.id] = {"user": integ.user_id, "words": list(integ.trigger_words or []),
                           "anywhere": integ.trigger_word_anywhere, "urls": list(integ.urls or [])}
        for room_id in integ.room_ids or []:
            rooms.setdefault(room_id, []).append(integ.id)
        channels = integ.channels or ["all_public_channels"]  # Rocket.Chat: no channel = all public ones
        for channel in channels:
            if channel.lower() in SCOPED_CHANNELS:
                types.setdefault(SCOPED_CHANNELS[channel.lower()], []).append(integ.id)
            elif channel.startswith("@"):
                wanted_users.setdefault(channel[1:], []).append(integ.id)
    if wanted_users:
        names = list(wanted_users)
        for uid, username in User.objects.filter(username__in=names).values_list("id", "username"):
            users.setdefault(uid, []).extend(wanted_users[username])
        for uid in User.objects.filter(id__in=names).values_list("id", flat=True):
            users.setdefault(uid, []).extend(wanted_users[uid])
    if not hooks:
        return {}
    return {"hooks": hooks, "rooms": rooms, "types": types, "users": users}


LOCAL_SECONDS = 1.0
"""How long a process reuses the index it last read (a Redis round trip per post otherwise)."""

_local: tuple[float, dict[str, Any]] | None = None


def trigger_index() -> dict[str, Any]:
    """The trigger index: this process's recent copy, else the cache, else rebuilt from the database."""
    global _local
    now = time.monotonic()
    local = _local
    if local is not None and now - local[0] < LOCAL_SECONDS:
        return local[1]
    index = cache.get(INDEX_KEY)
    if index is None:
        index = build_index()
        cache.add(INDEX_KEY, index, INDEX_SECONDS)
    _local = (now, index)
    return index  # type: ignore[no-any-return]


def refresh_index_on_commit() -> None:
    """After the current transaction commits, put the rebuilt index into the cache for every process
    (and into this process's copy at once)."""
    def publish() -> None:
        global _local
        index = build_index()
        cache.set(INDEX_KEY, index, INDEX_SECONDS)
        _local = (time.monotonic(), index)

    transaction.on_commit(publish)


def matched_trigger_word(words: list[str], anywhere: bool, text: str) -> str | None:
    """The first of ``words`` that ``text`` starts with (or contains, with ``anywhere``); ``""``
    when there are no words (every message triggers); None when none matches."""
    if not words:
        return ""
    for word in words:
        if (anywhere and word in text) or (not anywhere and text.startswith(word)):
            return word
    return None


def triggered(index: dict[str, Any], room_id: str, room_type: str, sender_id: str | None,
              text: str) -> list[tuple[str, str]]:
    """``(integration id, trigger word)`` for each integration of ``index`` the message triggers."""
    candidates = list(index["rooms"].get(room_id, ())) + list(index["types"].get(room_type, ()))
    if room_type == Room.DIRECT and index["users"]:
        members = Membership.objects.filter(room_id=room_id, state=Membership.JOINED).exclude(user_id=sender_id)
        for uid in members.values_list("user_id", flat=True):
            candidates.extend(index["users"].get(uid, ()))
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    for integration_id in candidates:
        hook = index["hooks"].get(integration_id)
        if hook is None or integration_id in seen or hook["user"] == sender_id:
            continue
        seen.add(integration_id)
        word = matched_trigger_word(hook["words"], hook["anywhere"], text)
        if word is not None:
            out.append((integration_id, word))
    return out


def message_sent(msg: Message, room: Room) -> None:
    """After the message's commit, queue a delivery per URL of each outgoing integration it triggers."""
    message_id, room_id, room_type, sender_id, text = msg.id, room.id, room.type, msg.user_id, msg.text

    def after_commit() -> None:
        index = trigger_index()
        if not index or not _scheduler:
            return
        for integration_id, word in triggered(index, room_id, room_type, sender_id, text):
            for url in index["hooks"][integration_id]["urls"]:
                _scheduler[0](integration_id, message_id, url, word)

    transaction.on_commit(after_commit)
