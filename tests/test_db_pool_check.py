"""The pool's lend check (chat/db_pool_check.py) on real PostgreSQL connections."""

from __future__ import annotations

import time

import psycopg
import pytest
from django.db import connection

from chat.db_pool_check import check_pooled_connection

pytestmark = [pytest.mark.skipif(connection.vendor != "postgresql",
                                 reason="the check is for PostgreSQL pools (this run uses SQLite)"),
              pytest.mark.django_db]  # the test database's connection parameters


def _connect() -> psycopg.Connection:
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    return psycopg.connect(**params, autocommit=True)


def test_a_healthy_idle_connection_is_lent_without_a_query() -> None:
    with _connect() as conn:
        check_pooled_connection(conn)
        check_pooled_connection(conn)
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_a_connection_the_server_ended_is_refused() -> None:
    with _connect() as victim, _connect() as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (victim.info.backend_pid,))
        deadline = time.monotonic() + 10
        while admin.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s",
                            (victim.info.backend_pid,)).fetchone() != (0,):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        with pytest.raises(psycopg.OperationalError):
            check_pooled_connection(victim)


def test_a_closed_connection_is_refused() -> None:
    conn = _connect()
    conn.close()
    with pytest.raises(psycopg.OperationalError):
        check_pooled_connection(conn)
