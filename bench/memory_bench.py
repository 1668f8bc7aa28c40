"""Benchmark: idle memory of the embedded default (``make run``) against Synapse's.

Run: ``.venv/bin/python -m bench.memory_bench [--traffic 20] [--settle 20]
[--database-url postgres://postgres@127.0.0.1:5432/concord_membench] [--no-synapse] [--keep]``

What runs, all on this machine (nothing leaves 127.0.0.0/8):

* **Concord** exactly as ``make run`` starts it: ``python -m chat.launcher run`` in a new session
  (``CONCORD_PROCESSES`` from the environment, so ``CONCORD_PROCESSES=procfile`` measures the
  Procfile's processes), on
  a fresh temporary data directory, so SQLite + the embedded redis-server by default, or the
  PostgreSQL database of ``--database-url`` (created if missing, migrated and flushed) with the
  embedded redis. Everything the launcher starts is measured: the launcher itself, the process
  runner, redis-server, the web server, the Celery worker (and pool children, if any) and beat.
* **Synapse** (``matrix-synapse`` from the venv, SQLite) the way the federation tests start it
  (``tests.federation.synapse_harness.SynapseServer``: one TLS listener with the client, federation
  and keys resources).

"Idle" is: the server answers ``/health`` (and, for Concord, the worker logged ``ready``), at least
``--settle`` seconds have passed, and the processes together used less than 3% of one CPU over the
last 2 s (the periodic beat tasks keep Concord from ever being fully quiet; the wait gives up after
``--settle`` + 60 s and measures anyway, saying so). With ``--traffic N``, both servers then get a few
logins and ``N`` posted messages (Concord: REST ``login`` + ``chat.postMessage`` into ``#general``;
Synapse: client-API ``login`` + ``send`` into a room of the user's), settle again, and are measured
again.

Per process: RSS and PSS (proportional set size: shared pages divided among the processes that map
them) from ``/proc/<pid>/smaps_rollup``; PSS is the figure that adds up, since forked processes share
pages with their parent and RSS counts those once per process. Printed: a table per server, the
totals, and the ratio Concord/Synapse of the PSS totals. At the end Concord is stopped with SIGTERM
(as a terminal's Ctrl-C or a service manager would) and every process it had is checked to be gone.

This is a benchmark, not a test: it asserts nothing about memory.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.federation.synapse_harness import SynapseServer, make_ca  # noqa: E402
from tests.servers import free_port  # noqa: E402

IDLE_CPU_FRACTION = 0.03
IDLE_WINDOW = 2.0
PASSWORD = "membench-pass-123"


@dataclass(frozen=True)
class ProcMem:
    """One process's memory, in MiB."""

    pid: int
    label: str
    rss: float
    pss: float


def smaps_rollup(pid: int) -> tuple[float, float]:
    """(RSS, PSS) of ``pid`` in MiB, from ``/proc/<pid>/smaps_rollup`` (0, 0 if it is gone)."""
    rss = pss = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                key, _, rest = line.partition(":")
                if key == "Rss":
                    rss = int(rest.split()[0])
                elif key == "Pss":
                    pss = int(rest.split()[0])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return rss / 1024, pss / 1024


def label_of(proc: psutil.Process) -> str:
    """What a process of the tree is, from its command line."""
    try:
        cmd = proc.cmdline()
    except psutil.Error:
        return "?"
    line = " ".join(cmd)
    if not cmd:
        return proc.name()
    if "redis-server" in cmd[0] or proc.name() == "redis-server":
        return "redis-server"
    if "chat.launcher" in line:
        return "launcher"
    if "honcho" in line:
        return "honcho"
    if "synapse" in line:
        return "synapse"
    if "uvicorn" in line:
        return "web (uvicorn)"
    if "celery" in line and " beat" in line:
        return "beat"
    if "celery" in line and " worker" in line:
        parent = proc.parent()
        if parent is not None and "celery" in " ".join(parent.cmdline()):
            return "worker child" if parent.name() != "sh" else "worker"
        return "worker"
    if cmd[0].endswith("sh") and "-c" in cmd:
        return "sh -c"
    return proc.name()


def tree(root_pid: int) -> list[psutil.Process]:
    """``root_pid`` and all its descendants that are still alive."""
    try:
        root = psutil.Process(root_pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def measure(root_pid: int) -> list[ProcMem]:
    out = []
    for p in tree(root_pid):
        rss, pss = smaps_rollup(p.pid)
        if rss:
            out.append(ProcMem(p.pid, label_of(p), rss, pss))
    if not any(m.label.startswith("web") for m in out):  # CONCORD_PROCESSES=one: the launcher serves
        out = [ProcMem(m.pid, "web+worker+beat", m.rss, m.pss) if m.label == "launcher" else m for m in out]
    return out


def cpu_seconds(procs: list[psutil.Process]) -> float:
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


def wait_idle(root_pid: int, settle: float, started: float) -> bool:
    """Wait until ``settle`` s after ``started`` and the tree's CPU use is low; False on giving up."""
    time.sleep(max(0.0, started + settle - time.time()))
    deadline = time.time() + 60
    while time.time() < deadline:
        procs = tree(root_pid)
        before = cpu_seconds(procs)
        time.sleep(IDLE_WINDOW)
        if (cpu_seconds(procs) - before) / IDLE_WINDOW < IDLE_CPU_FRACTION:
            return True
    return False


def print_table(title: str, rows: list[ProcMem], idle: bool) -> tuple[float, float]:
    print(f"\n{title}{'' if idle else ' (did not become idle: measured anyway)'}")
    print(f"  {'pid':>7}  {'process':<16} {'RSS MiB':>8} {'PSS MiB':>8}")
    for r in sorted(rows, key=lambda r: -r.pss):
        print(f"  {r.pid:>7}  {r.label:<16} {r.rss:>8.1f} {r.pss:>8.1f}")
    rss, pss = sum(r.rss for r in rows), sum(r.pss for r in rows)
    print(f"  {'':>7}  {'total':<16} {rss:>8.1f} {pss:>8.1f}")
    return rss, pss


# --------------------------------------------------------------------------- Concord


class Concord:
    """``python -m chat.launcher run`` on a fresh data directory, in its own session."""

    def __init__(self, workdir: Path, database_url: str | None) -> None:
        self.dir = workdir / "concord"
        self.dir.mkdir(parents=True)
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = self.dir / "run.log"
        self.env = {k: v for k, v in os.environ.items()
                    if k not in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE", "CONCORD_REDIS_PREFIX")
                    and "proxy" not in k.lower()}
        self.env.update({"CONCORD_DATA_DIR": str(self.dir / "data"), "PORT": str(self.port),
                         "DJANGO_SUPERUSER_USERNAME": "benchadmin", "DJANGO_SUPERUSER_PASSWORD": PASSWORD,
                         "DJANGO_SUPERUSER_EMAIL": "benchadmin@example.test"})
        if database_url:
            self.env["DATABASE_URL"] = database_url
            self._prepare_postgres(database_url)
        self.proc: subprocess.Popen[bytes] | None = None
        self.started = 0.0

    def _prepare_postgres(self, url: str) -> None:
        import psycopg

        name = url.rsplit("/", 1)[1].split("?")[0]
        with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
                conn.execute(f'CREATE DATABASE "{name}"')
        # The launcher migrates again (a no-op then) and runs first_start on the emptied database.
        env = {**self.env, "REDIS_URL": "redis://127.0.0.1:1/0"}  # neither command talks to Redis
        for args in (["migrate", "--noinput", "-v", "0"], ["flush", "--noinput", "-v", "0"]):
            subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True)

    def start(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "chat.launcher", "run"], cwd=ROOT, env=self.env,
                                     stdout=open(self.log, "ab"), stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.time() + 120
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the launcher exited:\n{self.log.read_text()[-3000:]}")
            try:
                if requests.get(f"{self.base}/health", timeout=1).status_code == 200 and \
                        re.search(r"celery@\S+ ready", self.log.read_text(errors="replace")):
                    self.started = time.time()
                    return
            except requests.RequestException:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"Concord did not start in time:\n{self.log.read_text()[-3000:]}")

    def traffic(self, messages: int) -> None:
        """Create an admin, log in a few times and post ``messages`` into #general."""
        # Against the running server's redis (the new admin joins #general: a live event).
        redis_url = re.search(r"embedded redis-server at (\S+)", self.log.read_text(errors="replace"))
        env = {**self.env, "REDIS_URL": redis_url.group(1) if redis_url else "redis://127.0.0.1:1/0"}
        subprocess.run([sys.executable, "manage.py", "createsuperuser", "--noinput"], cwd=ROOT, env=env,
                       check=True, capture_output=True)
        s = requests.Session()
        s.trust_env = False
        for _ in range(3):
            login = s.post(f"{self.base}/api/v1/login", json={"username": "benchadmin", "password": PASSWORD},
                           timeout=30).json()
            assert login["status"] == "success", login
        headers = {"X-Auth-Token": login["data"]["authToken"], "X-User-Id": login["data"]["userId"]}
        for n in range(messages):
            r = s.post(f"{self.base}/api/v1/chat.postMessage", headers=headers,
                       json={"channel": "#general", "text": f"memory bench message {n} with **markdown**"},
                       timeout=30)
            r.raise_for_status()
        s.get(f"{self.base}/api/v1/channels.history", headers=headers, params={"roomName": "general"}, timeout=30)
        self.started = time.time()

    def stop(self) -> list[str]:
        """SIGTERM to the launcher's session; returns descriptions of processes still alive after."""
        if self.proc is None:
            return []
        procs = tree(self.proc.pid)
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            pass
        _, alive = psutil.wait_procs(procs, timeout=10)
        left = [f"{p.pid} {label_of(p)}" for p in alive]
        for p in alive:
            try:
                p.kill()
            except psutil.Error:
                pass
        self.proc = None
        return left


# --------------------------------------------------------------------------- Synapse


def synapse_traffic(synapse: SynapseServer, messages: int) -> None:
    """Register a user, log in a few times, create a room and send ``messages`` into it."""
    token = synapse.register("benchuser", PASSWORD)
    s = synapse.session()
    for _ in range(3):
        r = s.post(synapse.base_url + "/_matrix/client/v3/login", timeout=30,
                   json={"type": "m.login.password", "identifier": {"type": "m.id.user", "user": "benchuser"},
                         "password": PASSWORD})
        r.raise_for_status()
    auth = {"Authorization": f"Bearer {token}"}
    room = s.post(synapse.base_url + "/_matrix/client/v3/createRoom", json={"name": "general"}, headers=auth,
                  timeout=30).json()["room_id"]
    for n in range(messages):
        r = s.put(synapse.base_url + f"/_matrix/client/v3/rooms/{room}/send/m.room.message/txn{n}", headers=auth,
                  json={"msgtype": "m.text", "body": f"memory bench message {n}"}, timeout=30)
        r.raise_for_status()
    s.get(synapse.base_url + f"/_matrix/client/v3/rooms/{room}/messages", params={"dir": "b"}, headers=auth,
          timeout=30)


# --------------------------------------------------------------------------- main


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--database-url", help="PostgreSQL for Concord (default: SQLite in the data directory)")
    ap.add_argument("--settle", type=float, default=20.0, help="seconds to wait after start-up/traffic")
    ap.add_argument("--traffic", type=int, default=0, help="then post this many messages and measure again")
    ap.add_argument("--no-synapse", action="store_true", help="measure Concord only")
    ap.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    args = ap.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="concord-membench-"))
    print(f"work directory {workdir}; load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} "
          f"{os.getloadavg()[2]:.2f}; {os.cpu_count()} CPUs")
    totals: dict[str, float] = {}
    concord = Concord(workdir, args.database_url)
    try:
        concord.start()
        assert concord.proc is not None
        idle = wait_idle(concord.proc.pid, args.settle, concord.started)
        _, totals["concord idle"] = print_table("Concord (make run), idle after start-up", measure(concord.proc.pid),
                                                idle)
        if args.traffic:
            concord.traffic(args.traffic)
            idle = wait_idle(concord.proc.pid, args.settle, concord.started)
            _, totals["concord traffic"] = print_table(
                f"Concord, idle after 3 logins and {args.traffic} messages", measure(concord.proc.pid), idle)
    finally:
        left = concord.stop()
        print(f"\nConcord stopped with SIGTERM: {'processes left: ' + ', '.join(left) if left else 'no process left'}")

    if not args.no_synapse:
        synapse = SynapseServer(workdir / "synapse", make_ca(workdir / "ca"))
        try:
            synapse.start()
            assert synapse.proc is not None
            started = time.time()
            idle = wait_idle(synapse.proc.pid, args.settle, started)
            _, totals["synapse idle"] = print_table("Synapse, idle after start-up", measure(synapse.proc.pid), idle)
            if args.traffic:
                synapse_traffic(synapse, args.traffic)
                idle = wait_idle(synapse.proc.pid, args.settle, time.time())
                _, totals["synapse traffic"] = print_table(
                    f"Synapse, idle after 3 logins and {args.traffic} messages", measure(synapse.proc.pid), idle)
        finally:
            synapse.stop()
        print()
        for phase in ("idle", "traffic"):
            if f"synapse {phase}" in totals and f"concord {phase}" in totals:
                c, s = totals[f"concord {phase}"], totals[f"synapse {phase}"]
                print(f"PSS Concord/Synapse ({phase}): {c:.1f} / {s:.1f} MiB = x{c / s:.2f}")
    print(f"load average at the end {os.getloadavg()[0]:.2f}")
    if args.keep:
        print(f"kept {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
