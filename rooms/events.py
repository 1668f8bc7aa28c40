"""Typed live events sent to WebSocket clients, always after the database commit.

Wire format (one JSON object per WebSocket text frame)::

    {"type": "<event type>", "room_id": "<room id or null>", "data": {...}}

Event types and their ``data``:

=========================  ====================================================================
``message.new``            the message in the REST API's shape (``_id``, ``rid``, ``msg``, ``u``...)
``message.updated``        the message after an edit, pin, thread reply count or reaction change
``message.deleted``        ``{"_id": ..., "rid": ...}``
``reaction``               ``{"_id": message id, "reactions": {...}, "emoji", "username", "added"}``
``typing``                 ``{"username", "name", "typing": bool}``; expires after 10 s without renewal
``receipt``                ``{"user": {...}, "ts": iso}``: the user has read the room up to ``ts``
``membership``             ``{"user": {...}, "state": joined|invited|left, "roles", "muted", "banned"}``
``room.updated``           the room in the REST API's shape
``room.deleted``           ``{"_id": room id}``
``subscription``           the user's own subscription (unread, mentions, open...) in REST shape
``subscription.removed``   ``{"rid": room id}``: the user no longer belongs to the room
``resync``                 ``{}``: events were dropped for this socket; it is closed (code 4008)
=========================  ====================================================================

Unread counters: a client keeps each subscription's ``unread`` itself, adding one for every
``message.new`` of another user that shows in the room (``tshow`` not false) in a room it is not
reading, and ``userMentions`` when it is among the message's ``mentions``. The server sends the
authoritative ``subscription`` on join, read, unread, mention of the user, ``@all``/``@here`` and on
every change of roles or mute; ``subscriptions.get`` is the truth after a reconnect.

Room events go to the group ``room.<room id>``; per-user events (``subscription*``) go to
``user.<user id>``. A socket is in its user's group and in each joined room's group, and follows
``subscription``/``subscription.removed`` to add and drop room groups; each web process delivers
them to its own sockets (:mod:`rooms.live_fanout`). A socket the server drops gets
``{"type": "resync"}`` and close code 4008 (too slow, or events lost): reconnect and catch up.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from django.db import transaction

log = logging.getLogger(__name__)

EventType = Literal[
    "message.new", "message.updated", "message.deleted", "reaction", "typing", "receipt", "membership",
    "room.updated", "room.deleted", "subscription", "subscription.removed",
]


@dataclass(frozen=True)
class LiveEvent:
    """One event for WebSocket clients."""

    type: EventType
    room_id: str | None
    data: dict[str, Any] = field(default_factory=dict)

    def wire(self) -> dict[str, Any]:
        return {"type": self.type, "room_id": self.room_id, "data": self.data}


def room_group(room_id: str) -> str:
    return f"room.{room_id}"


def user_group(user_id: str) -> str:
    return f"user.{user_id}"


def live_channel(group: str) -> str:
    """The Redis pub/sub channel carrying a group's events (see :mod:`rooms.live_fanout`)."""
    from django.conf import settings

    return f"{settings.REDIS_PREFIX}:live:{group}"


_redis_client: Any = None


def _publish_client() -> Any:
    """A process-wide, thread-safe Redis client for publishing (a connection pool underneath)."""
    global _redis_client
    if _redis_client is None:
        import redis
        from django.conf import settings

        _redis_client = redis.Redis.from_url(settings.REDIS_URL)
    return _redis_client


def wire_text(event: LiveEvent) -> str:
    """The event's frame text, made once for every socket (``type`` first: the fan-out reads it)."""
    return json.dumps(event.wire(), separators=(",", ":"))


_held = threading.local()


@contextlib.contextmanager
def publishing_together() -> Iterator[None]:
    """Within the block, this thread's live events are held (in order) instead of published as
    each is sent; at its end, they are all published in one round trip to Redis, in that order.
    For a unit of work whose commits publish to many rooms (a federated transaction's delivery).
    Nested blocks publish at the outermost one's end. What was held is published even if the
    block raises (those events belong to commits that happened)."""
    if getattr(_held, "frames", None) is not None:
        yield
        return
    _held.frames = []
    try:
        yield
    finally:
        frames, _held.frames = _held.frames, None
        if frames:
            try:
                pipe = _publish_client().pipeline(transaction=False)
                for channel, text in frames:
                    pipe.publish(channel, text)
                pipe.execute()
            except Exception:  # A dead Redis must not fail the work that already committed.
                log.exception("could not publish %d live events", len(frames))


def _send_now(group: str, event: LiveEvent) -> None:
    """Publish ``event`` to a group now (or at the end of :func:`publishing_together`): one
    ``PUBLISH`` of the frame text, which every web process with a socket in the group writes to
    those sockets as is (:mod:`rooms.live_fanout`)."""
    frames = getattr(_held, "frames", None)
    if frames is not None:
        frames.append((live_channel(group), wire_text(event)))
        return
    try:
        _publish_client().publish(live_channel(group), wire_text(event))
    except Exception:  # A dead Redis must not fail the request that already committed.
        log.exception("could not publish live event %s to %s", event.type, group)


def send_to_room(room_id: str, event: LiveEvent) -> None:
    """Publish ``event`` to everyone in the room, once the current transaction commits."""
    transaction.on_commit(lambda: _send_now(room_group(room_id), event))


def send_many_to_room(room_id: str, events: list[LiveEvent]) -> None:
    """Publish ``events`` to everyone in the room, in order, once the current transaction commits:
    as :func:`send_to_room` for each, in one round trip to Redis."""
    if events:
        group = room_group(room_id)
        transaction.on_commit(lambda: _send_many_now(group, events))


def send_to_user(user_id: str, event: LiveEvent) -> None:
    """Publish ``event`` to all of a user's connections, once the current transaction commits."""
    transaction.on_commit(lambda: _send_now(user_group(user_id), event))


def _send_many_now(group: str, events: list[LiveEvent]) -> None:
    """:func:`_send_now` for several events of one group, in order, through one pipeline."""
    frames = getattr(_held, "frames", None)
    if frames is not None:
        channel = live_channel(group)
        frames.extend((channel, wire_text(event)) for event in events)
        return
    try:
        pipe = _publish_client().pipeline(transaction=False)
        channel = live_channel(group)
        for event in events:
            pipe.publish(channel, wire_text(event))
        pipe.execute()
    except Exception:  # A dead Redis must not fail the request that already committed.
        log.exception("could not publish %d live events to %s", len(events), group)
