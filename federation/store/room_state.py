"""Reading a Matrix room's current state from the store: its events, memberships, servers, ACL.

Every question "who is in the room / which servers / does the ACL admit X" is answered here from
the room's ``current_state`` (or a given state map), through the pure rules of
:mod:`federation.protocol.room_servers`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from federation.models import MatrixEvent, MatrixRoom
from federation.protocol.events import Event, StateKey
from federation.protocol.ids import server_name_of
from federation.protocol.room_servers import server_acl_allows, servers_in_room
from federation.store.events import OrmEventStore, decode_state

STRIPPED_STATE_TYPES = frozenset({"m.room.create", "m.room.join_rules", "m.room.name", "m.room.topic",
                                  "m.room.avatar", "m.room.canonical_alias", "m.room.encryption"})


def state_events(room: MatrixRoom, state: Mapping[StateKey, str] | None = None,
                 store: OrmEventStore | None = None) -> dict[StateKey, Event]:
    """The room's current state (or the given state map) as events."""
    ids = decode_state(room.current_state) if state is None else dict(state)
    events = (store or OrmEventStore(room)).get_events(ids.values())
    return {k: events[v] for k, v in ids.items() if v in events}


def state_content(room: MatrixRoom, key: StateKey) -> dict[str, Any] | None:
    """The content of one current state event (None when the room has none)."""
    eid = decode_state(room.current_state).get(key)
    if eid is None:
        return None
    content = MatrixEvent.objects.filter(event_id=eid).values_list("pdu__content", flat=True).first()
    return content if isinstance(content, dict) else {}


def membership_of(room: MatrixRoom, user_id: str) -> str | None:
    """The user's membership in the room's current state (None: no member event)."""
    ev = state_events(room).get(("m.room.member", user_id))
    return ev.membership if ev is not None else None


def joined_servers(room: MatrixRoom, state: Mapping[StateKey, str] | None = None) -> list[str]:
    """Servers with at least one joined member (in the given state, default the current one)."""
    return servers_in_room(state_events(room, state))


def server_joined(room: MatrixRoom, server: str, state: Mapping[StateKey, str] | None = None) -> bool:
    """Whether a user of ``server`` is joined (in the given state, default the current one)."""
    return server in joined_servers(room, state)


def origin_allowed_by_acl(room: MatrixRoom, origin: str) -> bool:
    """The spec's server ACL check of ``origin`` against the room's current ``m.room.server_acl``.

    Guarantee: True when the room has no ACL event in its current state; otherwise the result of
    :func:`~federation.protocol.room_servers.server_acl_allows` on that event's content.
    """
    return server_acl_allows(state_content(room, ("m.room.server_acl", "")), origin)


def privileged_creators(room: MatrixRoom, state: Mapping[StateKey, Event] | None = None) -> frozenset[str]:
    """The users whose power comes from the create event (room v12+: its sender and
    ``additional_creators``); empty in earlier versions, where creators are ordinary levels."""
    create = (state if state is not None else state_events(room)).get(("m.room.create", ""))
    if create is None or not create.room_version.creators_infinite_power:
        return frozenset()
    extra = create.content.get("additional_creators")
    return frozenset([create.sender, *[c for c in (extra if isinstance(extra, list) else []) if isinstance(c, str)]])


def create_event_id_of(room: MatrixRoom) -> str | None:
    """The room's create event ID (needed in v12, where auth_events never list it)."""
    return decode_state(room.current_state).get(("m.room.create", ""))


def creator_server(room: MatrixRoom) -> str | None:
    """The server of the room's creator (the first to ask for history), if the create event is held."""
    create_id = create_event_id_of(room)
    sender = MatrixEvent.objects.filter(event_id=create_id).values_list("sender", flat=True).first() \
        if create_id else None
    return server_name_of(sender) if sender else None


def stripped_state(room: MatrixRoom, *extra: Event) -> list[dict[str, Any]]:
    """Stripped state for invites: create, join rules, name, topic, avatar, canonical alias, encryption."""
    out = [{"type": ev.type, "state_key": ev.state_key, "sender": ev.sender, "content": dict(ev.content)}
           for (t, _), ev in state_events(room).items() if t in STRIPPED_STATE_TYPES]
    for ev in extra:
        out.append({"type": ev.type, "state_key": ev.state_key, "sender": ev.sender, "content": dict(ev.content)})
    return out
