"""One Redis connection pool per process for Django's cache.

Django keeps a cache object per asynchronous context (``django.core.cache.caches`` is an
``asgiref`` ``Local``), and its Redis backend builds a new connection pool for each cache object. Under
ASGI every request runs in a new context, so every request that touched the cache opened a new TCP
connection to Redis (connect, ``CLIENT SETINFO``, health check) and dropped it at the end: about a
sixth of a web process's time under the chat bench. :class:`SharedConnectionPool` is a
``pool_class`` for ``CACHES[...]["OPTIONS"]`` whose ``from_url`` hands every cache object of the
process the same pool for the same URL and options.

Guarantees: redis-py's pool is thread-safe and notices a fork (a child process gets fresh
connections, never its parent's sockets); a pool is made at most once per URL and options per process.
"""

from __future__ import annotations

import threading
from typing import Any

import redis

_pools: dict[tuple[str, tuple[tuple[str, Any], ...]], redis.ConnectionPool] = {}
_lock = threading.Lock()


class SharedConnectionPool(redis.ConnectionPool):
    """A ``ConnectionPool`` whose ``from_url`` returns this process's pool for that URL and options."""

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> Any:
        key = (url, tuple(sorted((name, _hashable(value)) for name, value in kwargs.items())))
        pool = _pools.get(key)
        if pool is None:
            with _lock:
                pool = _pools.get(key)
                if pool is None:
                    pool = redis.ConnectionPool.from_url(url, **kwargs)
                    _pools[key] = pool
        return pool


def _hashable(value: Any) -> Any:
    try:
        hash(value)
    except TypeError:
        return repr(value)
    return value
