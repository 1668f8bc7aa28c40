"""Beyond one machine, simulated by separate processes on separate ports against one PostgreSQL
and one Redis: a message posted through one web node reaches a WebSocket held by another web node
(both ways), and two Celery workers sharing the outbox never send the same events twice.

Node 1 is the test run's own server (``live_url``); node 2 is a ``uvicorn`` subprocess and the
workers are ``celery worker`` subprocesses, all with the same database, Redis, key prefix, data
directory (signing key) and federation settings. Marked ``synapse``: they run where the other
multi-process scenarios run (PostgreSQL: the SQLite suite's test database lives in memory)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.federation.conftest import ConcordTLS
from tests.federation.fakepeer import FakePeer
from tests.federation.rooms_helpers import ConcordApi, live_socket, wait_for
from tests.federation.synapse_harness import TestCA

pytestmark = [pytest.mark.synapse, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _shared_env(fed: ConcordTLS | None = None, ca: TestCA | None = None) -> dict[str, str]:
    """The environment of another process of this same deployment."""
    from django.conf import settings
    from django.db import connection

    db = settings.DATABASES["default"]
    if connection.vendor != "postgresql":
        pytest.fail("the scale-out scenario needs PostgreSQL (run it with DATABASE_URL set)")
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env.pop("CONCORD_CELERY_EAGER", None)
    env.update({
        "DJANGO_SETTINGS_MODULE": "chat.settings",
        "DATABASE_URL": f"postgres://{db.get('USER') or 'postgres'}@{db.get('HOST') or '127.0.0.1'}:"
                        f"{db.get('PORT') or 5432}/{db['NAME']}",
        "CONCORD_DATA_DIR": str(settings.DATA_DIR),
        "CONCORD_LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
    })
    if fed is not None and ca is not None:
        env.update({"CONCORD_SERVER_NAME": fed.server_name, "CONCORD_TLS_CERT": str(fed.cert),
                    "CONCORD_TLS_KEY": str(fed.key), "CONCORD_FEDERATION_CA_BUNDLE": str(ca.ca_cert),
                    "CONCORD_FEDERATION_ALLOW_PRIVATE": "1", "CONCORD_FEDERATION_BACKOFF_MIN": "0.2",
                    "CONCORD_FEDERATION_BACKOFF_MAX": "1"})
    return env


class Processes:
    """Subprocesses started by a test, stopped (and their logs shown on failure) at its end."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.procs: list[tuple[subprocess.Popen[bytes], Path]] = []

    def start(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        log = self.tmp / f"{name}.log"
        proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=open(log, "ab"), stderr=subprocess.STDOUT)
        self.procs.append((proc, log))
        return proc

    def logs(self) -> str:
        return "\n".join(f"--- {log.name}\n{log.read_text(errors='replace')[-2000:]}" for _, log in self.procs)

    def stop(self) -> None:
        for proc, _ in self.procs:
            proc.terminate()
        for proc, _ in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Processes]:
    p = Processes(tmp_path)
    yield p
    p.stop()


def test_a_message_through_one_web_node_reaches_a_socket_on_another(
        live_url: str, make_user: Any, procs: Processes) -> None:
    from rooms.actions.rooms import do_create_room

    port = _free_port()
    node2 = f"http://127.0.0.1:{port}"
    procs.start("web2", [sys.executable, "-m", "uvicorn", "chat.asgi:application", "--host", "127.0.0.1",
                         "--port", str(port), "--ws", "websockets-sansio", "--log-level", "warning",
                         "--lifespan", "off"], _shared_env())
    wait_for(lambda: _answers(node2), timeout=30, what=f"web node 2 up\n{procs.logs()}")
    alice, bob = make_user("nodealice"), make_user("nodebob")
    room = do_create_room(alice, "c", "nodes", members=[bob])
    a1, b2 = ConcordApi(live_url, "nodealice"), ConcordApi(live_url, "nodebob")
    b2.base = node2 + "/api/v1/"  # signed in through node 1 (the tests' password hasher), used on node 2
    with live_socket(node2, b2) as bob_ws, live_socket(live_url, a1) as alice_ws:
        time.sleep(0.5)  # both subscribed
        assert a1.post("chat.postMessage", roomId=room.id, text="from node 1")["success"]
        wait_for(lambda: "from node 1" in bob_ws.messages(room.id), what="node 1 -> socket on node 2")
        assert b2.post("chat.postMessage", roomId=room.id, text="from node 2")["success"]
        wait_for(lambda: "from node 2" in alice_ws.messages(room.id), what="node 2 -> socket on node 1")


def _answers(url: str) -> bool:
    try:
        return requests.get(url + "/health", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def test_two_workers_never_send_the_same_events_twice(fed: ConcordTLS, peer: FakePeer, fed_ca: TestCA,
                                                      procs: Processes) -> None:
    from federation.models import OutboundPDU
    from federation.store.outbox import enqueue_pdu, schedule_now

    env = _shared_env(fed, fed_ca)
    for n in (1, 2):
        procs.start(f"worker{n}", [sys.executable, "-m", "celery", "-A", "chat", "worker", "--pool", "solo",
                                   "--loglevel", "INFO", "-n", f"scale{n}-{os.getpid()}@localhost",
                                   "--without-gossip", "--without-mingle", "--without-heartbeat"], env)
    wait_for(lambda: all(b"ready." in log.read_bytes() for _, log in procs.procs if log.exists()),
             timeout=60, what=f"both workers ready\n{procs.logs()}")
    event_ids = []
    for batch in range(6):
        for n in range(25):
            eid = f"$scale{batch}-{n}"
            event_ids.append(eid)
            enqueue_pdu([peer.server_name], "!scale:x", eid, {"type": "m.room.message", "room_id": "!scale:x",
                                                                 "content": {"n": batch * 25 + n}})
        for _ in range(3):  # several sends asked for at once: both workers race for them
            schedule_now(peer.server_name)
        time.sleep(0.2)
    wait_for(lambda: not OutboundPDU.objects.filter(destination_id=peer.server_name).exists(), timeout=60,
             what=f"the outbox emptied\n{procs.logs()}")
    sent: dict[str, list[str]] = {}
    for txn_id, body in peer.transactions:
        for pdu in body["pdus"]:
            sent.setdefault(pdu["content"]["n"], []).append(txn_id)
    assert sorted(sent) == list(range(150))
    doubles = {n: txns for n, txns in sent.items() if len(set(txns)) > 1}
    assert not doubles, f"events sent in more than one transaction: {doubles}"
    assert len({t for t, _ in peer.transactions}) == len(peer.transactions), "a transaction was sent twice"


def _sessions(db_name: str) -> int:
    """PostgreSQL's count of sessions ever opened on the database (``pg_stat_database.sessions``)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute("SELECT sessions FROM pg_stat_database WHERE datname = %s", [db_name])
        return int(cursor.fetchone()[0])


def test_a_prefork_worker_reuses_its_database_connections_from_task_to_task(
        fed: ConcordTLS, fed_ca: TestCA, procs: Processes) -> None:
    """Celery's Django fix-up would close a prefork child's connection pool after every task (a new
    PostgreSQL session per task); chat/celery.py keeps the pool, so many tasks need a few sessions."""
    from django.conf import settings

    from federation.tasks import fetch_remote_media

    log = procs.tmp / "prefork.log"
    env = {**_shared_env(fed, fed_ca), "CONCORD_DB_POOL": "1"}  # as in production (the tests turn it off)
    procs.start("prefork", [sys.executable, "-m", "celery", "-A", "chat", "worker", "--pool", "prefork",
                            "--concurrency", "1", "--loglevel", "INFO", "-n", f"prefork-{os.getpid()}@localhost",
                            "--without-gossip", "--without-mingle", "--without-heartbeat"], env)
    wait_for(lambda: b"ready." in log.read_bytes(), timeout=60, what=f"the worker ready\n{procs.logs()}")
    fetch_remote_media.delay("warm-up")  # the child's first connections
    wait_for(lambda: log.read_bytes().count(b"succeeded") >= 1, timeout=30, what=f"the first task\n{procs.logs()}")
    db_name = settings.DATABASES["default"]["NAME"]
    before = _sessions(db_name)
    for n in range(30):
        fetch_remote_media.delay(f"nothing-pending-{n}")  # each reads the pending-media table
    wait_for(lambda: log.read_bytes().count(b"succeeded") >= 31, timeout=60, what=f"30 tasks\n{procs.logs()}")
    opened = _sessions(db_name) - before
    assert opened < 10, f"{opened} PostgreSQL sessions for 30 tasks"
