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
=========================  ====================================================================

Unread counters: a client keeps each subscription's ``unread`` itself, adding one for every
``message.new`` of another user that shows in the room (``tshow`` not false) in a room it is not
reading, and ``userMentions`` when it is among the message's ``mentions``. The server sends the
authoritative ``subscription`` on join, read, unread, mention of the user, ``@all``/``@here`` and on
every change of roles or mute; ``subscriptions.get`` is the truth after a reconnect.

Room events go to the Channels group ``room.<room id>``; per-user events (``subscription*``) go to
``user.<user id>``. A consumer subscribes to its user's group and to each joined room's group and
follows ``subscription``/``subscription.removed`` to add and drop room groups.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any, Literal

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
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


_redis_client: Any = None


def _publish_client() -> Any:
    """A process-wide, thread-safe Redis client for publishing (a connection pool underneath)."""
    global _redis_client
    if _redis_client is None:
        import redis
        from django.conf import settings

        _redis_client = redis.Redis.from_url(settings.REDIS_URL)
    return _redis_client


def _send_now(group: str, event: LiveEvent) -> None:
    """Publish ``event`` to a Channels group now.

    With the Redis pub/sub channel layer, a group send is one ``PUBLISH`` on the group's channel;
    doing it with a plain synchronous client avoids spinning an event loop per event from sync code.
    The JSON text is made once here, so consumers forward it without encoding it again.
    """
    from django.conf import settings

    wire = event.wire()
    message = {"type": "live.event", "event": wire, "text": json.dumps(wire, separators=(",", ":"))}
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        config = settings.CHANNEL_LAYERS["default"]
        if config["BACKEND"] == "channels_redis.pubsub.RedisPubSubChannelLayer":
            channel = f"{config['CONFIG'].get('prefix', 'asgi')}__group__{group}"
            _publish_client().publish(channel, layer.serialize(message))
        else:
            async_to_sync(layer.group_send)(group, message)
    except Exception:  # A dead Redis must not fail the request that already committed.
        log.exception("could not publish live event %s to %s", event.type, group)


def send_to_room(room_id: str, event: LiveEvent) -> None:
    """Publish ``event`` to everyone in the room, once the current transaction commits."""
    transaction.on_commit(lambda: _send_now(room_group(room_id), event))


def send_to_user(user_id: str, event: LiveEvent) -> None:
    """Publish ``event`` to all of a user's connections, once the current transaction commits."""
    transaction.on_commit(lambda: _send_now(user_group(user_id), event))
