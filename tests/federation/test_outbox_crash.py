"""Killing the worker mid-send loses nothing and duplicates nothing (issue 5, outbox).

A real Celery worker process (``celery -A chat worker --pool solo`` on a queue of its own, on the test
database) sends the transport-level outbox (PDUs and EDUs queued with ``enqueue_pdu`` /
``enqueue_edu``) to a scripted TLS peer. The peer stalls one chosen transaction: it has received and
recorded it but does not answer. The test kills the worker with SIGKILL at that moment, lets its
lease run out (by moving ``lease_until`` into the past instead of waiting ``LEASE_SECONDS``), starts a
new worker and re-drives the destination as the beat task would. Like any homeserver, the peer
de-duplicates transactions by ``(origin, txnId)``; the test checks that, after de-duplication, every
queued PDU and EDU arrived exactly once and in order, that the interrupted transaction was resent under
the same txnId with the same content, and that the outbox is empty.
"""

from __future__ import annotations

import json
import os
import signal
import ssl
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import pytest

from tests.federation.conftest import ConcordTLS
from tests.federation.synapse_harness import TestCA
from tests.servers import free_port

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[2]


class StallingPeer:
    """A TLS peer that records ``/send`` transactions and can hold one without answering."""

    def __init__(self, ca: TestCA, stall_txn_number: int) -> None:
        self.port = free_port()
        self.server_name = f"127.0.0.1:{self.port}"
        self.received: list[tuple[str, dict[str, Any]]] = []  # every arrival, duplicates included
        self.stall_txn_number = stall_txn_number  # 1-based: which distinct transaction to hold
        self.stalled = threading.Event()
        self.release = threading.Event()
        self.lock = threading.Lock()
        cert, key = ca.issue(f"stall-{self.port}")
        peer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_PUT(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                path = urlparse(self.path).path
                if not path.startswith("/_matrix/federation/v1/send/"):
                    self.send_error(404)
                    return
                txn_id = unquote(path.rsplit("/", 1)[1])
                with peer.lock:
                    first_time = txn_id not in {t for t, _ in peer.received}
                    peer.received.append((txn_id, body))
                    distinct = len({t for t, _ in peer.received})
                    hold = first_time and distinct == peer.stall_txn_number and not peer.stalled.is_set()
                if hold:
                    peer.stalled.set()
                    peer.release.wait(60)  # the sender is killed meanwhile; this answer goes nowhere
                data = b'{"pdus": {}}'
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.httpd.daemon_threads = True
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(cert), str(key))
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def deduplicated(self) -> list[tuple[str, dict[str, Any]]]:
        """Transactions as a de-duplicating server processes them: the first arrival of each txnId."""
        seen: set[str] = set()
        out = []
        for txn_id, body in self.received:
            if txn_id not in seen:
                seen.add(txn_id)
                out.append((txn_id, body))
        return out


def _database_url() -> str:
    from django.db import connection

    s = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{s['NAME']}"
    auth = s["USER"] + (f":{s['PASSWORD']}" if s.get("PASSWORD") else "")
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


class Worker:
    """A real Celery worker process consuming only ``queue``, configured like production from env."""

    def __init__(self, fed: ConcordTLS, queue: str, log: Path) -> None:
        from django.conf import settings

        env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
        env.update({
            "DJANGO_SETTINGS_MODULE": "chat.settings", "DATABASE_URL": _database_url(),
            "CONCORD_SERVER_NAME": fed.server_name, "CONCORD_TLS_CERT": str(fed.cert),
            "CONCORD_TLS_KEY": str(fed.key), "CONCORD_FEDERATION_CA_BUNDLE": settings.CONCORD_FEDERATION_CA_BUNDLE,
            "CONCORD_FEDERATION_ALLOW_PRIVATE": "1", "CONCORD_FEDERATION_TIMEOUT": "60",
            "CONCORD_DB_POOL": "0",
        })
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "chat", "worker", "--pool", "solo", "-Q", queue,
             "-n", f"{queue}@localhost", "--loglevel", "INFO", "--without-gossip", "--without-mingle",
             "--without-heartbeat"],
            cwd=ROOT, env=env, stdout=open(log, "ab"), stderr=subprocess.STDOUT, start_new_session=True)

    def kill(self) -> None:
        """SIGKILL: no cleanup code of the worker runs (what an OOM kill or a power cut does)."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[list[Worker]]:
    started: list[Worker] = []
    yield started
    for w in started:
        w.stop()


def _wait(check: Any, timeout: float, what: str) -> None:
    deadline = time.time() + timeout
    while not check():
        if time.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


@pytest.mark.parametrize("stall_txn_number", [1, 2])
def test_killing_the_worker_mid_send_loses_and_duplicates_nothing(
        fed: ConcordTLS, fed_ca: TestCA, workers: list[Worker], tmp_path: Path, stall_txn_number: int) -> None:
    from django.utils import timezone

    from federation.models import Destination, OutboundEDU, OutboundPDU
    from federation.signing_key import get_signing_key
    from federation.store.outbox import enqueue_edu, enqueue_pdu
    from federation.tasks import send_to_destination

    get_signing_key()  # the worker must sign with the same key: make sure the key file exists first
    peer = StallingPeer(fed_ca, stall_txn_number)
    queue = f"outbox-crash-{uuid.uuid4().hex[:8]}"
    try:
        for n in range(120):
            enqueue_pdu([peer.server_name], "!crash:x", f"$crash{n}",
                        {"type": "m.room.message", "room_id": "!crash:x", "content": {"n": n}})
        for n in range(30):
            enqueue_edu([peer.server_name], "m.typing", {"room_id": "!crash:x", "n": n})

        workers.append(Worker(fed, queue, tmp_path / "worker1.log"))
        send_to_destination.apply_async((peer.server_name,), queue=queue)
        _wait(peer.stalled.is_set, 60, "the stalled transaction to reach the peer")
        stalled_txn, stalled_body = peer.deduplicated()[stall_txn_number - 1]
        workers[0].kill()
        peer.release.set()

        # Nothing was lost: the interrupted transaction's rows are still queued, still stamped.
        pending = list(OutboundPDU.objects.filter(destination_id=peer.server_name).order_by("id"))
        assert pending and {p.txn_id for p in pending if p.txn_id} == {stalled_txn}
        assert [p.pdu for p in pending if p.txn_id] == stalled_body["pdus"]
        dest = Destination.objects.get(pk=peer.server_name)
        assert dest.lease_until is not None and dest.lease_until > timezone.now()  # the dead worker's lease

        # The lease runs out (simulated), a new worker starts, the beat re-drives the destination.
        Destination.objects.filter(pk=peer.server_name).update(lease_until=timezone.now())
        workers.append(Worker(fed, queue, tmp_path / "worker2.log"))
        send_to_destination.apply_async((peer.server_name,), queue=queue)
        _wait(lambda: not OutboundPDU.objects.filter(destination_id=peer.server_name).exists()
              and not OutboundEDU.objects.filter(destination_id=peer.server_name).exists(), 60,
              "the outbox to drain after the restart")

        arrivals = [t for t, _ in peer.received]
        assert arrivals.count(stalled_txn) == 2  # resent once, under the same txnId...
        resent = [b for t, b in peer.received if t == stalled_txn]
        assert resent[0]["pdus"] == resent[1]["pdus"] and resent[0]["edus"] == resent[1]["edus"]  # ...same content
        assert all(arrivals.count(t) == 1 for t in set(arrivals) - {stalled_txn})
        processed = peer.deduplicated()
        assert [p["content"]["n"] for _, b in processed for p in b["pdus"]] == list(range(120))
        assert [e["content"]["n"] for _, b in processed for e in b["edus"]] == list(range(30))
        assert all(b["origin"] == fed.server_name for _, b in processed)
    finally:
        peer.close()
