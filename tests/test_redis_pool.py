"""The cache's Redis connection pool is one per process, not one per request context."""

from __future__ import annotations

import threading
from typing import Any

from django.core.cache import caches

from chat.redis_pool import SharedConnectionPool


def _pool_in_new_thread() -> Any:
    out: list[Any] = []

    def run() -> None:  # a new thread: Django gives it its own cache object, as a new ASGI request gets
        cache = caches["default"]
        cache.set("redis-pool-probe", 1, 10)
        out.append((id(cache), cache._cache._get_connection_pool(True)))

    t = threading.Thread(target=run)
    t.start()
    t.join()
    return out[0]


def test_every_cache_object_of_the_process_uses_the_same_pool() -> None:
    (cache_a, pool_a), (cache_b, pool_b) = _pool_in_new_thread(), _pool_in_new_thread()
    assert cache_a != cache_b  # Django made two cache objects...
    assert pool_a is pool_b  # ...which share one pool
    assert caches["default"].get("redis-pool-probe") == 1


def test_different_urls_or_options_get_different_pools() -> None:
    a = SharedConnectionPool.from_url("redis://127.0.0.1:6379/11")
    assert SharedConnectionPool.from_url("redis://127.0.0.1:6379/11") is a
    assert SharedConnectionPool.from_url("redis://127.0.0.1:6379/12") is not a
    assert SharedConnectionPool.from_url("redis://127.0.0.1:6379/11", socket_timeout=3) is not a
