"""Restarts under traffic: PostgreSQL restarted, Redis restarted, the web server and the Celery
worker SIGKILLed while a client posts into a federated room. Afterwards every message exists
exactly once, in the order it was posted, on this Concord and on the other one, and a live
client that reconnected and caught up has each message exactly once.

Concord A runs the production way as separate processes (``uvicorn`` web, ``celery worker``,
``celery beat``: :class:`~tests.federation.peer_concord.ConcordPeer`) on a PostgreSQL and a
redis-server of this test's own (:class:`OwnPostgres`, :class:`OwnRedis`: free loopback ports,
temp directories), because those are what gets restarted; the machine's shared ones are never
touched. Concord B is the session's second Concord (``concord_peer``); it is never disturbed.
A public channel on A is federated and B's user joins it by alias; then:

* a poster sends N messages one after another with ``chat.sendMessage`` and a client-chosen
  ``message._id``, retrying the same ``_id`` after any failure (connection refused, timeout, 5xx)
  until it is accepted; ``error-message-id-exists`` on a retry means an earlier attempt was
  stored (Rocket.Chat also refuses a second message with a known ``_id``), so retries never make
  a second copy;
* a listener holds the live WebSocket of another member of the room; whenever its socket drops
  (the server's ``resync`` + close 4008, or the web process dying) it reconnects and, after the
  ``ready`` frame, fetches what it missed with ``channels.history`` ``oldest`` = the newest
  message it has (``inclusive``), merging by ``_id`` as the web client does;
* while the messages flow: ``pg_ctl restart -m fast``; Redis stopped (SIGTERM) and started again
  on the same port *without persistence* (everything in it, Celery's queue included, is lost:
  the federation outbox lives in PostgreSQL and beat re-drives it, so nothing may depend on
  Redis keeping data); the web server SIGKILLed and started again; the worker SIGKILLed (a
  transaction may be in flight, its lease left behind) and started again.

What it proves: A's ``channels.history`` holds exactly the posted IDs in order; B's history of
the room holds each text exactly once, in order (waited for with a deadline: the outbox retries
with back-off); the listener's merged view holds exactly the posted IDs, it never got the same
message twice on one connection, and it really reconnected (Redis restart and web kill each
drop it). Marked ``synapse``: it runs where the other multi-process scenarios run (the
PostgreSQL suite), and it is skipped where no PostgreSQL server binaries are installed.
"""

from __future__ import annotations

import json
import os
import shutil
import ssl
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from websockets.exceptions import ConnectionClosed, InvalidHandshake
from websockets.sync.client import connect as ws_connect

from tests.federation.peer_concord import ConcordPeer
from tests.federation.rooms_helpers import wait_for
from tests.federation.synapse_harness import TestCA
from tests.own_servers import OwnPostgres, OwnRedis, postgres_bin, postgres_unavailable

pytestmark = [pytest.mark.synapse]

MESSAGES = 60
"""How many messages the poster sends; the disruptions happen after these many were accepted:"""
PG_RESTART_AT, REDIS_RESTART_AT, WEB_KILL_AT, WORKER_KILL_AT = 8, 20, 32, 44
POST_DEADLINE = 120.0  # seconds for all messages to be accepted (restarts included)


@pytest.fixture
def concord_a(tmp_path: Path, fed_ca: TestCA) -> Iterator[tuple[ConcordPeer, OwnPostgres, OwnRedis]]:
    """Concord A (web, worker, beat) on its own PostgreSQL and Redis."""
    why = postgres_unavailable()
    bindir = postgres_bin()
    if why is not None or bindir is None:
        pytest.skip(f"{why}: the test restarts a PostgreSQL of its own")
    pg, redis = OwnPostgres(bindir), OwnRedis()
    a: ConcordPeer | None = None
    try:
        pg.start()
        redis.start()
        a = ConcordPeer(tmp_path / "a", fed_ca, database_url=pg.url(), redis_url=redis.url)
        a.setup()
        a.start()
        a.worker_ready()
        yield a, pg, redis
    finally:
        if a is not None:
            a.close()
            keep = os.environ.get("CONCORD_TEST_KEEP_LOGS")
            if keep:
                for log in (tmp_path / "a").glob("*.log"):
                    shutil.copy(log, Path(keep) / f"restarts-a-{log.name}")
        redis.close()
        pg.close()


class Poster(threading.Thread):
    """Posts ``ids`` in order through ``chat.sendMessage``, each retried with the same ``_id`` until accepted."""

    def __init__(self, base_url: str, headers: dict[str, str], verify: str, rid: str, ids: list[str],
                 texts: dict[str, str]) -> None:
        super().__init__(daemon=True)
        self.url = base_url + "/api/v1/chat.sendMessage"
        self.s = requests.Session()
        self.s.trust_env = False
        self.s.verify = verify
        self.s.headers.update(headers)
        self.rid, self.ids, self.texts = rid, ids, texts
        self.accepted = 0
        self.failures: list[str] = []
        self.already_stored = 0  # retries answered error-message-id-exists (an earlier attempt was stored)
        self.error: str | None = None
        self.stop = threading.Event()

    def run(self) -> None:
        deadline = time.time() + POST_DEADLINE
        for mid in self.ids:
            while True:
                if self.stop.is_set() or time.time() > deadline:
                    self.error = f"gave up on {mid} after {len(self.failures)} failed attempts: {self.failures[-5:]}"
                    return
                try:
                    r = self.s.post(self.url, json={"message": {"_id": mid, "rid": self.rid, "msg": self.texts[mid]}},
                                    timeout=15)
                    body = r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
                    if r.status_code == 200 and body.get("success"):
                        break
                    if r.status_code == 400 and body.get("errorType") == "error-message-id-exists":
                        self.already_stored += 1
                        break
                    self.failures.append(f"{mid}: HTTP {r.status_code} {r.text[:120]}")
                except (requests.RequestException, ValueError) as exc:
                    self.failures.append(f"{mid}: {type(exc).__name__}")
                time.sleep(0.2)
            self.accepted += 1


class Listener(threading.Thread):
    """A member's live WebSocket that reconnects after every drop and then catches up over REST."""

    def __init__(self, base_url: str, headers: dict[str, str], ca: TestCA, rid: str) -> None:
        super().__init__(daemon=True)
        self.ws_url = base_url.replace("https://", "wss://") + (
            f"/websocket?token={headers['X-Auth-Token']}&user_id={headers['X-User-Id']}")
        self.history_url = base_url + "/api/v1/channels.history"
        self.ssl = ssl.create_default_context(cafile=str(ca.ca_cert))
        self.s = requests.Session()
        self.s.trust_env = False
        self.s.verify = str(ca.ca_cert)
        self.s.headers.update(headers)
        self.rid = rid
        self.known: dict[str, dict[str, Any]] = {}  # message _id -> message, live or fetched
        self.lock = threading.Lock()
        self.connections = 0
        self.resync_frames = 0
        self.close_codes: list[int | None] = []
        self.live_twice: list[str] = []  # the same message.new twice on one connection
        self.live_count = 0
        self.fetched_count = 0
        self.stop = threading.Event()

    def _merge(self, msg: dict[str, Any]) -> None:
        with self.lock:
            self.known[str(msg["_id"])] = msg

    def _catch_up(self) -> None:
        """``channels.history`` with ``oldest`` = the newest message held (inclusive), until it answers."""
        while not self.stop.is_set():
            with self.lock:
                newest = max((m["ts"] for m in self.known.values()), default=None)
            params: dict[str, Any] = {"roomId": self.rid, "count": 500}
            if newest is not None:
                params.update(oldest=newest, inclusive="true")
            try:
                r = self.s.get(self.history_url, params=params, timeout=15)
                if r.status_code == 200:
                    for msg in r.json()["messages"]:
                        if not msg.get("t"):
                            self._merge(msg)
                            self.fetched_count += 1
                    return
            except (requests.RequestException, ValueError):
                pass
            time.sleep(0.3)

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                with ws_connect(self.ws_url, ssl=self.ssl, open_timeout=5) as conn:
                    ready = json.loads(conn.recv(timeout=10))
                    if ready.get("type") != "ready":
                        continue
                    self.connections += 1
                    self._catch_up()
                    this_connection: set[str] = set()
                    while not self.stop.is_set():
                        try:
                            ev = json.loads(conn.recv(timeout=0.5))
                        except TimeoutError:
                            continue
                        if ev.get("type") == "resync":
                            self.resync_frames += 1
                        elif ev.get("type") == "message.new" and ev.get("room_id") == self.rid:
                            mid = str(ev["data"]["_id"])
                            if mid in this_connection:
                                self.live_twice.append(mid)
                            this_connection.add(mid)
                            self.live_count += 1
                            self._merge(ev["data"])
            except ConnectionClosed as exc:
                self.close_codes.append(exc.rcvd.code if exc.rcvd is not None else None)
            except (OSError, InvalidHandshake, TimeoutError):
                pass
            time.sleep(0.2)

    def ids_in_order(self) -> list[str]:
        with self.lock:
            return [m["_id"] for m in sorted(self.known.values(), key=lambda m: (m["ts"], m["_id"]))]


def _user_messages(session: requests.Session, base_url: str, rid: str) -> list[dict[str, Any]]:
    r = session.get(base_url + "/api/v1/channels.history", params={"roomId": rid, "count": 500}, timeout=15)
    r.raise_for_status()
    return [m for m in reversed(r.json()["messages"]) if not m.get("t")]


def _session(client: Any, ca: TestCA) -> requests.Session:
    s = requests.Session()
    s.trust_env = False
    s.verify = str(ca.ca_cert)
    s.headers.update(dict(client.headers))
    return s


def _wait_progress(poster: Poster, count: int) -> None:
    wait_for(lambda: poster.accepted >= count or not poster.is_alive(), timeout=POST_DEADLINE,
             what=f"{count} messages accepted")
    assert poster.error is None, poster.error


def test_restarts_under_traffic_every_message_once_in_order_everywhere(
        concord_a: tuple[ConcordPeer, OwnPostgres, OwnRedis], concord_peer: ConcordPeer, fed_ca: TestCA) -> None:
    a, pg, redis = concord_a
    b = concord_peer
    uid = uuid.uuid4().hex[:6]
    alice = a.register(f"ra{uid}", "Restart Alice")
    listener_user = a.register(f"rl{uid}", "Restart Listener")
    bob = b.register(f"rb{uid}", "Restart Bob")
    rid = alice.channels_create(f"restarts{uid}", members=[f"rl{uid}"])["channel"]["_id"]
    info = alice.call_api_post("rooms.federation", roomId=rid, roomVersion="12")
    assert info.get("success"), info
    joined = bob.channels_join(info["federation"]["alias"], None)
    assert joined.get("success"), joined
    b_rid = joined["channel"]["_id"]

    ids = [f"rt{uid}{n:03d}" for n in range(MESSAGES)]
    texts = {mid: f"restart message {n:03d} {uid}" for n, mid in enumerate(ids)}
    poster = Poster(a.base_url, dict(alice.headers), str(fed_ca.ca_cert), rid, ids, texts)
    listener = Listener(a.base_url, dict(listener_user.headers), fed_ca, rid)
    listener.start()
    wait_for(lambda: listener.connections >= 1, what="the listener's first ready frame")
    started = time.monotonic()
    phases: list[str] = []

    def phase(name: str) -> None:
        phases.append(f"{name} {time.monotonic() - started:.1f}s")

    poster.start()
    try:
        _wait_progress(poster, PG_RESTART_AT)
        pg.restart()
        phase("postgres restarted")
        _wait_progress(poster, REDIS_RESTART_AT)
        redis.restart()
        phase("redis restarted")
        _wait_progress(poster, WEB_KILL_AT)
        a.kill_web()
        a.start_web()
        phase("web restarted")
        _wait_progress(poster, WORKER_KILL_AT)
        a.kill_worker()
        a.start_worker()
        phase("worker restarted")
        _wait_progress(poster, MESSAGES)
        phase("all accepted")
    except BaseException:
        poster.stop.set()
        raise
    finally:
        poster.join(timeout=POST_DEADLINE)
    assert poster.error is None, poster.error

    # A: every message exactly once, in the order posted
    a_history = _user_messages(_session(alice, fed_ca), a.base_url, rid)
    assert [m["_id"] for m in a_history] == ids, (
        f"A's history differs from what was posted (failed attempts: {poster.failures})")

    # B: every text exactly once, in order (the outbox delivers with back-off)
    expected = [texts[mid] for mid in ids]
    b_session = _session(bob, fed_ca)

    def b_texts() -> list[str]:
        return [str(m["msg"]) for m in _user_messages(b_session, b.base_url, b_rid)]

    try:
        wait_for(lambda: len(b_texts()) >= MESSAGES, timeout=60, what="every message on B")
    except AssertionError:
        raise AssertionError(f"B has {len(b_texts())} of {MESSAGES}: missing "
                             f"{sorted(set(expected) - set(b_texts()))}\n--- A worker\n{a.log_tail('worker.log')}")
    assert b_texts() == expected
    phase("all on B")

    # the listener: every message exactly once after its resyncs, and it did have to resync
    try:
        wait_for(lambda: set(listener.ids_in_order()) >= set(ids), timeout=30, what="the listener caught up")
    finally:
        listener.stop.set()
        listener.join(timeout=10)
    assert listener.ids_in_order() == ids
    assert listener.live_twice == []
    assert listener.connections >= 3, (  # the Redis restart (resync + 4008) and the web kill each drop it
        f"the listener connected {listener.connections} times (closes: {listener.close_codes})")
    print(f"\nposted {MESSAGES}: {len(poster.failures)} failed attempts, {poster.already_stored} retries found "
          f"the message already stored; listener: {listener.connections} connections, close codes "
          f"{listener.close_codes}, {listener.resync_frames} resync frames, {listener.live_count} live, "
          f"{listener.fetched_count} fetched; {', '.join(phases)}")
