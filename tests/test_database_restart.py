"""After a PostgreSQL restart, pooled connections that were idle (now broken) are replaced before
a request gets one: no request fails because of a restart that is over.

The PostgreSQL is the test's own (:class:`~tests.own_servers.OwnPostgres`), restarted with
``pg_ctl restart -m fast``; the connections come from a process with the production settings
(``chat.settings`` and ``DATABASE_URL``: its connection pool, health checks included; the test
settings have no pool). Skipped where no PostgreSQL server binaries are installed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.own_servers import OwnPostgres, postgres_bin, postgres_unavailable

ROOT = Path(__file__).resolve().parents[1]

# Three requests at once leave three connections idle in the pool; after the restart (the parent
# does it when told "held"), four requests one after another are each lent a pooled connection.
PROBE = """
import sys
import django
django.setup()
from django.db import connection
pool = connection.pool
pool.open(wait=True)
held = [pool.getconn() for _ in range(3)]
for c in held:
    pool.putconn(c)
print("held", flush=True)
sys.stdin.readline()
for _ in range(4):
    connection.ensure_connection()
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        assert cursor.fetchone() == (1,)
    connection.close()
print("ok", flush=True)
"""


def test_idle_pooled_connections_broken_by_a_restart_are_replaced(tmp_path: Path) -> None:
    why, bindir = postgres_unavailable(), postgres_bin()
    if why is not None or bindir is None:
        pytest.skip(why)
    pg = OwnPostgres(bindir)
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env.pop("CONCORD_DB_POOL", None)
    env.update(DJANGO_SETTINGS_MODULE="chat.settings", DATABASE_URL=pg.url(), CONCORD_DATA_DIR=str(tmp_path),
               CONCORD_LOG_LEVEL="WARNING")
    try:
        pg.start()
        probe = subprocess.Popen([sys.executable, "-c", PROBE], cwd=ROOT, env=env, stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert probe.stdout is not None and probe.stdin is not None
            assert probe.stdout.readline().strip() == "held", probe.communicate(timeout=30)
            pg.restart()  # every idle connection in the pool is now broken
            out, err = probe.communicate("go\n", timeout=60)
        finally:
            if probe.poll() is None:
                probe.kill()
        assert probe.returncode == 0 and out.strip() == "ok", err[-3000:]
    finally:
        pg.close()
