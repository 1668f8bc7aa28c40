"""Benchmark: a Concord user joins a big remote room (many members, many state events).

Run: ``.venv/bin/python -m bench.join_bench [--members 10000] [--state 30000] [--room-version 10]``
(``--synapse`` then has a Synapse user join the same room too, capped by ``--synapse-timeout``).

What runs, all on this machine (nothing leaves 127.0.0.0/8), with the helpers of
:mod:`bench.federation_bench` (imported, not copied):

* a throw-away CA for every TLS listener;
* **Concord** as in production: ``uvicorn chat.asgi:application`` over TLS plus a Celery worker
  (prefork, 2 children) on PostgreSQL (``--database-url``, created and flushed for the run) and Redis;
* the **synthetic peer** ``127.0.0.1:<port>`` of the federation bench (its own Ed25519 key served at
  ``/_matrix/key/v2/server``; ``make_join``, ``v2/send_join``, ``event``, ``state_ids``,
  ``get_missing_events``, ``backfill``, ``query/profile``, ``send``).

Set-up (not timed): the peer builds one public room with the protocol core (every event hashed,
signed, with the auth events the spec selects and the previous event as its only prev event):
create, the creator's join, power levels, join rules, history visibility, a name, then
``--members - 1`` more joined members (each with a display name), then custom state events
(``org.concord.bench``, one state key each) until the room has ``--state`` state events.

Measured: a Concord user calls ``channels.join`` with the room ID and the peer as ``via``; Concord
does make_join / send_join (the answer carries the whole state and its auth chain: every event is
checked for format, signatures, content hash and auth rules), stores the room and mirrors it in the
chat (portal room, one puppet and one membership per joined remote member).

* *time to usable*: from the request until ``channels.join`` answered (then the chat room exists
  and the joining user is in it; the bench checks the chat members right after);
* *time to full membership*: until the chat room has every joined member (the same moment unless
  members are filled in later);
* CPU seconds of the web and worker processes (load-independent) and of PostgreSQL;
* RSS and PSS of the web and worker processes (``/proc/<pid>/smaps_rollup``): before the join,
  the peak sampled every 100 ms during it, and after; growth = peak - before;
* what Concord ended up with: state events in the room's current state, members among them,
  chat memberships.

With ``--synapse``, a user of a Synapse on loopback (``tests.federation.synapse_harness``, SQLite)
then joins the same room through ``POST /_matrix/client/v3/join`` (Synapse does make_join /
send_join against the peer, which answers with the full state: ``members_omitted`` false, so no
partial-state join); timed until that call answers, with the Synapse process's CPU seconds and
RSS/PSS growth, and its joined-member count (``/joined_members``) afterwards. A join that takes
longer than ``--synapse-timeout`` is reported as not finished.

This is a benchmark, not a test: it asserts nothing about speed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.federation_bench import (  # noqa: E402
    BenchPeer,
    BenchRoom,
    Concord,
    _concord_api,
    concord_user,
    cpu_seconds,
    postgres_pids,
    prepare_database,
)
from federation.protocol import Event, get_room_version  # noqa: E402
from tests.federation.synapse_harness import SynapseServer, make_ca  # noqa: E402

CUSTOM_STATE_TYPE = "org.concord.bench"


@dataclass
class BigRoom(BenchRoom):
    """A :class:`BenchRoom` that keeps one shared state map while it is being built (copying the
    state after each of 30,000 events would take quadratic time and memory); once
    :meth:`finish` is called it records states per event again, as the peer's endpoints need."""

    building: bool = field(default=True)

    def apply(self, ev: Event) -> Event:
        if not self.building:
            return super().apply(ev)
        self.events[ev.event_id] = ev
        if ev.state_key is not None:
            self.state[(ev.type, ev.state_key)] = ev.event_id
        self.last = ev
        return ev

    def finish(self) -> None:
        assert self.last is not None
        self.building = False
        self.state_after[self.last.event_id] = self.state


def build_big_room(peer: BenchPeer, version: str, members: int, state: int) -> BigRoom:
    """The peer's room of ``members`` joined members and ``state`` state events (see the docstring)."""
    room = BigRoom(peer, get_room_version(version), peer.user("creator"))
    room.create()
    peer.rooms[room.room_id] = room
    creator = room.creator
    room.send("m.room.member", {"membership": "join", "displayname": "Creator"}, creator, creator)
    users = {} if room.rv.room_id_is_create_hash else {creator: 100}
    room.send("m.room.power_levels", {"users": users}, creator, "")
    room.send("m.room.join_rules", {"join_rule": "public"}, creator, "")
    room.send("m.room.history_visibility", {"history_visibility": "shared"}, creator, "")
    room.send("m.room.name", {"name": f"Big room ({members} members)"}, creator, "")
    for i in range(1, members):
        uid = peer.user(f"m{i:05d}")
        room.send("m.room.member", {"membership": "join", "displayname": f"Member {i}"}, uid, uid)
    for i in range(state - len(room.state)):
        room.send(CUSTOM_STATE_TYPE, {"n": i, "text": "bench state"}, creator, f"k{i:05d}")
    room.finish()
    return room


def smaps_mb(pids: list[int]) -> tuple[float, float]:
    """(RSS, PSS) in MB summed over ``pids`` from ``/proc/<pid>/smaps_rollup``."""
    rss = pss = 0
    for pid in pids:
        try:
            text = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            continue
        for line in text.splitlines():
            name, _, rest = line.partition(":")
            if name == "Rss":
                rss += int(rest.split()[0])
            elif name == "Pss":
                pss += int(rest.split()[0])
    return rss / 1024, pss / 1024


class PeakSampler:
    """Samples RSS/PSS of the given processes every ``interval`` seconds; keeps the peak."""

    def __init__(self, pids: list[int], interval: float = 0.1) -> None:
        self.pids = pids
        self.interval = interval
        self.peak = smaps_mb(pids)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            rss, pss = smaps_mb(self.pids)
            self.peak = (max(self.peak[0], rss), max(self.peak[1], pss))

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()


def concord_outcome(room_id: str) -> dict[str, int]:
    """What Concord holds for the room: current state, joined members in it, chat members."""
    from django.db import close_old_connections

    from federation.models import MatrixEvent, MatrixRoom
    from rooms.models import Membership

    close_old_connections()
    mroom = MatrixRoom.objects.filter(room_id=room_id).first()
    if mroom is None:
        return {"state": 0, "joined": 0, "chat_members": 0, "events": 0}
    state = mroom.current_state or []
    member_ids = [eid for t, _, eid in state if t == "m.room.member"]
    joined = MatrixEvent.objects.filter(event_id__in=member_ids, pdu__content__membership="join").count()
    chat = Membership.objects.filter(room=mroom.chat_room, state=Membership.JOINED).count() \
        if mroom.chat_room is not None else 0
    return {"state": len(state), "joined": joined, "chat_members": chat,
            "events": MatrixEvent.objects.filter(room=mroom).count()}


def synapse_join(synapse: SynapseServer, room_id: str, via: str, timeout: float, concord_s: float,
                 concord_cpu: float) -> None:
    """Time a Synapse user's join of the peer's room; print it next to Concord's figures."""
    import requests

    from tests.federation.rooms_helpers import SynapseUser

    synapse.start()
    user = SynapseUser(synapse, f"joiner{int(time.time())}")
    time.sleep(3)
    assert synapse.proc is not None
    pids = [synapse.proc.pid]
    before = smaps_mb(pids)
    cpu0 = cpu_seconds(pids)
    load = os.getloadavg()[0]
    finished = True
    with PeakSampler(pids) as sampler:
        start = time.perf_counter()
        try:
            r = synapse.session().post(
                f"{synapse.base_url}/_matrix/client/v3/join/{quote(room_id, safe='')}", json={},
                params={"server_name": via}, headers={"Authorization": f"Bearer {user.token}"}, timeout=timeout)
            if r.status_code != 200:
                raise RuntimeError(f"Synapse could not join: {r.status_code} {r.text[:500]}")
        except requests.Timeout:
            finished = False
        took = time.perf_counter() - start
    cpu = cpu_seconds(pids) - cpu0
    print(f"\nSynapse joins the same room (load average {load:.1f})")
    if not finished:
        print(f"  did not finish in {timeout:.0f} s (CPU {cpu:.1f} s so far; "
              f"RSS growth {sampler.peak[0] - before[0]:.0f} MB, PSS {sampler.peak[1] - before[1]:.0f} MB)")
        return
    joined = user._req("GET", f"/rooms/{quote(room_id, safe='')}/joined_members")
    members = len(joined.json().get("joined", {})) if joined.status_code == 200 else -1
    print(f"  time to joined (/join answered): {took:7.2f} s   joined members then: {members}")
    print(f"  CPU: {cpu:.1f} s   growth (peak - before): RSS {sampler.peak[0] - before[0]:.0f} MB, "
          f"PSS {sampler.peak[1] - before[1]:.0f} MB")
    print(f"  ratio Synapse/Concord: time x{took / concord_s:.1f}, CPU x{cpu / concord_cpu:.1f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=10000, help="joined members of the room (>= 1)")
    parser.add_argument("--state", type=int, default=30000, help="state events in total (>= members + 5)")
    parser.add_argument("--room-version", default="10", choices=["10", "11", "12"])
    parser.add_argument("--timeout", type=float, default=1800, help="seconds to wait for Concord's join")
    parser.add_argument("--synapse", action="store_true", help="also join the room from Synapse")
    parser.add_argument("--synapse-timeout", type=float, default=600, help="seconds to wait for Synapse's join")
    parser.add_argument("--database-url", default=os.environ.get(
        "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/concord_joinbench"))
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/8"))
    args = parser.parse_args()
    if args.members < 1 or args.state < args.members + 5:
        parser.error("need --members >= 1 and --state >= --members + 5")

    workdir = Path(tempfile.mkdtemp(prefix="concord-joinbench-"))
    os.environ.update({
        "DJANGO_SETTINGS_MODULE": "chat.settings", "DATABASE_URL": args.database_url, "REDIS_URL": args.redis_url,
        "CONCORD_REDIS_PREFIX": "concord-joinbench", "CONCORD_DATA_DIR": str(workdir / "data"),
        "CONCORD_OPEN_REGISTRATION": "0",
    })
    (workdir / "data").mkdir()
    ca = make_ca(workdir / "ca")
    concord = Concord(ca, workdir)
    prepare_database(args.database_url)
    concord_user("benchuser", "bench-password")
    peer = BenchPeer(ca)
    synapse = SynapseServer(workdir / "synapse", ca) if args.synapse else None
    try:
        t0 = time.perf_counter()
        room = build_big_room(peer, args.room_version, args.members, args.state)
        print(f"peer room {room.room_id}: {len(room.state)} state events, "
              f"{sum(1 for t, _ in room.state if t == 'm.room.member')} members, "
              f"v{args.room_version} (built in {time.perf_counter() - t0:.1f} s)", flush=True)
        concord.start()
        time.sleep(3)  # let the processes settle before measuring
        api = _concord_api(concord.base_url, ca, "benchuser", "bench-password")
        pids, pg = concord.pids(), postgres_pids()
        before = smaps_mb(pids)
        cpu0, pg0 = cpu_seconds(pids), cpu_seconds(pg)
        load = os.getloadavg()[0]
        with PeakSampler(pids) as sampler:
            start = time.perf_counter()
            r = api.s.post(api.base + "channels.join", json={"roomId": room.room_id, "via": [peer.server_name]},
                           timeout=args.timeout)
            usable = time.perf_counter() - start
            answer = r.json()
            if not answer.get("success"):
                raise RuntimeError(f"Concord could not join: {r.status_code} {answer}")
            at_usable = concord_outcome(room.room_id)
            expected = args.members + 1
            deadline = start + args.timeout
            outcome = at_usable
            while outcome["chat_members"] < expected and time.perf_counter() < deadline:
                time.sleep(0.1)
                outcome = concord_outcome(room.room_id)
            full = time.perf_counter() - start
        cpu, pg_cpu = cpu_seconds(pids) - cpu0, cpu_seconds(pg) - pg0
        after = smaps_mb(pids)
        print(f"\nConcord joins a room of {args.members} members / {args.state} state events "
              f"(room v{args.room_version}; load average {load:.1f} on {os.cpu_count()} cores)")
        print(f"  time to usable (channels.join answered): {usable:7.2f} s   "
              f"chat members then: {at_usable['chat_members']}")
        print(f"  time to full membership:                 {full:7.2f} s   "
              f"chat members: {outcome['chat_members']} (expected {expected})")
        print(f"  CPU: web + worker {cpu:.1f} s, PostgreSQL {pg_cpu:.1f} s")
        print(f"  memory (MB)   before RSS {before[0]:6.0f} PSS {before[1]:6.0f}   "
              f"peak RSS {sampler.peak[0]:6.0f} PSS {sampler.peak[1]:6.0f}   "
              f"after RSS {after[0]:6.0f} PSS {after[1]:6.0f}")
        print(f"  growth (peak - before): RSS {sampler.peak[0] - before[0]:.0f} MB, "
              f"PSS {sampler.peak[1] - before[1]:.0f} MB")
        print(f"  Concord holds: {outcome['state']} current state events ({outcome['joined']} joined members), "
              f"{outcome['events']} events of the room stored")
        if synapse is not None:
            synapse_join(synapse, room.room_id, peer.server_name, args.synapse_timeout, usable, cpu)
    finally:
        peer.close()
        concord.stop()
        if synapse is not None:
            synapse.stop()
        if not os.environ.get("BENCH_KEEP"):
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
