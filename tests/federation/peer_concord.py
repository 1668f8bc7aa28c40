"""A second Concord, as separate processes, for Concord <-> Concord federation scenarios.

:class:`ConcordPeer` runs the same code base as another homeserver on loopback, the way an operator
would (README, "Two Concords on one machine"):

* its own ``CONCORD_DATA_DIR`` (signing key, secret key), its own database (a SQLite file in that
  directory, or, when the test run uses PostgreSQL, a database of its own on the same server,
  created here and dropped by :meth:`ConcordPeer.close`), its own ``CONCORD_REDIS_PREFIX`` on the
  test Redis, and the server name ``127.0.0.1:<port>``;
* ``manage.py migrate`` once, then ``uvicorn chat.asgi:application`` with TLS (a certificate from
  the test CA, which it also trusts for outbound federation; private peers allowed);
* a Celery worker (``--pool solo``: the process that sends is the worker itself) and Celery beat
  (re-driving the outbox every second), as in the Procfile, so its outbox is delivered the
  production way. :meth:`kill_worker` SIGKILLs the worker, for crash tests. (Beat runs as its own
  process: the worker's embedded ``-B`` beat is a child process that a SIGKILL would orphan.)
* ``database_url`` / ``redis_url`` put it on a PostgreSQL and a Redis of the test's own (the
  restart scenarios restart those); :meth:`kill_web` SIGKILLs the web server.

Everything listens on 127.0.0.1 only, and :meth:`close` stops every process it started.
"""

from __future__ import annotations

import os
import signal
import ssl
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlparse, urlunparse

import requests
from rocketchat_API.rocketchat import RocketChat

from tests.federation.synapse_harness import TestCA
from tests.servers import free_port

ROOT = Path(__file__).resolve().parents[2]


def _peer_database_url(directory: Path) -> tuple[str, str | None]:
    """(DATABASE_URL for the peer, PostgreSQL database name to create/drop or None)."""
    main = os.environ.get("DATABASE_URL", "")
    if main.startswith(("postgres://", "postgresql://")):
        parsed = urlparse(main)
        name = f"concord_peer_{uuid.uuid4().hex[:8]}"
        return urlunparse(parsed._replace(path="/" + name)), name
    return f"sqlite:///{directory / 'peer.sqlite3'}", None


def _admin_pg(database_url: str) -> Any:
    import psycopg

    parsed = urlparse(database_url)
    return psycopg.connect(urlunparse(parsed._replace(path="/postgres")), autocommit=True)


class ConcordPeer:
    """Another Concord server (web + worker subprocesses) named ``127.0.0.1:<port>``."""

    def __init__(self, directory: Path, ca: TestCA, *, database_url: str | None = None,
                 redis_url: str | None = None) -> None:
        """``database_url``: an existing (empty) database to use instead of one made here;
        ``redis_url``: a Redis of its own instead of a key prefix on the test run's."""
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.ca = ca
        self.port = free_port()
        self.server_name = f"127.0.0.1:{self.port}"
        self.base_url = f"https://127.0.0.1:{self.port}"
        self.cert, self.key = ca.issue(f"peer-concord-{self.port}")
        if database_url is not None:
            self.database_url, self._pg_name = database_url, None
        else:
            self.database_url, self._pg_name = _peer_database_url(self.dir)
        self.redis_url = redis_url
        self.web: subprocess.Popen[bytes] | None = None
        self.worker: subprocess.Popen[bytes] | None = None
        self.beat: subprocess.Popen[bytes] | None = None
        self._worker_log_from = 0
        self.env = self._env()

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
        env.pop("CONCORD_CELERY_EAGER", None)
        env.update({
            "DJANGO_SETTINGS_MODULE": "chat.settings",
            "CONCORD_DATA_DIR": str(self.dir / "data"),
            "DATABASE_URL": self.database_url,
            "CONCORD_REDIS_PREFIX": f"concord-peer-{uuid.uuid4().hex[:8]}",
            "CONCORD_SERVER_NAME": self.server_name,
            "CONCORD_TLS_CERT": str(self.cert),
            "CONCORD_TLS_KEY": str(self.key),
            "CONCORD_FEDERATION_CA_BUNDLE": str(self.ca.ca_cert),
            "CONCORD_FEDERATION_ALLOW_PRIVATE": "1",
            "CONCORD_FEDERATION_BACKOFF_MIN": "0.2",
            "CONCORD_FEDERATION_BACKOFF_MAX": "1",
            "CONCORD_FEDERATION_TIMEOUT": "4",
            "CONCORD_FEDERATION_LEASE_SECONDS": "1",  # floored at timeout + 5 s
            "CONCORD_FEDERATION_REDRIVE_SECONDS": "1",
            "CONCORD_LOG_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1",
        })
        if self.redis_url is not None:
            env["REDIS_URL"] = self.redis_url
        return env

    # --- lifecycle ---------------------------------------------------------------------------

    def setup(self) -> None:
        """Create the database (PostgreSQL) and apply migrations."""
        if self._pg_name:
            with _admin_pg(self.database_url) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self._pg_name}"')
                conn.execute(f'CREATE DATABASE "{self._pg_name}"')
        subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=self.env, check=True,
                       stdout=open(self.dir / "migrate.log", "ab"), stderr=subprocess.STDOUT, timeout=180)

    def start(self) -> None:
        """Start the web server, the worker and beat; wait until the web server answers."""
        self.start_web()
        self.start_worker()
        self.start_beat()

    def start_web(self, timeout: float = 30.0) -> None:
        self.web = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "chat.asgi:application", "--host", "127.0.0.1", "--port",
             str(self.port), "--ws", "websockets-sansio", "--log-level", "warning", "--lifespan", "off",
             "--timeout-graceful-shutdown", "3",
             "--ssl-certfile", str(self.cert), "--ssl-keyfile", str(self.key)],
            cwd=ROOT, env=self.env, stdout=open(self.dir / "web.log", "ab"), stderr=subprocess.STDOUT)
        deadline = time.time() + timeout
        s = self.session()
        while time.time() < deadline:
            if self.web.poll() is not None:
                raise RuntimeError(f"the peer Concord exited: {self.log_tail('web.log')}")
            try:
                if s.get(self.base_url + "/_matrix/key/v2/server", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                time.sleep(0.1)
        raise RuntimeError(f"the peer Concord did not start: {self.log_tail('web.log')}")

    def start_worker(self) -> None:
        log = self.dir / "worker.log"
        self._worker_log_from = log.stat().st_size if log.exists() else 0
        self.worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "chat", "worker", "--pool", "solo", "--loglevel", "INFO",
             "-n", f"peer{self.port}@localhost", "--without-gossip", "--without-mingle", "--without-heartbeat"],
            cwd=ROOT, env=self.env, stdout=open(self.dir / "worker.log", "ab"), stderr=subprocess.STDOUT)

    def start_beat(self) -> None:
        self.beat = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "chat", "beat", "--loglevel", "WARNING",
             "-s", str(self.dir / "celerybeat-schedule")],
            cwd=ROOT, env=self.env, stdout=open(self.dir / "beat.log", "ab"), stderr=subprocess.STDOUT)

    def worker_ready(self, timeout: float = 30.0) -> None:
        """Wait until the worker's log says it is ready (it then consumes queued sends)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            with open(self.dir / "worker.log", "rb") as f:
                f.seek(self._worker_log_from)
                started = b"ready." in f.read()
            if started:
                return
            if self.worker is not None and self.worker.poll() is not None:
                raise RuntimeError(f"the peer worker exited: {self.log_tail('worker.log')}")
            time.sleep(0.1)
        raise RuntimeError(f"the peer worker did not become ready: {self.log_tail('worker.log')}")

    @staticmethod
    def _stop(proc: subprocess.Popen[bytes] | None) -> None:
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)

    def stop_web(self) -> None:
        self._stop(self.web)
        self.web = None

    def stop_worker(self) -> None:
        self._stop(self.worker)
        self.worker = None

    def kill_web(self) -> None:
        """SIGKILL the web server: requests in flight cut off, no shutdown of any kind (a crash)."""
        if self.web is not None and self.web.poll() is None:
            self.web.kill()
            self.web.wait(timeout=10)
        self.web = None

    def kill_worker(self) -> None:
        """SIGKILL the worker: no shutdown, no ack, its lease left behind (a crash)."""
        if self.worker is not None and self.worker.poll() is None:
            self.worker.kill()
            self.worker.wait(timeout=10)
        self.worker = None

    def stop(self) -> None:
        """Stop the whole server (beat, worker, web), as an operator would."""
        self._stop(self.beat)
        self.beat = None
        self.stop_worker()
        self.stop_web()

    def close(self) -> None:
        """Stop every process and drop the PostgreSQL database (if one was made)."""
        self.stop()
        if self._pg_name:
            try:
                with _admin_pg(self.database_url) as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{self._pg_name}" WITH (FORCE)')
            except Exception:
                pass

    # --- clients -----------------------------------------------------------------------------

    def session(self) -> requests.Session:
        s = requests.Session()
        s.trust_env = False
        s.verify = str(self.ca.ca_cert)
        return s

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca.ca_cert))

    def register(self, username: str, name: str = "") -> RocketChat:
        """Sign a user up through ``users.register`` and return a logged-in ``rocketchat_API`` client."""
        anon = RocketChat(server_url=self.base_url, ssl_verify=str(self.ca.ca_cert), session=self.session())
        anon.users_register(email=f"{username}@peer.test", name=name or username.title(), password="password123",
                            username=username)
        return self.client(username)

    def client(self, username: str) -> RocketChat:
        return RocketChat(username, "password123", server_url=self.base_url, ssl_verify=str(self.ca.ca_cert),
                          session=self.session())

    def mxid(self, username: str) -> str:
        return f"@{username}:{self.server_name}"

    def log_tail(self, name: str, chars: int = 3000) -> str:
        path = self.dir / name
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""
