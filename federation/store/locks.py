"""Named locks in the shared cache (Redis in production), for work that must run in one process at
a time across the deployment (e.g. a room's staged queue).

Guarantees
    * :func:`take` behaves as ``cache.add(name, 1, timeout)`` for each name, in order: a name is
      taken by at most one caller until it is released or its timeout passes. On Django's Redis
      backend the names go in one round trip (a pipeline of ``SET NX EX``, the command
      ``cache.add`` sends, under the key ``cache.add`` would use), so a lock taken here and one
      taken with ``cache.add`` exclude each other; on other backends, one ``cache.add`` per name.
    * :func:`release` deletes the names (one round trip: ``cache.delete_many``).
"""

from __future__ import annotations

from collections.abc import Sequence

from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache


def take(names: Sequence[str], timeout: int) -> list[str]:
    """Take the locks that are free among ``names``; returns those taken, in order."""
    backend = caches["default"]
    if len(names) > 1 and isinstance(backend, RedisCache):
        client = backend._cache  # Django's RedisCacheClient: the client and serializer cache.add uses
        keys = [backend.make_and_validate_key(name) for name in names]
        pipe = client.get_client(keys[0], write=True).pipeline(transaction=False)
        value = client._serializer.dumps(1)
        for key in keys:
            pipe.set(key, value, ex=timeout, nx=True)
        return [name for name, ok in zip(names, pipe.execute(), strict=True) if ok]
    return [name for name in names if backend.add(name, 1, timeout=timeout)]


def release(names: Sequence[str]) -> None:
    """Let the locks go."""
    if names:
        caches["default"].delete_many(list(names))
