"""State resolution v2 (room versions 2-11) and v2.1 (room version 12, MSC4297).

:func:`resolve_state` takes the room states to merge (maps of
``(type, state_key) -> event ID``) and an :class:`~federation.protocol.store.EventStore`,
and returns the resolved state.  The steps, as the spec names them:

1. Split into the *unconflicted state map* and the *conflicted state set* (a key
   missing from some state counts as conflicted).
2. *Auth difference*: events in some but not all of the states' full auth
   chains.  v2.1 adds the *conflicted state subgraph*: every event on an
   auth-event path between two conflicted events.  Conflicted set + auth
   difference (+ subgraph) = the *full conflicted set*.
3. *Power events* in the full conflicted set (power levels, join rules,
   kicks and bans), plus their auth ancestors in the full conflicted set, sorted
   in *reverse topological power order* (Kahn's algorithm, ties broken by higher
   sender power level, then earlier ``origin_server_ts``, then smaller event ID;
   a sender's power comes from the event's own auth events).
4. *Iterative auth checks* over them, starting from the unconflicted state (v2)
   or from an empty map (v2.1).
5. The other events in *mainline order* of the resulting power levels event,
   then iterative auth checks again.
6. The unconflicted state is laid over the result.

Choices where the spec text leaves room, made to converge with Synapse (the
implementation most rooms run on):

* A state's "full auth chain" includes the state's own events.
* Auth ancestors of power events are collected, and the sort's graph built,
  along auth edges whose both ends are in the full conflicted set.
* Events that the store marks as rejected are never admitted into the resolved
  state, and rejected auth events are not used to authorize others.
* In room v12 the create event, implied by the room ID, counts as an auth event
  of every other event (:attr:`Event.effective_auth_event_ids`).

Cost: one breadth-first walk of the auth chains involved; events are fetched
from the store in batches, one per level of the walk.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Mapping, Sequence
from itertools import chain
from operator import attrgetter

from .auth_rules import auth_types_for, check_auth_rules
from .errors import AuthError, ProtocolError
from .events import CREATE_KEY, POWER_LEVELS_KEY, Event, StateKey
from .power_levels import INFINITE_POWER, room_creators
from .room_versions import RoomVersion, StateResAlgorithm
from .store import EventStore

_AUTH_IDS = attrgetter("effective_auth_event_ids")


class StateResolutionError(ProtocolError):
    """An event that state resolution needs is missing or in another room."""


def _is_power_event(event: Event) -> bool:
    t = event.type
    if event.state_key == "" and t in ("m.room.power_levels", "m.room.join_rules", "m.room.create"):
        return True
    return (
        t == "m.room.member"
        and event.membership in ("leave", "ban")
        and event.sender != event.state_key
    )


class _Resolver:
    """One resolution: an event cache over the store, and the steps."""

    def __init__(self, room_version: RoomVersion, store: EventStore, room_id: str | None) -> None:
        self.rv = room_version
        self.store = store
        self.room_id = room_id
        self.events: dict[str, Event] = {}

    # -- fetching -------------------------------------------------------------

    def load(self, event_ids: Iterable[str]) -> None:
        events = self.events
        missing = set(event_ids) - events.keys()
        if missing:
            events.update(self.store.get_events(missing))

    def closure(self, start: Iterable[str]) -> set[str]:
        """``start`` plus everything reachable along auth edges (known events only).

        One level at a time, with the per-event work done by C-level iterators:
        the first level is often a whole 10,000-event state.
        """
        events = self.events
        seen = set(start)
        frontier = seen
        while frontier:
            self.load(frontier)
            found = filter(None, map(events.get, frontier))
            parents = set(chain.from_iterable(map(_AUTH_IDS, found)))
            frontier = parents - seen
            seen |= frontier
        return seen

    # -- steps ----------------------------------------------------------------

    def full_conflicted_set(
        self,
        state_sets: Sequence[Mapping[StateKey, str]],
        unconflicted: Mapping[StateKey, str],
        conflicted: set[str],
    ) -> set[str]:
        # An event in every state is exactly an unconflicted entry (an event ID
        # determines its key), so each state is unconflicted + its own extras.
        common = self.closure(unconflicted.values())
        ukeys = unconflicted.keys()
        closures = [self.closure([s[k] for k in s.keys() - ukeys]) for s in state_sets]
        union = set.union(*closures) - common
        inter = set.intersection(*closures)
        auth_difference = union - inter
        full = conflicted | auth_difference
        if self.rv.state_res is StateResAlgorithm.V2_1:
            full |= self.conflicted_subgraph(conflicted)
        return {e for e in full if e in self.events}

    def conflicted_subgraph(self, conflicted: set[str]) -> set[str]:
        """Events on auth paths between conflicted events, endpoints included."""
        ancestors = self.closure(conflicted)
        children: dict[str, list[str]] = {}
        for eid in ancestors:
            ev = self.events.get(eid)
            if ev is None:
                continue
            for aid in ev.effective_auth_event_ids:
                if aid in ancestors:
                    children.setdefault(aid, []).append(eid)
        reached = set(e for e in conflicted if e in ancestors)
        stack = list(reached)
        while stack:
            for child in children.get(stack.pop(), ()):
                if child not in reached:
                    reached.add(child)
                    stack.append(child)
        return reached

    def sender_power(self, event: Event) -> int:
        pl: Event | None = None
        create: Event | None = None
        for aid in event.effective_auth_event_ids:
            aev = self.events.get(aid)
            if aev is None or aev.state_key != "":
                continue
            if aev.type == "m.room.power_levels":
                pl = aev
            elif aev.type == "m.room.create":
                create = aev
        if create is not None and self.rv.creators_infinite_power:
            if event.sender in room_creators(create):
                return INFINITE_POWER
        if pl is None:
            if create is not None and not self.rv.creators_infinite_power:
                if event.sender in room_creators(create):
                    return 100
            return 0
        users = pl.content.get("users")
        level = users.get(event.sender) if isinstance(users, Mapping) else None
        if level is None:
            level = pl.content.get("users_default", 0)
        return level if type(level) is int else 0

    def power_sort(self, power_ids: Iterable[str], full: set[str]) -> list[str]:
        events = self.events
        graph: dict[str, set[str]] = {}
        stack = list(power_ids)
        while stack:
            eid = stack.pop()
            if eid in graph:
                continue
            parents = {a for a in events[eid].effective_auth_event_ids if a in full}
            graph[eid] = parents
            stack.extend(p for p in parents if p not in graph)
        return self.kahn(graph, lambda e: (-self.sender_power(events[e]), events[e].origin_server_ts, e))

    @staticmethod
    def kahn(graph: dict[str, set[str]], key: Callable[[str], tuple[int, int, str]]) -> list[str]:
        """Kahn's algorithm from the roots (no parents), smallest ``key`` first."""
        children: dict[str, list[str]] = {e: [] for e in graph}
        outdegree: dict[str, int] = {}
        heap: list[tuple[tuple[int, int, str], str]] = []
        for eid, parents in graph.items():
            outdegree[eid] = len(parents)
            for p in parents:
                children[p].append(eid)
            if not parents:
                heap.append((key(eid), eid))
        heapq.heapify(heap)
        out: list[str] = []
        while heap:
            _, eid = heapq.heappop(heap)
            out.append(eid)
            for child in children[eid]:
                outdegree[child] -= 1
                if outdegree[child] == 0:
                    heapq.heappush(heap, (key(child), child))
        return out

    def iterative_auth_checks(
        self, ordered: Iterable[str], base: Mapping[StateKey, str]
    ) -> dict[StateKey, str]:
        resolved = dict(base)
        events = self.events
        is_rejected = self.store.is_rejected
        for eid in ordered:
            event = events[eid]
            if is_rejected(eid):
                continue
            auth_state: dict[StateKey, Event] = {}
            for aid in event.effective_auth_event_ids:
                aev = events.get(aid)
                if aev is not None and aev.state_key is not None and not is_rejected(aid):
                    auth_state[(aev.type, aev.state_key)] = aev
            keys = auth_types_for(event)
            keys.add(CREATE_KEY)
            for key in keys:
                sid = resolved.get(key)
                if sid is not None and not is_rejected(sid):
                    sev = events.get(sid)
                    if sev is None:
                        self.load([sid])
                        sev = events.get(sid)
                    if sev is not None:
                        auth_state[key] = sev
            try:
                check_auth_rules(event, auth_state)
            except AuthError:
                continue
            assert event.state_key is not None
            resolved[(event.type, event.state_key)] = eid
        return resolved

    def pl_parent(self, event: Event) -> str | None:
        for aid in event.effective_auth_event_ids:
            aev = self.events.get(aid)
            if aev is None:
                self.load([aid])
                aev = self.events.get(aid)
            if aev is not None and aev.type == "m.room.power_levels" and aev.state_key == "":
                return aid
        return None

    def mainline_sort(self, event_ids: list[str], pl_id: str | None) -> list[str]:
        if not event_ids:
            return []
        mainline: list[str] = []
        while pl_id is not None:
            mainline.append(pl_id)
            self.load([pl_id])
            pl_event = self.events.get(pl_id)
            if pl_event is None:
                raise StateResolutionError(f"power levels event {pl_id} is unknown")
            pl_id = self.pl_parent(pl_event)
        # Position from the oldest power levels event (1) to the newest; events
        # whose power levels chain never meets the mainline get 0 (sorted first).
        depth_of: dict[str, int] = {e: len(mainline) - i for i, e in enumerate(mainline)}
        memo: dict[str, int] = {}

        def mainline_depth(eid: str) -> int:
            path: list[str] = []
            cur: str | None = self.pl_parent(self.events[eid])
            depth = 0
            while cur is not None:
                if cur in depth_of:
                    depth = depth_of[cur]
                    break
                if cur in memo:
                    depth = memo[cur]
                    break
                path.append(cur)
                cur = self.pl_parent(self.events[cur])
            for p in path:
                memo[p] = depth
            return depth

        events = self.events
        order = {e: (mainline_depth(e), events[e].origin_server_ts, e) for e in event_ids}
        return sorted(event_ids, key=order.__getitem__)


def _separate(state_sets: Sequence[Mapping[StateKey, str]]) -> tuple[dict[StateKey, str], set[str]]:
    """The unconflicted state map, and the conflicted event IDs.

    Each state holds every unconflicted entry, so a state no larger than the
    unconflicted map has nothing conflicted, and key-view differences (C-level
    set operations) find the rest.
    """
    unconflicted = dict(state_sets[0])
    for other in state_sets[1:]:
        get = other.get
        unconflicted = {k: v for k, v in unconflicted.items() if get(k) == v}
    # (Each state holds all of ``unconflicted``; the rest of it is conflicted.)
    conflicted: set[str] = set()
    ukeys = unconflicted.keys()
    for state in state_sets:
        if len(state) != len(unconflicted):
            conflicted.update(state[k] for k in state.keys() - ukeys)
    return unconflicted, conflicted


def resolve_state(
    room_version: RoomVersion,
    state_sets: Sequence[Mapping[StateKey, str]],
    store: EventStore,
    room_id: str | None = None,
) -> dict[StateKey, str]:
    """Resolve several room states into one (state resolution v2 / v2.1).

    Args:
        room_version: the room's version (selects v2 or v2.1).
        state_sets: the states to merge, each ``(type, state_key) -> event ID``.
        store: where the events, their auth chains and rejection flags come from.
        room_id: if given, every event used must be in this room.

    Returns:
        The resolved state.  The result does not depend on the order of
        ``state_sets``.

    Raises:
        StateResolutionError: if a conflicted event is unknown or in another room.
    """
    if not state_sets:
        return {}
    unconflicted, conflicted = _separate(state_sets)
    if not conflicted:
        return unconflicted

    r = _Resolver(room_version, store, room_id)
    full = r.full_conflicted_set(state_sets, unconflicted, conflicted)
    for eid in conflicted:
        if eid not in r.events:
            raise StateResolutionError(f"conflicted event {eid} is unknown")
    if room_id is not None:
        for eid in full:
            if r.events[eid].room_id != room_id:
                raise StateResolutionError(f"event {eid} is not in room {room_id}")

    power = [e for e in full if _is_power_event(r.events[e])]
    sorted_power = r.power_sort(power, full)
    base: Mapping[StateKey, str] = (
        {} if room_version.state_res is StateResAlgorithm.V2_1 else unconflicted
    )
    partial = r.iterative_auth_checks(sorted_power, base)

    in_power = set(sorted_power)
    leftover = [e for e in full if e not in in_power]
    ordered = r.mainline_sort(leftover, partial.get(POWER_LEVELS_KEY))
    resolved = r.iterative_auth_checks(ordered, partial)
    resolved.update(unconflicted)
    return resolved
