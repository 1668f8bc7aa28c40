"""Synapse's own functions, wrapped for differential tests and the benchmark.

Synapse (``matrix-synapse`` on PyPI) is the reference homeserver.  Its event
auth and state resolution functions are ``async`` and take a store; here they
run over in-memory data.  They never await real I/O with these stores, so a
coroutine is driven to completion with a single ``send(None)``.

The in-memory :class:`SynapseStateResStore` computes the auth chain difference
and the v2.1 conflicted subgraph from their definitions, naively and
independently of our implementation (Synapse's own is SQL over its database).
"""

from __future__ import annotations

from collections.abc import Coroutine, Iterable
from typing import Any, TypeVar

from synapse.api.errors import AuthError as SynapseAuthError
from synapse.api.errors import SynapseError
from synapse.api.room_versions import KNOWN_ROOM_VERSIONS
from synapse.event_auth import (
    check_state_dependent_auth_rules,
    check_state_independent_auth_rules,
    validate_event_for_room_version,
)
from synapse.events import EventBase, make_event_from_dict
from synapse.state import v2 as synapse_v2
from synapse.storage.databases.main.event_federation import StateDifference

from federation.protocol import Event, EventStore

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that never really suspends."""
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    coro.close()
    raise RuntimeError("coroutine suspended")


def synapse_room_version(identifier: str) -> Any:
    return KNOWN_ROOM_VERSIONS[identifier]


def to_synapse(event: Event, rejected: bool = False) -> EventBase:
    return make_event_from_dict(
        dict(event.pdu),
        synapse_room_version(event.room_version.identifier),
        rejected_reason="rejected" if rejected else None,
    )


class SynapseEvents:
    """Synapse copies of our events, made once."""

    def __init__(self, store: EventStore, events: Iterable[Event]) -> None:
        self.store = store
        self.by_id: dict[str, EventBase] = {}
        for e in events:
            self.add(e)

    def add(self, event: Event) -> EventBase:
        sev = self.by_id.get(event.event_id)
        if sev is None:
            sev = to_synapse(event, self.store.is_rejected(event.event_id))
            assert sev.event_id == event.event_id, "Synapse computes another event ID"
            self.by_id[event.event_id] = sev
        return sev


class SynapseEventSource:
    """What ``check_state_independent_auth_rules`` needs from a store."""

    def __init__(self, events: SynapseEvents) -> None:
        self.events = events

    async def get_events(self, event_ids: Iterable[str], **_: Any) -> dict[str, EventBase]:
        return {e: self.events.by_id[e] for e in event_ids if e in self.events.by_id}


def synapse_allows(event: Event, events: SynapseEvents) -> bool:
    """Synapse's verdict on an event against its auth events (receipt step 4)."""
    sev = events.add(event)
    try:
        validate_event_for_room_version(sev)
        run(check_state_independent_auth_rules(SynapseEventSource(events), sev))
        if sev.type == "m.room.create":
            return True
        auth = [events.by_id[a] for a in sev.auth_event_ids() if a in events.by_id]
        check_state_dependent_auth_rules(sev, auth)
    except (SynapseAuthError, SynapseError):
        return False
    return True


def synapse_allows_against(event: Event, state: Iterable[Event], events: SynapseEvents) -> bool:
    """Synapse's state-dependent verdict against a given state."""
    sev = events.add(event)
    try:
        check_state_dependent_auth_rules(sev, [events.add(e) for e in state])
    except (SynapseAuthError, SynapseError):
        return False
    return True


class _Clock:
    async def sleep(self, duration: Any) -> None:
        return None


def _closure(start: Iterable[str], parents: dict[str, list[str]]) -> set[str]:
    seen = set(start)
    stack = list(seen)
    while stack:
        for p in parents.get(stack.pop(), ()):
            if p not in seen:
                seen.add(p)
                stack.append(p)
    return seen


class SynapseStateResStore:
    """In-memory ``StateResolutionStore`` for ``synapse.state.v2``."""

    def __init__(self, events: SynapseEvents) -> None:
        self.events = events

    async def get_events(self, event_ids: Iterable[str], allow_rejected: bool = False) -> dict[str, EventBase]:
        out = {}
        for e in event_ids:
            ev = self.events.by_id.get(e)
            if ev is not None and (allow_rejected or ev.rejected_reason is None):
                out[e] = ev
        return out

    def _parents(self) -> dict[str, list[str]]:
        return {eid: list(ev.auth_event_ids()) for eid, ev in self.events.by_id.items()}

    async def get_auth_chain_difference(
        self,
        room_id: str,
        state_sets: list[set[str]],
        conflicted_state: set[str] | None,
        additional_backwards_reachable_conflicted_events: set[str] | None,
    ) -> StateDifference:
        parents = self._parents()
        chains = [_closure(s, parents) for s in state_sets]
        difference = set.union(*chains) - set.intersection(*chains)
        subgraph = None
        if conflicted_state is not None:
            # Definition: every event on an auth path from one conflicted event
            # to another, endpoints included.
            subgraph = set()
            reach = {c: _closure([c], parents) for c in conflicted_state}
            candidates = set().union(*reach.values()) if reach else set()
            for x in candidates:
                below = _closure([x], parents)
                if any(x in r for r in reach.values()) and below & conflicted_state:
                    subgraph.add(x)
        return StateDifference(auth_difference=difference, conflicted_subgraph=subgraph)


def synapse_resolve(
    room_id: str,
    room_version_id: str,
    state_sets: list[dict[tuple[str, str], str]],
    events: SynapseEvents,
) -> dict[tuple[str, str], str]:
    result = run(
        synapse_v2.resolve_events_with_store(
            _Clock(),
            room_id,
            synapse_room_version(room_version_id),
            state_sets,
            None,
            SynapseStateResStore(events),
        )
    )
    return dict(result)
