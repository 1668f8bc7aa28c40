"""Delivery stall notices: when a server has been unreachable past
``CONCORD_FEDERATION_STALL_NOTICE_AFTER``, every chat room it shares with us shows one system
notice (``federation-delayed``), and another (``federation-resumed``) once a send to it succeeds.
Called by :mod:`federation.store.outbox` after the commit that records the change."""

from __future__ import annotations

from federation.models import MatrixRoom
from federation.store.room_state import joined_servers
from rooms.actions.memberships import add_system_message
from rooms.models import Room

DELAYED, RESUMED = "federation-delayed", "federation-resumed"


def rooms_shared_with(server_name: str) -> list[Room]:
    """The chat rooms whose Matrix room has a member of ``server_name`` joined."""
    out = []
    for mroom in MatrixRoom.objects.exclude(current_state=[]).exclude(chat_room=None).select_related("chat_room"):
        if server_name in joined_servers(mroom) and mroom.chat_room is not None:
            out.append(mroom.chat_room)
    return out


def shared_room_counts() -> dict[str, int]:
    """How many rooms each remote server shares with us (a member of it joined)."""
    counts: dict[str, int] = {}
    for mroom in MatrixRoom.objects.exclude(current_state=[]):
        for server in joined_servers(mroom):
            counts[server] = counts.get(server, 0) + 1
    return counts


def on_stall(server_name: str, stalled: bool) -> None:
    """Post the notice in each shared room (its text: the server's name)."""
    for room in rooms_shared_with(server_name):
        add_system_message(room, None, DELAYED if stalled else RESUMED, server_name)
