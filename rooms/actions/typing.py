"""Typing notifications: ephemeral, kept in the cache, expiring 10 s after the last renewal.

Clients send "typing" every few seconds while composing; a stop is sent explicitly, on message send,
or by :func:`expire_typing` (run by Celery beat) when a renewal is overdue.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from django.core.cache import cache

from federation import hooks as federation_hooks
from rooms.events import LiveEvent, _send_now, room_group
from rooms.models import Membership, Room

if TYPE_CHECKING:
    from accounts.models import User

TYPING_TTL = 10.0
_INDEX_KEY = "typing:rooms"


def _key(room_id: str) -> str:
    return f"typing:{room_id}"


def do_set_typing(user: User, room: Room, typing: bool) -> None:
    """Record and broadcast that ``user`` started or stopped typing in ``room`` (joined, not muted)."""
    if not Membership.objects.filter(room=room, user=user, state=Membership.JOINED, muted=False).exists():
        return
    state: dict[str, list[object]] = cache.get(_key(room.id)) or {}
    was = user.username in state
    if typing:
        state[user.username] = [time.time() + TYPING_TTL, user.display_name]
    else:
        state.pop(user.username, None)
    cache.set(_key(room.id), state, timeout=int(TYPING_TTL * 3))
    rooms = set(cache.get(_INDEX_KEY) or [])
    if state:
        rooms.add(room.id)
        cache.set(_INDEX_KEY, sorted(rooms), timeout=None)
    if typing or was:
        _send_now(room_group(room.id), LiveEvent("typing", room.id, {
            "username": user.username, "name": user.display_name, "typing": typing,
            "expires_in": TYPING_TTL if typing else 0}))
        federation_hooks.typing_changed(room.id, user.username, typing)


def expire_typing() -> int:
    """Send "stopped typing" for every renewal that is overdue. Returns how many expired."""
    now = time.time()
    expired = 0
    rooms = list(cache.get(_INDEX_KEY) or [])
    keep: list[str] = []
    for room_id in rooms:
        state: dict[str, list[object]] = cache.get(_key(room_id)) or {}
        for username, (deadline, name) in list(state.items()):
            if float(deadline) < now:  # type: ignore[arg-type]
                state.pop(username)
                expired += 1
                _send_now(room_group(room_id), LiveEvent("typing", room_id, {
                    "username": username, "name": name, "typing": False, "expires_in": 0}))
                federation_hooks.typing_changed(room_id, username, False)
        cache.set(_key(room_id), state, timeout=int(TYPING_TTL * 3))
        if state:
            keep.append(room_id)
    cache.set(_INDEX_KEY, keep, timeout=None)
    return expired
