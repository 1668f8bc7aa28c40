"""``federation.store.locks``: the room locks taken in one round trip exclude, and are excluded
by, the same names taken with ``cache.add`` (the single-room path and the beat task use that)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache

from federation.store import locks


def _names(n: int) -> list[str]:
    tag = uuid.uuid4().hex
    return [f"test-lock:{tag}:{i}" for i in range(n)]


def _check(names: list[str]) -> None:
    assert cache.add(names[1], 1, timeout=30)  # held elsewhere
    try:
        assert locks.take(names, timeout=30) == [names[0], names[2]]
        assert locks.take(names, timeout=30) == []
        assert not cache.add(names[0], 1, timeout=30)
        locks.release([names[0], names[2]])
        assert cache.add(names[0], 1, timeout=30)
        assert locks.take(names, timeout=30) == [names[2]]
    finally:
        cache.delete_many(names)


def test_on_redis_the_pipeline_and_cache_add_exclude_each_other() -> None:
    assert isinstance(caches["default"], RedisCache)  # the project's cache (chat/settings.py)
    _check(_names(3))


def test_on_another_backend_each_name_is_added_in_turn(settings: Any) -> None:
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    assert not isinstance(caches["default"], RedisCache)
    _check(_names(3))


@pytest.mark.parametrize("n", [1, 5])
def test_a_lock_expires_with_its_timeout(n: int) -> None:
    names = _names(n)
    assert locks.take(names, timeout=1) == names
    import time

    time.sleep(1.2)
    assert locks.take(names, timeout=30) == names
    locks.release(names)
