"""Who hears of new local users: a registry with no imports of its own, so that both the
actions (:func:`accounts.actions.do_create_user`) and the model manager (``createsuperuser``)
can announce a user, and other apps (rooms: the default rooms) can listen, without cycles."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

UserCreatedListener = Callable[[Any], None]
_listeners: list[UserCreatedListener] = []


def on_user_created(listener: UserCreatedListener) -> None:
    """Call ``listener(user)`` for each new local user, inside the transaction that creates it."""
    if listener not in _listeners:
        _listeners.append(listener)


def user_created(user: Any) -> None:
    """Announce a new local user (its row is saved); a listener that fails fails the creation."""
    for listener in _listeners:
        listener(user)
