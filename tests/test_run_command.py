"""The README's run command on the embedded default: SQLite + its own redis-server, all in one data dir.

Both ways of running it: ``CONCORD_PROCESSES=one`` (the default: web, worker and beat in one
process) and ``procfile`` (the Procfile's processes under honcho, as in production). Each serves
the chat, runs beat's periodic task on the worker, and leaves no process behind after SIGTERM.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import requests

from tests.servers import free_port

ROOT = Path(__file__).resolve().parent.parent


def _wait_for(what: str, check: object, proc: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if check():  # type: ignore[operator]
                return
        except requests.ConnectionError:
            pass
        assert proc.poll() is None, f"launcher exited:\n{log.read_text()[-3000:]}"
        time.sleep(0.3)
    raise AssertionError(f"{what} within {timeout} s:\n{log.read_text()[-3000:]}")


@pytest.mark.parametrize("mode", ["one", "procfile"])
def test_run_command_serves_chat_with_embedded_default(tmp_path: Path, mode: str) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE", "CONCORD_REDIS_PREFIX")}
    env.update({"CONCORD_DATA_DIR": str(tmp_path / "data"), "PORT": str(port), "CONCORD_PROCESSES": mode,
                "DJANGO_SUPERUSER_USERNAME": "root", "DJANGO_SUPERUSER_PASSWORD": "rootpass123",
                "DJANGO_SUPERUSER_EMAIL": "root@example.test"})
    log = tmp_path / "run.log"
    proc = subprocess.Popen([sys.executable, "-m", "chat.launcher", "run"], cwd=ROOT, env=env,
                            stdout=open(log, "wb"), stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    procs: list[psutil.Process] = []
    try:
        _wait_for("the server did not answer /health", lambda: requests.get(f"{base}/health", timeout=1).ok,
                  proc, log, 90)
        procs = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
        # The first admin comes from createsuperuser --noinput, against the same data directory.
        subprocess.run([sys.executable, "manage.py", "createsuperuser", "--noinput"], cwd=ROOT, env=env,
                       check=True, capture_output=True)
        login = requests.post(f"{base}/api/v1/login", json={"username": "root", "password": "rootpass123"}).json()
        assert login["status"] == "success"
        headers = {"X-Auth-Token": login["data"]["authToken"], "X-User-Id": login["data"]["userId"]}
        me = requests.get(f"{base}/api/v1/me", headers=headers).json()
        assert "admin" in me["roles"]
        posted = requests.post(f"{base}/api/v1/chat.postMessage", headers=headers,
                               json={"channel": "#general", "text": "hello from the run command"}).json()
        assert posted["success"], posted
        history = requests.get(f"{base}/api/v1/channels.history", headers=headers,
                               params={"roomName": "general"}).json()
        assert "hello from the run command" in [m["msg"] for m in history["messages"]]
        # Beat schedules expire-typing every 5 s and the worker runs it.
        _wait_for("beat's expire_typing did not run on the worker",
                  lambda: re.search(r"Task rooms\.tasks\.expire_typing\[\S+\] succeeded", log.read_text()),
                  proc, log, 60)
        # All state is in the data directory: the SQLite database and the embedded redis' files.
        assert (tmp_path / "data" / "concord.sqlite3").exists()
        assert (tmp_path / "data" / "redis").is_dir()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=45)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    _, alive = psutil.wait_procs(procs, timeout=10)
    for p in alive:
        p.kill()
    assert not alive, f"left running after SIGTERM: {[' '.join(p.cmdline()) for p in alive]}"
    assert proc.returncode == 0, log.read_text()[-3000:]
