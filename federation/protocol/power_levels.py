"""Reading power levels out of room state (spec "Definitions" of the S2S API).

* A user's level: in v12 the room's *creators* (the create event's sender plus
  ``additional_creators``) have infinite power (:data:`INFINITE_POWER`, larger
  than any canonical-JSON integer).  Otherwise ``users[user]``, else
  ``users_default`` (0).  Without an ``m.room.power_levels`` event, the creator
  has 100 and everyone else 0.
* Named levels: ``invite`` defaults to 0; ``kick``, ``ban``, ``redact`` to 50.
* Required level for an event type: ``events[type]``, else ``state_default``
  (50) for state events or ``events_default`` (0) for others - 50 and 0 even
  when the room has no power levels event.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .events import CREATE_KEY, POWER_LEVELS_KEY, Event, StateKey

INFINITE_POWER = 2**63
"""The level of v12 room creators: above any value a power levels event can hold."""

NAMED_LEVEL_DEFAULTS = {"invite": 0, "kick": 50, "ban": 50, "redact": 50}


def _int(value: object, default: int) -> int:
    # Power levels are integers in v10+ (auth rules reject anything else);
    # anything odd that slipped in is read as the default.
    return value if type(value) is int else default


def room_creators(create_event: Event) -> frozenset[str]:
    """The room's creators: the create event's sender (v11+) or ``content.creator``
    (v10), plus ``additional_creators`` in v12."""
    rv = create_event.room_version
    if rv.implicit_room_creator:
        creators = {create_event.sender}
    else:
        creator = create_event.content.get("creator")
        creators = {creator} if isinstance(creator, str) else set()
    if rv.creators_infinite_power:
        extra = create_event.content.get("additional_creators")
        if isinstance(extra, list):
            creators.update(u for u in extra if isinstance(u, str))
    return frozenset(creators)


def user_power_level(user_id: str, state: Mapping[StateKey, Event]) -> int:
    """``user_id``'s power level in ``state`` (which must hold the create event).

    Raises:
        KeyError: if ``state`` has no create event.
    """
    create = state[CREATE_KEY]
    if create.room_version.creators_infinite_power and user_id in room_creators(create):
        return INFINITE_POWER
    pl = state.get(POWER_LEVELS_KEY)
    if pl is not None:
        content = pl.content
        users = content.get("users")
        if isinstance(users, Mapping) and user_id in users:
            return _int(users[user_id], 0)
        return _int(content.get("users_default", 0), 0)
    if create.room_version.creators_infinite_power:
        return 0
    return 100 if user_id in room_creators(create) else 0


def named_level(state: Mapping[StateKey, Event], name: str) -> int:
    """The ``invite``/``kick``/``ban``/``redact`` level, with the spec's defaults."""
    default = NAMED_LEVEL_DEFAULTS[name]
    pl = state.get(POWER_LEVELS_KEY)
    if pl is None:
        return default
    value = pl.content.get(name)
    return default if value is None else _int(value, default)


def required_power_level(
    state: Mapping[StateKey, Event], event_type: str, is_state: bool
) -> int:
    """The level needed to send an event of ``event_type``."""
    pl = state.get(POWER_LEVELS_KEY)
    content: Mapping[str, Any] = pl.content if pl is not None else {}
    events = content.get("events")
    if isinstance(events, Mapping):
        level = events.get(event_type)
        if level is not None:
            return _int(level, 0)
    if is_state:
        return _int(content.get("state_default", 50), 50)
    return _int(content.get("events_default", 0), 0)
