"""Benchmark: inbound federation transactions into Concord and into Synapse, on the same input.

Run: ``.venv/bin/python -m bench.federation_bench [--messages 2000] [--rooms 10] [--room-version 10]``

What runs, all on this machine (nothing leaves 127.0.0.0/8):

* a throw-away CA (``tests.federation.synapse_harness.make_ca``) for every TLS listener;
* **Concord** as in production: ``uvicorn chat.asgi:application`` over TLS (one process, the
  ``Procfile``'s web command) plus a Celery worker (``--pool prefork --concurrency 2``), on
  PostgreSQL (``--database-url``, a database created and flushed for the run) and Redis;
* **Synapse** (``matrix-synapse`` from the venv, SQLite, its defaults plus relaxed rate limits) via
  ``tests.federation.synapse_harness.SynapseServer``;
* a **synthetic peer** ``127.0.0.1:<port>``: its own Ed25519 key, an HTTPS server that serves its
  key (``/_matrix/key/v2/server``), ``make_join`` / ``v2/send_join``, ``event``, ``state_ids``,
  ``get_missing_events``, ``backfill``, ``query/profile`` and accepts ``/send``. Both servers fetch
  its key the way they fetch any key; nothing is pre-seeded.

Set-up (not timed): the peer creates 1 + ``--rooms`` rooms (a real DAG built with the protocol
core: create, creator join, power levels, public join rules, history visibility, five more peer
users joining); a Concord user joins each room through ``channels.join`` (Concord does
make_join/send_join against the peer), then a Synapse user joins through the client API (Synapse
does make_join/send_join); the peer forwards Synapse's join events to Concord in a transaction, so
both servers hold the same DAG. Then the peer builds ``--messages`` signed ``m.room.message``
events for the single room and ``--messages`` spread round-robin over the ``--rooms`` rooms.

Measured: the peer pushes the same transactions (``--batch`` PDUs each, 50 by default, the spec's
limit) to each server, one at a time as a sending server does (one transaction in flight per
destination); the request bodies and X-Matrix headers are built before the clock starts.
* *accepted/s*: PDUs / time until the last ``/send`` was answered 200 (per-PDU errors counted);
* *persisted/s*: PDUs actually persisted (accepted, not rejected, not soft-failed, not outliers;
  counted in each server's database afterwards) / time until the server is done: for Concord the
  moment the last event of every room is persisted and mirrored into the chat (its chat message
  exists), polled every 20 ms; for Synapse the
  moment its inbound staging table is empty and the last event of every room is visible through
  ``GET /rooms/{id}/event/{id}`` of its joined user, polled every 20 ms. Both answer ``/send``
  once the PDUs are staged and persist them in the background; when a room's staging area grows
  past about a hundred events it prunes it (keeping the newest), so under this load it persists
  only part of what it accepted; the rest would be fetched later only if a client paginates.
  The count of persisted events is printed for both, so neither can look fast by dropping work.
CPU seconds of the server's processes (and of PostgreSQL, which other sessions may share) during
each push are printed next to the wall-clock figures.

Memory: RSS of Concord's web process + Celery worker (main + pool children) next to Synapse's,
idle (after start-up, before any federation traffic) and after the run; PSS is printed too, since
prefork children share pages with their parent and plain RSS counts those twice.

Runs alternate Concord and Synapse (one room, then ten rooms), so machine load hits both alike.
This is a benchmark, not a test: it asserts nothing about speed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import sqlite3
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from federation.protocol import (  # noqa: E402
    CREATE_KEY,
    Event,
    RoomVersion,
    SigningKey,
    StateKey,
    build_create_event,
    build_event,
    encode_canonical_json,
    get_room_version,
    select_auth_event_ids,
    sign_json,
)
from tests.federation.synapse_harness import SynapseServer, TestCA, free_port, make_ca  # noqa: E402

PEER_USERS = ["alice", "bob", "carol", "dave", "erin", "frank"]


def now_ms() -> int:
    return int(time.time() * 1000)


def x_matrix(method: str, uri: str, origin: str, destination: str, key: SigningKey, content: Any = None) -> str:
    """An X-Matrix ``Authorization`` header (spec "Request Authentication")."""
    from unpaddedbase64 import encode_base64

    obj: dict[str, Any] = {"method": method, "uri": uri, "origin": origin, "destination": destination}
    if content is not None:
        obj["content"] = content
    sig = encode_base64(key.sign(encode_canonical_json(obj)))
    return f'X-Matrix origin="{origin}",destination="{destination}",key="{key.key_id}",sig="{sig}"'


# --------------------------------------------------------------------------- the synthetic peer


@dataclass
class BenchRoom:
    """A room of the peer: a linear DAG with the state after every event."""

    peer: BenchPeer
    rv: RoomVersion
    creator: str
    room_id: str = ""
    events: dict[str, Event] = field(default_factory=dict)
    state_after: dict[str, dict[StateKey, str]] = field(default_factory=dict)
    state: dict[StateKey, str] = field(default_factory=dict)
    last: Event | None = None
    ts: int = field(default_factory=now_ms)

    def create(self) -> None:
        ev = build_create_event(self.rv, sender=self.creator, origin_server_ts=self.tick(),
                                server_name=self.peer.server_name, signing_key=self.peer.key,
                                room_id=None if self.rv.room_id_is_create_hash else
                                f"!b{self.ts}{len(self.peer.rooms)}:{self.peer.server_name}")
        self.room_id = ev.room_id
        self.apply(ev)

    def tick(self) -> int:
        self.ts += 1
        return self.ts

    def apply(self, ev: Event) -> Event:
        """Append ``ev`` (already checked by its builder) to the DAG."""
        self.events[ev.event_id] = ev
        if ev.state_key is not None:
            self.state = dict(self.state)
            self.state[(ev.type, ev.state_key)] = ev.event_id
        self.state_after[ev.event_id] = self.state
        self.last = ev
        return ev

    def make(self, event_type: str, content: dict[str, Any], sender: str, state_key: str | None = None) -> Event:
        assert self.last is not None
        return build_event(self.rv, room_id=self.room_id, event_type=event_type, sender=sender, content=content,
                           prev_events=[self.last], state=self.state, origin_server_ts=self.tick(),
                           server_name=self.peer.server_name, signing_key=self.peer.key, state_key=state_key)

    def send(self, event_type: str, content: dict[str, Any], sender: str, state_key: str | None = None) -> Event:
        return self.apply(self.make(event_type, content, sender, state_key))

    def auth_chain(self, event_ids: Iterable[str]) -> list[str]:
        seen: list[str] = []
        frontier = list(event_ids)
        while frontier:
            nxt = []
            for eid in frontier:
                ev = self.events.get(eid)
                for a in ev.auth_event_ids if ev is not None else ():
                    if a not in seen:
                        seen.append(a)
                        nxt.append(a)
            frontier = nxt
        if self.rv.room_id_is_create_hash and CREATE_KEY in self.state and self.state[CREATE_KEY] not in seen:
            seen.append(self.state[CREATE_KEY])
        return seen

    def join_template(self, user_id: str) -> dict[str, Any]:
        assert self.last is not None
        content = {"membership": "join"}
        return {"room_id": self.room_id, "type": "m.room.member", "state_key": user_id, "sender": user_id,
                "content": content, "origin_server_ts": now_ms(), "depth": self.last.depth + 1,
                "prev_events": [self.last.event_id],
                "auth_events": select_auth_event_ids(self.rv, "m.room.member", user_id, user_id, content,
                                                     self.state)}


class BenchPeer:
    """The synthetic remote homeserver ``127.0.0.1:<port>`` (see the module docstring)."""

    def __init__(self, ca: TestCA) -> None:
        self.port = free_port()
        self.server_name = f"127.0.0.1:{self.port}"
        self.key = SigningKey.generate(f"b{self.port}")
        self.rooms: dict[str, BenchRoom] = {}
        self.remote_joins: list[tuple[str, Event]] = []  # (room_id, join event) received by send_join
        self.lock = threading.Lock()
        cert, keyfile = ca.issue(f"bench-peer-{self.port}")
        peer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, code: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _body(self) -> Any:
                length = int(self.headers.get("Content-Length") or 0)
                return json.loads(self.rfile.read(length) or b"{}")

            def _route(self, method: str) -> None:
                url = urlparse(self.path)
                parts = [unquote(p) for p in url.path.split("/")]
                query = parse_qs(url.query)
                body = self._body() if method in ("PUT", "POST") else None
                try:
                    with peer.lock:
                        code, answer = peer.handle(method, parts, query, body)
                except Exception as exc:  # a bench peer: say what went wrong
                    code, answer = 500, {"errcode": "M_UNKNOWN", "error": repr(exc)}
                self._send(code, answer)

            def do_GET(self) -> None:
                self._route("GET")

            def do_PUT(self) -> None:
                self._route("PUT")

            def do_POST(self) -> None:
                self._route("POST")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.httpd.daemon_threads = True
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(cert), str(keyfile))
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def user(self, name: str) -> str:
        return f"@{name}:{self.server_name}"

    def new_room(self, version: str) -> BenchRoom:
        """A public room with six joined peer users."""
        room = BenchRoom(self, get_room_version(version), self.user(PEER_USERS[0]))
        room.create()
        self.rooms[room.room_id] = room
        creator = room.creator
        room.send("m.room.member", {"membership": "join"}, creator, creator)
        users = {} if room.rv.room_id_is_create_hash else {creator: 100}
        room.send("m.room.power_levels", {"users": users}, creator, "")
        room.send("m.room.join_rules", {"join_rule": "public"}, creator, "")
        room.send("m.room.history_visibility", {"history_visibility": "shared"}, creator, "")
        for name in PEER_USERS[1:]:
            room.send("m.room.member", {"membership": "join", "displayname": name.title()}, self.user(name),
                      self.user(name))
        return room

    def key_response(self) -> dict[str, Any]:
        body = {"server_name": self.server_name, "valid_until_ts": now_ms() + 86400_000,
                "verify_keys": {self.key.key_id: {"key": self.key.verify_key.encode()}}, "old_verify_keys": {}}
        return sign_json(body, self.server_name, self.key)

    def handle(self, method: str, parts: list[str], query: dict[str, list[str]],
               body: Any) -> tuple[int, Any]:
        """Answer one request; ``parts`` is the decoded path split on ``/``."""
        path = "/".join(parts[:4])
        if parts[1:5] == ["_matrix", "key", "v2", "server"]:
            return 200, self.key_response()
        if path == "/_matrix/federation/v1" or path == "/_matrix/federation/v2":
            endpoint = parts[4] if len(parts) > 4 else ""
            args = parts[5:]
            fn: Callable[..., tuple[int, Any]] | None = getattr(self, f"on_{method.lower()}_{endpoint}", None)
            if fn is not None:
                return fn(args, query, body)
        return 404, {"errcode": "M_UNRECOGNIZED", "error": "Unrecognized request"}

    # endpoints (only what a server needs to join, catch up and talk to us)

    def on_get_version(self, args: list[str], query: Any, body: Any) -> tuple[int, Any]:
        return 200, {"server": {"name": "concord-bench-peer", "version": "1"}}

    def on_put_send(self, args: list[str], query: Any, body: Any) -> tuple[int, Any]:
        return 200, {"pdus": {}}

    def on_get_query(self, args: list[str], query: Any, body: Any) -> tuple[int, Any]:
        user = query.get("user_id", [""])[0]
        return 200, {"displayname": user[1:].split(":", 1)[0].title()}

    def on_get_make_join(self, args: list[str], query: Any, body: Any) -> tuple[int, Any]:
        room = self.rooms.get(args[0])
        if room is None:
            return 404, {"errcode": "M_NOT_FOUND", "error": "Unknown room"}
        if room.rv.identifier not in query.get("ver", ["1"]):
            return 400, {"errcode": "M_INCOMPATIBLE_ROOM_VERSION", "room_version": room.rv.identifier}
        return 200, {"room_version": room.rv.identifier, "event": room.join_template(args[1])}

    def on_put_send_join(self, args: list[str], query: Any, body: Any) -> tuple[int, Any]:
        room = self.rooms.get(args[0])
        if room is None:
            return 404, {"errcode": "M_NOT_FOUND", "error": "Unknown room"}
        event = Event(body, room.rv)
        if event.type != "m.room.member" or event.event_id != args[1]:
            return 400, {"errcode": "M_BAD_JSON", "error": "not the join event"}
        state_before = room.state
        room.apply(event)
        self.remote_joins.append((room.room_id, event))
        chain = room.auth_chain([*state_before.values(), event.event_id])
        servers = sorted({sk.split(":", 1)[1] for (t, sk) in room.state if t == "m.room.member"})
        return 200, {"origin": self.server_name, "event": dict(event.pdu), "members_omitted": False,
                     "servers_in_room": servers,
                     "state": [dict(room.events[e].pdu) for e in state_before.values()],
                     "auth_chain": [dict(room.events[e].pdu) for e in chain]}

    def on_get_event(self, args: list[str], query: Any, body: Any) -> tuple[int, Any]:
        for room in self.rooms.values():
            ev = room.events.get(args[0])
            if ev is not None:
                return 200, {"origin": self.server_name, "origin_server_ts": now_ms(), "pdus": [dict(ev.pdu)]}
        return 404, {"errcode": "M_NOT_FOUND", "error": "Unknown event"}

    def on_get_state_ids(self, args: list[str], query: Any, body: Any) -> tuple[int, Any]:
        room = self.rooms.get(args[0])
        eid = query.get("event_id", [""])[0]
        if room is None or eid not in room.events:
            return 404, {"errcode": "M_NOT_FOUND", "error": "Unknown event"}
        ev = room.events[eid]
        before = room.state_after.get(ev.prev_event_ids[0], {}) if ev.prev_event_ids else {}
        return 200, {"pdu_ids": list(before.values()), "auth_chain_ids": room.auth_chain(before.values())}

    def on_post_get_missing_events(self, args: list[str], query: Any, body: Any) -> tuple[int, Any]:
        room = self.rooms.get(args[0])
        if room is None:
            return 404, {"errcode": "M_NOT_FOUND", "error": "Unknown room"}
        earliest = set(body.get("earliest_events", []))
        limit = int(body.get("limit", 10))
        out: list[Event] = []
        for eid in body.get("latest_events", []):
            ev = room.events.get(eid)
            while ev is not None and len(out) < limit and ev.prev_event_ids:
                prev = room.events.get(ev.prev_event_ids[0])
                if prev is None or prev.event_id in earliest:
                    break
                out.append(prev)
                ev = prev
        return 200, {"events": [dict(e.pdu) for e in sorted(out, key=lambda e: e.depth)]}

    def on_get_backfill(self, args: list[str], query: Any, body: Any) -> tuple[int, Any]:
        return 200, {"origin": self.server_name, "origin_server_ts": now_ms(), "pdus": []}


# --------------------------------------------------------------------------- the two servers


@dataclass
class Target:
    """A server under test, as the peer sees it."""

    name: str
    server_name: str
    base_url: str
    pids: Callable[[], list[int]]
    persisted: Callable[[list[str]], bool]
    count_persisted: Callable[[list[str]], int]


def _wait_port(port: int, proc: subprocess.Popen[bytes], what: str, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if time.time() > deadline or proc.poll() is not None:
                raise RuntimeError(f"{what} did not start") from None
            time.sleep(0.1)


class Concord:
    """Concord's web (uvicorn over TLS) and Celery worker processes on the bench database."""

    def __init__(self, ca: TestCA, workdir: Path) -> None:
        self.port = free_port()
        self.server_name = f"127.0.0.1:{self.port}"
        self.base_url = f"https://127.0.0.1:{self.port}"
        cert, key = ca.issue(f"concord-{self.port}")
        os.environ.update({
            "CONCORD_SERVER_NAME": self.server_name, "CONCORD_TLS_CERT": str(cert), "CONCORD_TLS_KEY": str(key),
            "CONCORD_FEDERATION_CA_BUNDLE": str(ca.ca_cert), "CONCORD_FEDERATION_ALLOW_PRIVATE": "1",
            "CONCORD_FEDERATION_BACKOFF_MIN": "1", "CONCORD_FEDERATION_BACKOFF_MAX": "5",
            "CONCORD_LOG_LEVEL": os.environ.get("CONCORD_LOG_LEVEL", "WARNING"),
            "CONCORD_RATE_LIMITS": "off",  # the synthetic peer's burst measures throughput, not the limits
        })
        self.env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
        self.workdir = workdir
        self.web: subprocess.Popen[bytes] | None = None
        self.worker: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        bin_dir = Path(sys.executable).parent
        log = open(self.workdir / "concord.log", "ab")
        # BENCH_WEB_PROFILER, e.g. "py-spy record -f raw -o /tmp/web.txt --", wraps the web command.
        wrapper = os.environ.get("BENCH_WEB_PROFILER", "").split()
        self.web = subprocess.Popen(
            [*wrapper, str(bin_dir / "uvicorn"), "chat.asgi:application", "--host", "127.0.0.1",
             "--port", str(self.port),
             "--ws", "websockets-sansio", "--log-level", "warning", "--no-access-log",
             "--ssl-certfile", self.env["CONCORD_TLS_CERT"], "--ssl-keyfile", self.env["CONCORD_TLS_KEY"]],
            cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        self.worker = subprocess.Popen(
            [str(bin_dir / "celery"), "-A", "chat", "worker", "--loglevel", "WARNING", "--concurrency", "2",
             "--pool", "prefork"], cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        _wait_port(self.port, self.web, "Concord's web server")

    def stop(self) -> None:
        for proc in (self.web, self.worker):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGINT if proc is self.web else signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=5)

    def pids(self) -> list[int]:
        import psutil

        out: list[int] = []
        for proc in (self.web, self.worker):
            if proc is not None and proc.poll() is None:
                out.append(proc.pid)
                out.extend(c.pid for c in psutil.Process(proc.pid).children(recursive=True))
        return out


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds used so far by ``pids``."""
    import psutil

    total = 0.0
    for pid in pids:
        try:
            t = psutil.Process(pid).cpu_times()
            total += t.user + t.system
        except psutil.Error:
            continue
    return total


def postgres_pids() -> list[int]:
    import psutil

    return [p.pid for p in psutil.process_iter(["name"]) if (p.info["name"] or "").startswith("postgres")]


def rss_pss(pids: list[int]) -> tuple[float, float]:
    """(RSS, PSS) in MB summed over ``pids``."""
    import psutil

    rss = pss = 0
    for pid in pids:
        try:
            mem = psutil.Process(pid).memory_full_info()
        except psutil.Error:
            continue
        rss += mem.rss
        pss += getattr(mem, "pss", mem.rss)
    return rss / 2**20, pss / 2**20


# --------------------------------------------------------------------------- set-up


def prepare_database(url: str) -> None:
    """Create (if needed), migrate and flush the bench database; generate our signing key."""
    if url.startswith("postgres"):
        import psycopg

        name = url.rsplit("/", 1)[1].split("?")[0]
        with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
                conn.execute(f'CREATE DATABASE "{name}"')
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    call_command("flush", "--noinput", verbosity=0)
    from accounts.defaults import ensure_default_roles_and_permissions
    from federation.signing_key import get_signing_key

    ensure_default_roles_and_permissions()
    get_signing_key()


def concord_user(name: str, password: str) -> None:
    from django.contrib.auth.hashers import make_password

    from accounts.models import Role, User

    u = User.objects.create(username=name, email=f"{name}@example.test", password=make_password(password))
    u.roles.add(Role.objects.get(id="user"))


def concord_persisted(event_ids: list[str]) -> bool:
    """Persisted, and the messages among them mirrored into the chat (their chat message made)."""
    from django.db import close_old_connections

    from federation.models import BridgedMessage, MatrixEvent

    close_old_connections()
    stored = MatrixEvent.objects.filter(event_id__in=event_ids, outlier=False, rejected_reason="", soft_failed=False)
    if stored.count() != len(set(event_ids)):
        return False
    messages = list(stored.filter(type="m.room.message").values_list("event_id", flat=True))
    return BridgedMessage.objects.filter(event_id__in=messages).count() == len(messages)


def concord_count_persisted(event_ids: list[str]) -> int:
    from federation.models import MatrixEvent

    return MatrixEvent.objects.filter(event_id__in=event_ids, outlier=False, rejected_reason="",
                                      soft_failed=False).count()


def synapse_count_persisted(db: Path, event_ids: list[str]) -> int:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        (n,) = conn.execute(
            f"SELECT count(*) FROM events e WHERE e.event_id IN ({','.join('?' * len(event_ids))}) "
            "AND e.outlier = 0 AND NOT EXISTS (SELECT 1 FROM rejections r WHERE r.event_id = e.event_id)",
            event_ids).fetchone()
    finally:
        conn.close()
    return int(n)


def synapse_staged(db: Path) -> int:
    """Events Synapse has staged (answered in /send) but not processed yet."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        (n,) = conn.execute("SELECT count(*) FROM federation_inbound_events_staging").fetchone()
    finally:
        conn.close()
    return int(n)


def concord_count(room_ids: list[str]) -> str:
    from federation.models import BridgedMessage, MatrixEvent

    ids = list(MatrixEvent.objects.filter(room_id__in=room_ids, type="m.room.message", rejected_reason="",
                                          soft_failed=False, outlier=False).values_list("event_id", flat=True))
    bridged = BridgedMessage.objects.filter(event_id__in=ids).count()
    return f"{len(ids)} accepted m.room.message events, {bridged} chat messages"


def synapse_count(db: Path, room_ids: list[str]) -> str:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        marks = ",".join("?" * len(room_ids))
        (n,) = conn.execute(
            f"SELECT count(*) FROM events e WHERE e.room_id IN ({marks}) AND e.type = 'm.room.message' "
            "AND e.outlier = 0 AND NOT EXISTS (SELECT 1 FROM rejections r WHERE r.event_id = e.event_id)",
            room_ids).fetchone()
        (soft,) = conn.execute(
            f"SELECT count(*) FROM event_json j JOIN events e USING (event_id) WHERE e.room_id IN ({marks}) "
            "AND e.type = 'm.room.message' AND j.internal_metadata LIKE '%soft_failed\": true%'",
            room_ids).fetchone()
    finally:
        conn.close()
    return f"{n} accepted m.room.message events ({soft} soft-failed)"


def wait_until(check: Callable[[], bool], timeout: float, what: str, poll: float = 0.05) -> None:
    deadline = time.time() + timeout
    while not check():
        if time.time() > deadline:
            raise RuntimeError(f"timed out: {what}")
        time.sleep(poll)


# --------------------------------------------------------------------------- the measurement


@dataclass
class Result:
    pdus: int
    accepted_s: float
    persisted_s: float
    errors: int
    persisted: int
    cpu_s: float = 0.0
    pg_cpu_s: float = 0.0


def push(peer: BenchPeer, target: Target, session: Any, batches: list[list[dict[str, Any]]],
         last_ids: list[str], tag: str, all_ids: list[str] | None = None) -> Result:
    """Send the batches one transaction at a time; wait until the last events are persisted."""
    prepared = []
    for i, pdus in enumerate(batches):
        body = {"origin": peer.server_name, "origin_server_ts": now_ms(), "pdus": pdus, "edus": []}
        path = f"/_matrix/federation/v1/send/{tag}-{i}"
        auth = x_matrix("PUT", path, peer.server_name, target.server_name, peer.key, body)
        prepared.append((target.base_url + path, json.dumps(body).encode(),
                         {"Authorization": auth, "Content-Type": "application/json"}))
    errors = 0
    pids, pg = target.pids(), postgres_pids()
    cpu0, pg0 = cpu_seconds(pids), cpu_seconds(pg)
    start = time.perf_counter()
    for url, data, headers in prepared:
        r = session.put(url, data=data, headers=headers, timeout=600)
        if r.status_code != 200:
            raise RuntimeError(f"{target.name} answered {r.status_code}: {r.text[:500]}")
        errors += sum(1 for v in r.json().get("pdus", {}).values() if v)
    accepted = time.perf_counter() - start
    wait_until(lambda: target.persisted(last_ids), 900, f"{target.name} persisting", poll=0.02)
    persisted = time.perf_counter() - start
    cpu, pg_cpu = cpu_seconds(pids) - cpu0, cpu_seconds(pg) - pg0
    n = sum(len(b) for b in batches)
    return Result(n, accepted, persisted, errors, target.count_persisted(all_ids) if all_ids else n, cpu, pg_cpu)


def make_messages(rooms: list[BenchRoom], total: int, batch: int) -> tuple[list[list[dict[str, Any]]], list[str],
                                                                          list[str]]:
    """``total`` messages round-robin over ``rooms``, cut into transactions of ``batch`` PDUs."""
    pdus: list[dict[str, Any]] = []
    ids: list[str] = []
    for k in range(total):
        room = rooms[k % len(rooms)]
        sender = room.peer.user(PEER_USERS[k % len(PEER_USERS)])
        body = f"bench message {k}: " + "lorem ipsum " * (1 + k % 12)
        ev = room.send("m.room.message", {"msgtype": "m.text", "body": body}, sender)
        pdus.append(dict(ev.pdu))
        ids.append(ev.event_id)
    batches = [pdus[i:i + batch] for i in range(0, len(pdus), batch)]
    return batches, [r.last.event_id for r in rooms if r.last is not None], ids


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=2000, help="messages per scenario")
    parser.add_argument("--rooms", type=int, default=10, help="rooms of the second scenario")
    parser.add_argument("--batch", type=int, default=50, help="PDUs per transaction (at most 50)")
    parser.add_argument("--room-version", default="10", choices=["10", "11", "12"])
    parser.add_argument("--database-url", default=os.environ.get(
        "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/concord_fedbench"))
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/7"))
    args = parser.parse_args()
    if not 1 <= args.batch <= 50:
        parser.error("--batch must be 1..50")

    import requests

    from tests.federation.rooms_helpers import SynapseUser

    workdir = Path(tempfile.mkdtemp(prefix="concord-fedbench-"))
    os.environ.update({
        "DJANGO_SETTINGS_MODULE": "chat.settings", "DATABASE_URL": args.database_url, "REDIS_URL": args.redis_url,
        "CONCORD_REDIS_PREFIX": "concord-fedbench", "CONCORD_DATA_DIR": str(workdir / "data"),
        "CONCORD_OPEN_REGISTRATION": "0",
    })
    (workdir / "data").mkdir()
    ca = make_ca(workdir / "ca")
    concord = Concord(ca, workdir)
    prepare_database(args.database_url)
    concord_user("benchuser", "bench-password")
    synapse = SynapseServer(workdir / "synapse", ca)
    peer = BenchPeer(ca)
    session = requests.Session()
    session.trust_env = False
    session.verify = str(ca.ca_cert)
    try:
        concord.start()
        synapse.start()
        time.sleep(5)  # let both settle before measuring idle memory
        idle = {"Concord (web + worker)": rss_pss(concord.pids()),
                "Synapse": rss_pss([synapse.proc.pid] if synapse.proc else [])}
        # Set-up: rooms, joins (make_join/send_join by each server), Synapse's joins forwarded to Concord.
        single = [peer.new_room(args.room_version)]
        multi = [peer.new_room(args.room_version) for _ in range(args.rooms)]
        api = _concord_api(concord.base_url, ca, "benchuser", "bench-password")
        suser = SynapseUser(synapse, f"bench{int(time.time())}")
        for room in single + multi:
            r = api.post("channels.join", roomId=room.room_id, via=[peer.server_name])
            if not r.get("success"):
                raise RuntimeError(f"Concord could not join: {r}")
            resp = suser.join(room.room_id, via=[peer.server_name])
            if resp.status_code != 200:
                raise RuntimeError(f"Synapse could not join: {resp.text}")
        forwarded = [dict(ev.pdu) for _, ev in peer.remote_joins if ev.sender.endswith(":" + synapse.server_name)]
        concord_target = Target("Concord", concord.server_name, concord.base_url, concord.pids, concord_persisted,
                                concord_count_persisted)
        synapse_db = synapse.dir / "homeserver.db"

        def synapse_persisted(ids: list[str]) -> bool:
            if synapse_staged(synapse_db):
                return False  # still working through its staging area (it may also prune it)
            for rid_eid in ids:
                room_id = next(r.room_id for r in peer.rooms.values() if rid_eid in r.events)
                resp = suser._req("GET", f"/rooms/{quote(room_id, safe='')}/event/{quote(rid_eid, safe='')}")
                if resp.status_code != 200:
                    return False
            return True

        synapse_target = Target("Synapse", synapse.server_name, synapse.base_url,
                                lambda: [synapse.proc.pid] if synapse.proc else [], synapse_persisted,
                                lambda ids: synapse_count_persisted(synapse_db, ids))
        push(peer, concord_target, session, [forwarded[i:i + 50] for i in range(0, len(forwarded), 50)],
             [ev.event_id for _, ev in peer.remote_joins], "joins")

        results: dict[tuple[str, str], Result] = {}
        for label, rooms in ((f"1 room, {args.messages} messages", single),
                             (f"{len(multi)} rooms, {args.messages} messages", multi)):
            batches, last_ids, ids = make_messages(rooms, args.messages, args.batch)
            for target in (concord_target, synapse_target):
                results[(label, target.name)] = push(peer, target, session, batches, last_ids,
                                                     f"{label[:2].strip()}r{target.name}", ids)
            results_line(label, results)
        after = {"Concord (web + worker)": rss_pss(concord.pids()),
                 "Synapse": rss_pss([synapse.proc.pid] if synapse.proc else [])}
        print()
        all_rooms = [r.room_id for r in single + multi]
        print(f"Concord: {concord_count(all_rooms)}")
        print(f"Synapse: {synapse_count(synapse.dir / 'homeserver.db', all_rooms)}")
        print(f"(expected {2 * args.messages} each)")
        print()
        print("Memory (MB)            idle RSS   idle PSS   after-run RSS   after-run PSS")
        for name in idle:
            print(f"{name:<22} {idle[name][0]:8.0f}   {idle[name][1]:8.0f}   {after[name][0]:13.0f}"
                  f"   {after[name][1]:13.0f}")
    finally:
        session.close()
        peer.close()
        concord.stop()
        synapse.stop()
        if not os.environ.get("BENCH_KEEP"):
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


def _concord_api(base_url: str, ca: TestCA, user: str, password: str) -> Any:
    """A logged-in Concord REST client over TLS (our CA)."""
    import requests

    from tests.federation.rooms_helpers import ConcordApi

    class TLSApi(ConcordApi):
        def __init__(self) -> None:
            self.base = base_url.rstrip("/") + "/api/v1/"
            self.s = requests.Session()
            self.s.trust_env = False
            self.s.verify = str(ca.ca_cert)
            r = self.s.post(self.base + "login", json={"user": user, "password": password}, timeout=30)
            r.raise_for_status()
            data = r.json()["data"]
            self.s.headers.update({"X-Auth-Token": data["authToken"], "X-User-Id": data["userId"]})

    return TLSApi()


def results_line(label: str, results: dict[tuple[str, str], Result]) -> None:
    """Print one scenario's figures and the ratio."""
    c, s = results[(label, "Concord")], results[(label, "Synapse")]
    print(f"\n{label} ({c.pdus} PDUs, transactions of up to 50, one in flight)")
    for name, r in (("Concord", c), ("Synapse", s)):
        print(f"  {name:<8} accepted {r.pdus / r.accepted_s:7.0f} PDUs/s ({r.accepted_s:6.2f} s)   "
              f"persisted {r.persisted:5d} of {r.pdus} in {r.persisted_s:6.2f} s = {r.persisted / r.persisted_s:7.0f}"
              f" PDUs/s   per-PDU errors {r.errors}   CPU {r.cpu_s:.1f} s (+PostgreSQL {r.pg_cpu_s:.1f} s)")
    print(f"  ratio Concord/Synapse: accepted x{(c.pdus / c.accepted_s) / (s.pdus / s.accepted_s):.2f}, "
          f"persisted x{(c.persisted / c.persisted_s) / (s.persisted / s.persisted_s):.2f}")


if __name__ == "__main__":
    sys.exit(main())
