"""The README's run command on the embedded default: SQLite + its own redis-server, all in one data dir."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from tests.servers import free_port

ROOT = Path(__file__).resolve().parent.parent


def test_run_command_serves_chat_with_embedded_default(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE", "CONCORD_REDIS_PREFIX")}
    env.update({"CONCORD_DATA_DIR": str(tmp_path / "data"), "PORT": str(port),
                "DJANGO_SUPERUSER_USERNAME": "root", "DJANGO_SUPERUSER_PASSWORD": "rootpass123",
                "DJANGO_SUPERUSER_EMAIL": "root@example.test"})
    proc = subprocess.Popen([sys.executable, "-m", "chat.launcher", "run"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 90
        while time.time() < deadline:
            try:
                if requests.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else "launcher exited"
            time.sleep(0.3)
        else:
            raise AssertionError("the server did not answer /health within 90 s")
        # The first admin comes from createsuperuser --noinput, against the same data directory.
        subprocess.run([sys.executable, "manage.py", "createsuperuser", "--noinput"], cwd=ROOT, env=env,
                       check=True, capture_output=True)
        login = requests.post(f"{base}/api/v1/login", json={"username": "root", "password": "rootpass123"}).json()
        assert login["status"] == "success"
        headers = {"X-Auth-Token": login["data"]["authToken"], "X-User-Id": login["data"]["userId"]}
        me = requests.get(f"{base}/api/v1/me", headers=headers).json()
        assert "admin" in me["roles"]
        # All state is in the data directory: the SQLite database and the embedded redis' files.
        assert (tmp_path / "data" / "concord.sqlite3").exists()
        assert (tmp_path / "data" / "redis").is_dir()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
