"""The check the PostgreSQL connection pool runs on a connection before lending it.

psycopg_pool's own check (Django's with ``CONN_HEALTH_CHECKS``) sends an empty query: a full round
trip, plus the thread switches around it, on every request that touches the database (about a
tenth of ``chat.postMessage``'s time in a web process). :func:`check_pooled_connection` asks the
socket instead: a connection idle in the pool has nothing to read unless the server wrote to it,
and a server that ends a connection (restart, ``pg_terminate_backend``, an idle timeout, a
failover) writes its error and closes the socket. So: closed or bad status -> broken; something
readable -> prove the connection with the empty query (psycopg_pool's check), which fails and gets it
replaced if it is broken; nothing readable -> lend it.

:func:`install` puts it in place of psycopg_pool's check on the pools Django made with
``CONN_HEALTH_CHECKS`` (``AccountsConfig.ready``; Django passes the pool's ``check`` itself, so it
cannot come from the pool options).

Guarantee: a connection the server has closed or written an error to is never lent (the case of
``tests/test_database_restart.py``). Not detected without a round trip, as before with one: a peer
that vanished without closing (a cut cable); the query then fails after the TCP timeout.
"""

from __future__ import annotations

import select
from typing import Any


def check_pooled_connection(conn: Any) -> None:
    """Raise if ``conn`` must not be lent; return quietly if it can be (see the module docstring)."""
    # Lazy: only PostgreSQL pools call this; the embedded default (SQLite) never loads psycopg.
    import psycopg
    from psycopg.pq import ConnStatus
    from psycopg_pool import ConnectionPool

    if conn.closed or conn.broken or conn.pgconn.status != ConnStatus.OK:
        raise psycopg.OperationalError("the pooled connection is closed")
    readable, _, _ = select.select([conn.pgconn.socket], [], [], 0)
    if readable:
        ConnectionPool.check_connection(conn)


def install() -> int:
    """Use :func:`check_pooled_connection` on every configured PostgreSQL pool with health checks on.
    Returns how many pools it was installed on (none without a pool, e.g. SQLite or the tests)."""
    from django.db import connections  # called from AppConfig.ready, once the apps are loaded

    installed = 0
    for alias in connections:
        wrapper = connections[alias]
        if wrapper.vendor != "postgresql" or not wrapper.settings_dict.get("OPTIONS", {}).get("pool"):
            continue
        if not wrapper.settings_dict.get("CONN_HEALTH_CHECKS"):
            continue
        pool = wrapper.pool  # made (not opened) on first access and shared by every thread's wrapper
        if getattr(pool, "_check", None) is not None:
            pool._check = check_pooled_connection
            installed += 1
    return installed
