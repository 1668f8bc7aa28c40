"""Federation test fixtures: a TLS Concord listener, a real Synapse, federation settings.

* ``fed_ca`` (session): a throw-away CA in a temp directory.
* ``concord_tls`` (session): uvicorn serving ``chat.asgi`` over TLS on 127.0.0.1 in a thread (on the
  test database); our server name is ``127.0.0.1:<port>``.
* ``synapse`` (session): a real Synapse (``localhost:<port>``), stopped at the end of the session.
* ``concord_peer`` (session): a second Concord (web + Celery worker subprocesses, its own data
  directory, database and Redis prefix; ``127.0.0.1:<port>``), stopped at the end of the session.
* ``peer`` (function): a scripted remote homeserver (``FakePeer``) on its own TLS port.
* ``fed`` (function): switches federation on for the test (server name, TLS files, CA bundle,
  private peers allowed, short backoff) on a transactional test database, and clears caches.

These fixtures only define things; the protocol tests in ``protocol/`` do not use them.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.federation.fakepeer import FakePeer
from tests.federation.peer_concord import ConcordPeer
from tests.federation.synapse_harness import SynapseServer, TestCA, make_ca
from tests.servers import UvicornThread


@pytest.fixture(scope="session")
def fed_tmp() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="concord-fed-") as d:
        yield Path(d)


@pytest.fixture(scope="session")
def fed_ca(fed_tmp: Path) -> TestCA:
    return make_ca(fed_tmp / "ca")


@dataclass
class ConcordTLS:
    port: int
    server_name: str
    cert: Path
    key: Path
    base_url: str


@pytest.fixture(scope="session")
def concord_tls(fed_ca: TestCA) -> Iterator[ConcordTLS]:
    cert, key = fed_ca.issue("concord")
    thread = UvicornThread(cert, key)
    thread.start_and_wait()
    yield ConcordTLS(thread.port, f"127.0.0.1:{thread.port}", cert, key, f"https://127.0.0.1:{thread.port}")
    thread.stop()


@pytest.fixture(scope="session")
def synapse(fed_tmp: Path, fed_ca: TestCA) -> Iterator[SynapseServer]:
    server = SynapseServer(fed_tmp / "synapse", fed_ca)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def concord_peer(fed_tmp: Path, fed_ca: TestCA) -> Iterator[ConcordPeer]:
    peer = ConcordPeer(fed_tmp / "peer", fed_ca)
    try:
        peer.setup()
        peer.start()
        peer.worker_ready()
        yield peer
    finally:
        peer.close()
        keep = os.environ.get("CONCORD_TEST_KEEP_LOGS")  # a directory to copy the peer's logs into
        if keep:
            for log in (fed_tmp / "peer").glob("*.log"):
                shutil.copy(log, Path(keep) / f"peer-{log.name}")


@pytest.fixture
def fed(settings: Any, concord_tls: ConcordTLS, fed_ca: TestCA, transactional_db: None) -> ConcordTLS:
    """Federation on, for this test, as ``127.0.0.1:<port>``."""
    from federation.handlers import keys
    from federation.transport import discovery, sessions

    settings.CONCORD_SERVER_NAME = concord_tls.server_name
    settings.CONCORD_FEDERATION_ENABLED = True
    settings.CONCORD_TLS_CERT = str(concord_tls.cert)
    settings.CONCORD_TLS_KEY = str(concord_tls.key)
    settings.CONCORD_FEDERATION_CA_BUNDLE = str(fed_ca.ca_cert)
    settings.CONCORD_FEDERATION_ALLOW_PRIVATE = True
    settings.CONCORD_FEDERATION_BACKOFF_MIN = 0.2
    settings.CONCORD_FEDERATION_BACKOFF_MAX = 1.0
    settings.CONCORD_FEDERATION_TIMEOUT = 10
    # /send answers once its PDUs are processed, so tests read every verdict in the answer (the
    # default answers at once; tests/federation/test_send_answers_at_once.py covers that).
    settings.CONCORD_FEDERATION_SEND_WAIT = 60
    keys.clear_fetch_failures()
    discovery.clear_caches()
    sessions.close_sessions()
    return concord_tls


@pytest.fixture
def peer(fed_ca: TestCA) -> Iterator[FakePeer]:
    """A scripted remote homeserver (:class:`~tests.federation.fakepeer.FakePeer`), closed after the test."""
    p = FakePeer(fed_ca)
    yield p
    p.close()


@pytest.fixture
def outbox_pump(fed: ConcordTLS) -> Iterator[Any]:
    """A thread that delivers the outbox while the test runs (the Celery worker's job)."""
    from tests.federation.rooms_helpers import OutboxPump

    pump = OutboxPump()
    pump.start()
    yield pump
    pump.stop()
