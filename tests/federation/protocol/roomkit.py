"""A small helper for tests: build real, signed rooms with the protocol core.

Nothing is mocked: events are built, hashed and signed by ``build_event``; keys
are derived deterministically from server names so runs are reproducible.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

from federation.protocol import (
    CREATE_KEY,
    Event,
    InMemoryEventStore,
    InMemoryKeyStore,
    RoomVersion,
    SigningKey,
    StateKey,
    add_event_signature,
    build_create_event,
    build_event,
)


def key_for(server: str) -> SigningKey:
    """A deterministic signing key per server name."""
    return SigningKey(version="1", seed=hashlib.sha256(server.encode()).digest())


def server_of(user: str) -> str:
    return user.split(":", 1)[1]


class Room:
    """A room under construction: its events, current state and extremity."""

    def __init__(
        self,
        room_version: RoomVersion,
        creator: str = "@alice:a.test",
        *,
        create_content: Mapping[str, Any] | None = None,
        ts: int = 1_000_000,
        store: InMemoryEventStore | None = None,
    ) -> None:
        self.rv = room_version
        self.creator = creator
        self.ts = ts
        self.store = store if store is not None else InMemoryEventStore()
        self.keys = InMemoryKeyStore()
        server = server_of(creator)
        room_id = None if room_version.room_id_is_create_hash else f"!room{ts}:{server}"
        self.create = build_create_event(
            room_version,
            sender=creator,
            origin_server_ts=self._tick(),
            server_name=server,
            signing_key=key_for(server),
            room_id=room_id,
            content=create_content,
        )
        self.room_id = self.create.room_id
        self.state: dict[StateKey, str] = {}
        self.extremities: list[Event] = []
        self.apply(self.create)

    def _tick(self) -> int:
        self.ts += 1
        return self.ts

    def apply(self, event: Event, *, rejected: bool = False) -> Event:
        """Store an event; unless rejected, make it the new extremity and update state."""
        self.store.add(event, rejected=rejected)
        server = server_of(event.sender)
        self.keys.add_key(server, key_for(server).verify_key)
        if not rejected:
            self.extremities = [event]
            if event.state_key is not None:
                self.state[(event.type, event.state_key)] = event.event_id
        return event

    def state_events(self, state: Mapping[StateKey, str] | None = None) -> dict[StateKey, Event]:
        s = self.state if state is None else state
        return {k: self.store.events[v] for k, v in s.items()}

    def make(
        self,
        sender: str,
        event_type: str,
        content: Mapping[str, Any],
        state_key: str | None = None,
        *,
        prev: Sequence[Event] | None = None,
        state: Mapping[StateKey, str] | None = None,
        ts: int | None = None,
        cosigners: Sequence[str] = (),
        extra: Mapping[str, Any] | None = None,
        redacts: str | None = None,
    ) -> Event:
        """Build (but do not apply) an event on top of the current extremity/state."""
        server = server_of(sender)
        event = build_event(
            self.rv,
            room_id=self.room_id,
            event_type=event_type,
            sender=sender,
            content=content,
            state_key=state_key,
            prev_events=list(prev) if prev is not None else self.extremities,
            state=self.state if state is None else state,
            origin_server_ts=ts if ts is not None else self._tick(),
            server_name=server,
            signing_key=key_for(server),
            extra=extra,
            redacts=redacts,
        )
        for cosigner in cosigners:
            pdu = add_event_signature(event.pdu, self.rv, cosigner, key_for(cosigner))
            event = Event(pdu, self.rv)
        return event

    def send(self, *args: Any, **kwargs: Any) -> Event:
        """Build and apply an event."""
        return self.apply(self.make(*args, **kwargs))

    # -- common steps ------------------------------------------------------

    def member(self, sender: str, membership: str, target: str | None = None, **kw: Any) -> Event:
        content = {"membership": membership, **kw.pop("content", {})}
        return self.make(sender, "m.room.member", content, target or sender, **kw)

    def join(self, user: str, **kw: Any) -> Event:
        return self.apply(self.member(user, "join", **kw))

    def power_levels(self, sender: str, users: Mapping[str, int], **levels: Any) -> Event:
        return self.send(sender, "m.room.power_levels", {"users": dict(users), **levels}, "")

    def join_rules(self, sender: str, rule: str, **extra: Any) -> Event:
        return self.send(sender, "m.room.join_rules", {"join_rule": rule, **extra}, "")

    @classmethod
    def standard(
        cls,
        room_version: RoomVersion,
        join_rule: str = "public",
        creator: str = "@alice:a.test",
        users: Mapping[str, int] | None = None,
        *,
        create_content: Mapping[str, Any] | None = None,
        ts: int = 1_000_000,
        store: InMemoryEventStore | None = None,
        **levels: Any,
    ) -> Room:
        """create, creator join, power levels (creator 100 unless v12), join rules."""
        room = cls(room_version, creator, create_content=create_content, ts=ts, store=store)
        room.join(creator)
        user_levels = dict(users or {})
        if not room_version.creators_infinite_power:
            user_levels.setdefault(creator, 100)
        room.power_levels(creator, user_levels, **levels)
        room.join_rules(creator, join_rule)
        return room


def state_map_with_create(room: Room) -> dict[StateKey, Event]:
    s = room.state_events()
    assert CREATE_KEY in s
    return s


def fork(room: Room) -> Room:
    """A branch of ``room``: same store and keys, its own state and extremities."""
    import copy

    branch = copy.copy(room)
    branch.state = dict(room.state)
    branch.extremities = list(room.extremities)
    return branch
