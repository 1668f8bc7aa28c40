"""Plugging the bridge in (called once from ``FederationConfig.ready``): the event store's listener,
the hooks' sink, the EDU handlers and the outbox's stall notices. Idempotent."""

from __future__ import annotations

from federation import hooks
from federation.bridge.edus import register_edu_handlers
from federation.bridge.incoming import batchable, on_persisted, on_persisted_many, wants
from federation.bridge.outgoing import ChatToMatrix
from federation.bridge.stalls import on_stall
from federation.store.events import register_delivery_context, register_listener
from federation.store.outbox import register_stall_listener
from rooms.events import publishing_together


def connect_bridge() -> None:
    """Register the chat mirror with the event store, the outgoing sink with the hooks, and the EDU handlers."""
    register_listener(on_persisted, wants, many=on_persisted_many, batchable=batchable)
    register_delivery_context(publishing_together)  # a delivery's live events in one round trip
    hooks.register_sink(ChatToMatrix())
    register_edu_handlers()
    register_stall_listener(on_stall)
