"""Benchmark: Concord's Matrix protocol core against Synapse's, on the same input.

Run: ``.venv/bin/python -m bench.protocol_bench [--events N] [--state N] [--conflicts N]``

Two measurements, each on input generated once and fed to both sides:

1. **Receive pipeline**: for each signed PDU, as JSON bytes: parse it, check
   its format, signature and content hash, compute its event ID and authorize
   it against its auth events.
   Ours: ``parse_json`` (strict: refuses floats and out-of-range integers while
   parsing) + ``check_pdu`` (format, size, signatures, content hash, event ID)
   + ``authorize_event``.
   Synapse: its ``json_decoder`` + ``event_from_pdu_json`` (format, strict
   JSON, event ID), pruning +
   ``signedjson.verify_signed_json`` (what its keyring does),
   ``check_event_content_hash``, ``validate_event_for_room_version``,
   ``check_state_independent_auth_rules`` + ``check_state_dependent_auth_rules``.
2. **State resolution** of two forks of a room with ~N state events and a few
   hundred conflicting events, with ``resolve_state`` and Synapse's
   ``resolve_events_with_store``.  Synapse normally gets the auth chain
   difference from SQL (a chain cover index); here its store computes it in
   memory with the same breadth-first walks ours uses.  Both the total and
   Synapse's time without that store call are printed.

Each figure is the best of ``--repeat`` runs, ours and Synapse's alternating,
so that load from other processes hits both alike; on a busy 2-core machine
the ratios still move by +-20% between runs.  Synapse is imported lazily;
without it only our figures are printed.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import sys
import time
from collections.abc import Callable, Coroutine, Iterable
from typing import Any, TypeVar

from federation.protocol import (
    AuthError,
    Event,
    InMemoryEventStore,
    InMemoryKeyStore,
    RoomVersion,
    SigningKey,
    StateKey,
    authorize_event,
    build_create_event,
    build_event,
    check_pdu,
    encode_canonical_json,
    get_room_version,
    parse_json,
    resolve_state,
)

T = TypeVar("T")


def key_for(server: str) -> SigningKey:
    return SigningKey("1", hashlib.sha256(b"bench:" + server.encode()).digest())


class RoomSim:
    """Builds a room's events on top of a running state (one branch)."""

    def __init__(self, rv: RoomVersion, store: InMemoryEventStore, ts: int = 1_000_000) -> None:
        self.rv = rv
        self.store = store
        self.ts = ts
        self.admin = "@admin:hs0.test"
        self.create = build_create_event(
            rv, sender=self.admin, origin_server_ts=self.tick(), server_name="hs0.test",
            signing_key=key_for("hs0.test"),
            room_id=None if rv.room_id_is_create_hash else "!bench:hs0.test",
        )
        self.room_id = self.create.room_id
        self.state: dict[StateKey, str] = {}
        self.head: list[Event] = []
        self.apply(self.create)

    def tick(self) -> int:
        self.ts += 1
        return self.ts

    def apply(self, ev: Event) -> Event:
        self.store.add(ev)
        self.head = [ev]
        if ev.state_key is not None:
            self.state[(ev.type, ev.state_key)] = ev.event_id
        return ev

    def make(self, sender: str, etype: str, content: dict[str, Any], state_key: str | None = None) -> Event:
        server = sender.split(":", 1)[1]
        return build_event(
            self.rv, room_id=self.room_id, event_type=etype, sender=sender, content=content,
            state_key=state_key, prev_events=self.head, state=self.state,
            origin_server_ts=self.tick(), server_name=server, signing_key=key_for(server),
        )

    def send(self, *args: Any) -> Event:
        return self.apply(self.make(*args))

    def fork(self) -> RoomSim:
        other = object.__new__(RoomSim)
        other.__dict__.update(self.__dict__)
        other.state = dict(self.state)
        other.head = list(self.head)
        return other


def user(i: int) -> str:
    return f"@u{i}:hs{i % 7 + 1}.test"


def setup_room(rv: RoomVersion, members: int, store: InMemoryEventStore) -> RoomSim:
    room = RoomSim(rv, store)
    a = room.admin
    room.send(a, "m.room.member", {"membership": "join"}, a)
    levels: dict[str, int] = {} if rv.creators_infinite_power else {a: 100}
    levels.update({user(i): 50 for i in range(0, 20, 3)})
    room.send(a, "m.room.power_levels", {"users": levels, "state_default": 50}, "")
    room.send(a, "m.room.join_rules", {"join_rule": "public"}, "")
    for i in range(members):
        room.send(user(i), "m.room.member", {"membership": "join", "displayname": f"user {i}"}, user(i))
    return room


# --------------------------------------------------------------------------- 1. receive pipeline


def gen_traffic(rv: RoomVersion, n: int) -> tuple[InMemoryEventStore, list[dict[str, Any]], RoomSim]:
    """A room with 200 members, then ``n`` new events (messages, state, membership)."""
    store = InMemoryEventStore()
    room = setup_room(rv, 200, store)
    base = dict(store.events)
    rng = random.Random(7)
    pdus: list[dict[str, Any]] = []
    for k in range(n):
        r = rng.random()
        u = user(rng.randrange(200))
        if r < 0.7:
            body = f"message {k} " + "lorem " * rng.randrange(1, 30)
            ev = room.make(u, "m.room.message", {"msgtype": "m.text", "body": body})
        elif r < 0.85:
            ev = room.make(u, "m.room.member", {"membership": "join", "displayname": f"n{k}"}, u)
        else:
            ev = room.make(user(rng.randrange(0, 20, 3)), "m.room.topic", {"topic": f"topic {k}"}, "")
        room.apply(ev)
        pdus.append(dict(ev.pdu))
    # The receiver knows the room up to the traffic, and the traffic's events
    # as they are accepted one by one.
    receiver = InMemoryEventStore(base.values())
    for eid in store.events:
        if eid not in receiver.events:
            receiver.events[eid] = store.events[eid]
    return receiver, pdus, room


def ours_receive(rv: RoomVersion, wire: list[bytes], store: InMemoryEventStore, keys: InMemoryKeyStore) -> int:
    ok = 0
    for data in wire:
        checked = check_pdu(parse_json(data), rv, keys, parsed_strictly=True)
        try:
            authorize_event(checked.event, store)
            ok += checked.content_hash_ok
        except AuthError:
            pass
    return ok


def run(coro: Coroutine[Any, Any, T]) -> T:
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    raise RuntimeError("coroutine suspended")


def synapse_receive_fn(rv: RoomVersion, store: InMemoryEventStore) -> Callable[[list[bytes]], int]:
    from signedjson.key import decode_verify_key_bytes
    from signedjson.sign import verify_signed_json
    from synapse.api.errors import AuthError as SAuthError
    from synapse.api.room_versions import KNOWN_ROOM_VERSIONS
    from synapse.crypto.event_signing import check_event_content_hash
    from synapse.event_auth import (
        check_state_dependent_auth_rules,
        check_state_independent_auth_rules,
        validate_event_for_room_version,
    )
    from synapse.events import make_event_from_dict
    from synapse.federation.federation_base import event_from_pdu_json
    from synapse.synapse_rust.events import redact_event_dict
    from synapse.util.json import json_decoder

    srv = KNOWN_ROOM_VERSIONS[rv.identifier]
    # The receiver's copies of earlier events, as Synapse events.
    sevents = {eid: make_event_from_dict(dict(e.pdu), srv) for eid, e in store.events.items()}
    vkeys = {
        f"hs{i}.test": decode_verify_key_bytes("ed25519:1", key_for(f"hs{i}.test").verify_key.key_bytes)
        for i in range(8)
    }

    class Source:
        async def get_events(self, ids: Iterable[str], **_: Any) -> dict[str, Any]:
            return {i: sevents[i] for i in ids if i in sevents}

    source = Source()

    def receive(wire: list[bytes]) -> int:
        ok = 0
        for data in wire:
            ev = event_from_pdu_json(json_decoder.decode(data.decode("utf-8")), srv)
            server = ev.sender.split(":", 1)[1]
            verify_signed_json(redact_event_dict(srv, ev.get_pdu_json()), server, vkeys[server])
            good_hash = check_event_content_hash(ev)
            try:
                validate_event_for_room_version(ev)
                run(check_state_independent_auth_rules(source, ev))  # type: ignore[arg-type]
                check_state_dependent_auth_rules(ev, [sevents[a] for a in ev.auth_event_ids()])
                ok += good_hash
            except SAuthError:
                pass
        return ok

    return receive


# --------------------------------------------------------------------------- 2. state resolution


StateMap = dict[StateKey, str]


def gen_conflict(
    rv: RoomVersion, state_size: int, conflicts: int
) -> tuple[InMemoryEventStore, RoomSim, list[StateMap]]:
    store = InMemoryEventStore()
    members = state_size // 2
    room = setup_room(rv, members, store)
    a = room.admin
    for i in range(state_size - members - 4):
        room.send(a, "org.example.setting", {"value": i}, f"setting{i}")
    rng = random.Random(11)
    left, right = room.fork(), room.fork()
    mods = [user(i) for i in range(0, 20, 3)]
    for k in range(conflicts // 2):
        for side in (left, right):
            r = rng.random()
            if r < 0.5:
                side.send(rng.choice(mods), "org.example.setting", {"value": -k}, f"setting{rng.randrange(50)}")
            elif r < 0.7:
                side.send(rng.choice(mods), "m.room.topic", {"topic": f"t{k}"}, "")
            elif r < 0.85:
                target = user(rng.randrange(20, members))
                if side.state.get(("m.room.member", target)):
                    side.send(rng.choice(mods), "m.room.member", {"membership": rng.choice(["leave", "ban"])}, target)
            else:
                u = user(rng.randrange(20, members))
                side.send(u, "m.room.member", {"membership": "join", "displayname": f"x{k}"}, u)
    # One power levels change on one side, so power events really conflict.
    levels: dict[str, int] = {} if rv.creators_infinite_power else {a: 100}
    levels.update({m: 50 for m in mods[:3]})
    left.send(a, "m.room.power_levels", {"users": levels, "state_default": 50}, "")
    return store, room, [left.state, right.state]


def synapse_resolve_fn(
    rv: RoomVersion, store: InMemoryEventStore
) -> tuple[Callable[[str, list[StateMap]], StateMap], list[float]]:
    import synapse.event_auth  # noqa: F401  (import before synapse.state: import cycle)
    from synapse.api.room_versions import KNOWN_ROOM_VERSIONS
    from synapse.events import make_event_from_dict
    from synapse.state import v2
    from synapse.storage.databases.main.event_federation import StateDifference

    srv = KNOWN_ROOM_VERSIONS[rv.identifier]
    sevents = {eid: make_event_from_dict(dict(e.pdu), srv) for eid, e in store.events.items()}
    parents = {eid: list(ev.auth_event_ids()) for eid, ev in sevents.items()}
    store_time: list[float] = [0.0]

    def closure(start: Iterable[str]) -> set[str]:
        seen = set(start)
        stack = list(seen)
        while stack:
            for p in parents.get(stack.pop(), ()):
                if p not in seen:
                    seen.add(p)
                    stack.append(p)
        return seen

    class Store:
        async def get_events(self, ids: Iterable[str], allow_rejected: bool = False) -> dict[str, Any]:
            return {i: sevents[i] for i in ids if i in sevents}

        async def get_auth_chain_difference(self, room_id: str, state_sets: list[set[str]],
                                            conflicted: set[str] | None, extra: set[str] | None) -> Any:
            t = time.perf_counter()
            in_all = state_sets[0].intersection(*state_sets[1:])
            common = closure(in_all)
            chains = [closure(s - in_all) for s in state_sets]
            diff = chains[0].union(*chains[1:]) - common - chains[0].intersection(*chains[1:])
            sub = None
            if conflicted is not None:
                anc = closure(conflicted)
                children: dict[str, list[str]] = {}
                for e in anc:
                    for p in parents.get(e, ()):
                        children.setdefault(p, []).append(e)
                sub = set(conflicted)
                stack = list(sub)
                while stack:
                    for c in children.get(stack.pop(), ()):
                        if c not in sub:
                            sub.add(c)
                            stack.append(c)
            store_time[0] += time.perf_counter() - t
            return StateDifference(auth_difference=diff, conflicted_subgraph=sub)

    class Clock:
        async def sleep(self, _: Any) -> None:
            return None

    def resolve(room_id: str, states: list[dict[StateKey, str]]) -> dict[StateKey, str]:
        return dict(run(v2.resolve_events_with_store(Clock(), room_id, srv, states, None, Store())))

    return resolve, store_time


# --------------------------------------------------------------------------- driver


def interleaved(
    repeat: int, ours: Callable[[], Any], theirs: Callable[[], Any] | None
) -> tuple[float, Any, float, Any]:
    """Best-of-``repeat`` times of both sides, alternating runs so that load from
    other processes on the machine hits both alike."""
    t_ours = t_theirs = float("inf")
    r_ours = r_theirs = None
    for _ in range(repeat):
        t = time.perf_counter()
        r_ours = ours()
        t_ours = min(t_ours, time.perf_counter() - t)
        if theirs is not None:
            t = time.perf_counter()
            r_theirs = theirs()
            t_theirs = min(t_theirs, time.perf_counter() - t)
    return t_ours, r_ours, t_theirs, r_theirs


def bench_version(rv: RoomVersion, args: argparse.Namespace, have_synapse: bool) -> None:
    """Run both measurements for one room version and print them."""
    print(f"\n== room version {rv.identifier}")
    store, pdus, _ = gen_traffic(rv, args.events)
    wire = [encode_canonical_json(p) for p in pdus]
    keys = InMemoryKeyStore()
    for i in range(8):
        keys.add_key(f"hs{i}.test", key_for(f"hs{i}.test").verify_key)
    receive = synapse_receive_fn(rv, store) if have_synapse else None
    t_ours, ok_ours, t_syn, ok_syn = interleaved(
        args.repeat,
        lambda: ours_receive(rv, wire, store, keys),
        (lambda: receive(wire)) if receive is not None else None,
    )
    line = f"receive (parse, verify signature + hash, event ID, authorize): ours {len(pdus) / t_ours:,.0f} ev/s"
    if receive is not None:
        assert ok_ours == ok_syn, (ok_ours, ok_syn)
        line += f", Synapse {len(pdus) / t_syn:,.0f} ev/s, ratio {t_syn / t_ours:.2f}x"
    print(line)

    sstore, room, states = gen_conflict(rv, args.state, args.conflicts)
    conflicted = sum(1 for k in set(states[0]) | set(states[1]) if states[0].get(k) != states[1].get(k))
    resolve, store_time = synapse_resolve_fn(rv, sstore) if have_synapse else (None, [0.0])
    store_times: list[float] = []

    def theirs() -> StateMap:
        assert resolve is not None
        store_time[0] = 0.0
        result = resolve(room.room_id, states)
        store_times.append(store_time[0])
        return result

    t_ours, ours, t_syn, result = interleaved(
        args.repeat, lambda: resolve_state(rv, states, sstore), theirs if resolve is not None else None
    )
    line = (f"state res ({len(states[0]):,} state events, {conflicted} conflicted keys, "
            f"{len(sstore.events):,} events): ours {t_ours * 1000:.0f} ms")
    if resolve is not None:
        assert result == ours, "resolved states differ"
        t_store = min(store_times)
        line += (f", Synapse {t_syn * 1000:.0f} ms (of which its store's auth difference "
                 f"{t_store * 1000:.0f} ms), ratio {t_syn / t_ours:.2f}x "
                 f"({(t_syn - t_store) / t_ours:.2f}x without the store call); same result")
    print(line)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=3000, help="PDUs in the receive benchmark")
    ap.add_argument("--state", type=int, default=10_000, help="state events in the resolved room")
    ap.add_argument("--conflicts", type=int, default=300, help="conflicting events (both forks)")
    ap.add_argument("--versions", default="10,11,12")
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args(argv)
    try:
        import synapse

        have_synapse = True
        print(f"Synapse {synapse.__version__.split()[0]} vs federation.protocol; Python {sys.version.split()[0]}")
    except ImportError:
        have_synapse = False
        print("Synapse not installed: printing our figures only")

    for vid in args.versions.split(","):
        bench_version(get_room_version(vid.strip()), args, have_synapse)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
