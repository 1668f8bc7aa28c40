"""Rate limits shared by every process: counters in the Redis cache, a sliding window per limit.

Limits (``CONCORD_RATE_LIMIT_<NAME>=<count>/<seconds>``; ``CONCORD_RATE_LIMITS=off`` turns them all
off, as the test suite does):

============== ==================================== =============================================
name           what is counted                      default
============== ==================================== =============================================
login_account  failed logins of one account         10 per 300 s
login_address  failed logins from one address       30 per 300 s
rest           REST calls of one user               1200 per 60 s (``api-bypass-rate-limit`` exempt)
messages       messages of one user in one room     120 per 60 s
invites        invitations sent by one user         60 per 3600 s
federation     requests of one remote server        100 per 1 s (slowed from half of it)
============== ==================================== =============================================

Guarantees: a counter is shared by all web processes and workers (it lives in Redis, not in
memory); a window's counter expires two windows later; a refusal says how long to wait
(``retry_after``, whole seconds, at least 1) before one more request fits.

The window slides: the count is this fixed window's events plus the previous window's, weighted by
how much of it still lies within the last ``seconds`` (the estimate Cloudflare and nginx use). So
no boundary lets a burst of twice the limit through, and a limit that was reached stays reached
when a new fixed window begins. When Redis cannot be reached the limits let requests through (logged):
a limiter must not take the chat down with it.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache

from chat.api_errors import ApiError

log = logging.getLogger(__name__)

DEFAULTS: dict[str, str] = {
    "login_account": "10/300",
    "login_address": "30/300",
    "rest": "1200/60",
    "messages": "120/60",
    "invites": "60/3600",
    "federation": "100/1",
}


@dataclass(frozen=True)
class Limit:
    """At most ``count`` events per ``seconds`` window."""

    name: str
    count: int
    seconds: int

    @classmethod
    def parse(cls, name: str, spec: str) -> Limit:
        """``"10/60"`` -> 10 per 60 s. Raises ValueError for anything else."""
        count, _, seconds = spec.partition("/")
        limit = cls(name, int(count), int(seconds))
        if limit.count < 1 or limit.seconds < 1:
            raise ValueError(f"rate limit {name}: {spec!r} is not <count>/<seconds> with both at least 1")
        return limit


class RateLimited(ApiError):
    """Too many requests: Rocket.Chat's ``error-too-many-requests``, 429, with the wait."""

    status_code = 429

    def __init__(self, retry_after: float) -> None:
        self.retry_after = max(1, math.ceil(retry_after))
        super().__init__(f"Error, too many requests. Please slow down. You must wait {self.retry_after} seconds "
                         "before trying this endpoint again. [error-too-many-requests]",
                         "error-too-many-requests")


def enabled() -> bool:
    return bool(getattr(settings, "CONCORD_RATE_LIMITS", True))


def limit(name: str) -> Limit:
    """The configured limit ``name`` (settings ``CONCORD_RATE_LIMIT_<NAME>``, else the default)."""
    spec = getattr(settings, f"CONCORD_RATE_LIMIT_{name.upper()}", None) or DEFAULTS[name]
    return Limit.parse(name, str(spec))


def _index(lim: Limit, now: float) -> tuple[int, float]:
    """The fixed window ``now`` falls in and the seconds left in it."""
    index = int(now // lim.seconds)
    return index, (index + 1) * lim.seconds - now


def _key(lim: Limit, key: str, index: int) -> str:
    return f"rl:{lim.name}:{index}:{key}"


def _estimate(lim: Limit, current: int, previous: int, left: float) -> float:
    """Events within the last ``seconds``: this window's plus the share of the previous one still inside."""
    return current + previous * (left / lim.seconds)


def _wait(lim: Limit, current: int, previous: int, left: float) -> float:
    """Seconds until one more event fits, if nothing else is counted meanwhile."""
    room = lim.count - 1  # the estimate must fall to this for the next event to be within the limit
    if current <= room:
        if previous == 0:
            return 0.0
        return max(0.0, left - (room - current) * lim.seconds / previous)
    # Not before this window has ended and enough of it has slid out of the next one.
    return left + lim.seconds * (1 - room / current)


def _read(lim: Limit, key: str, index: int) -> tuple[int, int]:
    values = cache.get_many([_key(lim, key, index), _key(lim, key, index - 1)])
    return int(values.get(_key(lim, key, index)) or 0), int(values.get(_key(lim, key, index - 1)) or 0)


def count(name: str, key: str, *, now: float | None = None) -> tuple[float, int, float]:
    """Count one event for ``key``: ``(events in the sliding window, the limit, seconds until one
    more fits)`` (events 0 when limits are off or the cache is unavailable)."""
    lim = limit(name)
    now = time.time() if now is None else now
    index, left = _index(lim, now)
    if not enabled():
        return 0, lim.count, 0.0
    try:
        cache.add(_key(lim, key, index), 0, timeout=2 * lim.seconds + 1)
        current = int(cache.incr(_key(lim, key, index)))
        previous = int(cache.get(_key(lim, key, index - 1)) or 0)
    except Exception:
        log.exception("rate limit %s not counted (cache unavailable)", name)
        return 0, lim.count, 0.0
    return _estimate(lim, current, previous, left), lim.count, _wait(lim, current, previous, left)


def hit(name: str, key: str, *, now: float | None = None) -> float | None:
    """Count one event for ``key``; the seconds to wait when that went over the limit, else None."""
    n, allowed, wait = count(name, key, now=now)
    return max(wait, 0.001) if n > allowed else None


def used(name: str, key: str, *, now: float | None = None) -> float:
    """How many events ``key`` has in the sliding window (without counting one)."""
    if not enabled():
        return 0
    lim = limit(name)
    index, left = _index(lim, time.time() if now is None else now)
    try:
        current, previous = _read(lim, key, index)
    except Exception:
        log.exception("rate limit %s not read (cache unavailable)", name)
        return 0
    return _estimate(lim, current, previous, left)


def blocked_for(name: str, key: str, *, now: float | None = None) -> float | None:
    """The seconds ``key`` must still wait when its window is already full, else None (nothing counted)."""
    if not enabled():
        return None
    lim = limit(name)
    index, left = _index(lim, time.time() if now is None else now)
    try:
        current, previous = _read(lim, key, index)
    except Exception:
        log.exception("rate limit %s not read (cache unavailable)", name)
        return None
    if _estimate(lim, current, previous, left) > lim.count - 1:
        return max(_wait(lim, current, previous, left), 0.001)
    return None


def check(name: str, key: str) -> None:
    """Count one event; raise :class:`RateLimited` when it is over the limit."""
    wait = hit(name, key)
    if wait is not None:
        raise RateLimited(wait)


def login_wait(account: str, address: str) -> float | None:
    """Seconds a login for ``account`` from ``address`` must wait (too many recent failures), else None."""
    waits = [w for w in (blocked_for("login_account", account.lower()), blocked_for("login_address", address))
             if w is not None]
    return max(waits) if waits else None


def login_failed(account: str, address: str) -> None:
    """Count a failed login against the account and the address."""
    hit("login_account", account.lower())
    hit("login_address", address)


def client_address(meta: dict[str, object]) -> str:
    """The address a request came from (the socket's peer; a proxy in front should pass the real one)."""
    return str(meta.get("REMOTE_ADDR") or "unknown")
