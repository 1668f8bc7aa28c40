"""The boundary of every ``/_matrix`` endpoint.

:func:`matrix_endpoint` does the boundary work (federation switched on, method check -> 405
``M_UNRECOGNIZED``, body size -> 413 ``M_TOO_LARGE``, strict JSON -> ``M_NOT_JSON`` /
``M_BAD_JSON``, X-Matrix authentication against our key store -> 401 ``M_UNAUTHORIZED``, the
allow/deny lists -> 403, waking the origin's outbound queue) and turns
:class:`~federation.transport.errors.MatrixError` into the spec's error body; the view itself
parses and calls one function. No input may produce a 500: unexpected exceptions are logged and
answered 500 ``M_UNKNOWN`` only for genuine server faults.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

from django.core.cache import cache
from django.db import DataError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.request import RawPostDataException
from django.views.decorators.csrf import csrf_exempt

from chat import rate_limits
from federation import config
from federation.handlers.keys import get_server_verify_keys_now
from federation.protocol.canonical_json import parse_json
from federation.protocol.errors import CanonicalJsonError
from federation.store.outbox import wake_destination
from federation.transport.auth import AuthFailure, authenticate_request
from federation.transport.errors import MatrixError

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 8 * 1024 * 1024

View = Callable[..., Any]


def error_response(status: int, errcode: str, error: str) -> JsonResponse:
    """The spec's error body."""
    return JsonResponse({"errcode": errcode, "error": error}, status=status)


class LimitExceeded(Exception):
    """Too many requests from one server: 429 ``M_LIMIT_EXCEEDED`` with ``retry_after_ms``."""

    def __init__(self, message: str, retry_after_ms: int) -> None:
        super().__init__(message)
        self.retry_after_ms = max(1, retry_after_ms)


SLOW_DOWN_SECONDS = 0.5


def _throttle(origin: str) -> None:
    """Synapse's shape of federation rate limiting: past half the per-window limit each request
    waits a little; past the limit it is refused (``CONCORD_RATE_LIMIT_FEDERATION``)."""
    n, allowed, wait = rate_limits.count("federation", origin)
    if n > allowed:
        raise LimitExceeded(f"Too many requests from {origin}", int(wait * 1000) + 1)
    if n > allowed // 2:
        time.sleep(SLOW_DOWN_SECONDS)


@contextlib.contextmanager
def _in_flight(origin: str) -> Iterator[None]:
    """At most ``CONCORD_FEDERATION_MAX_CONCURRENT`` requests of one server at a time (all
    processes together); more are refused with 429 until one finishes."""
    if not rate_limits.enabled():
        yield
        return
    key = f"rl:inflight:{origin}"
    try:
        cache.add(key, 0, timeout=120)
        n = int(cache.incr(key))
    except Exception:
        log.exception("concurrency of %s not counted (cache unavailable)", origin)
        yield
        return
    try:
        if n > config.max_concurrent_requests():
            raise LimitExceeded(f"Too many concurrent requests from {origin}", 1000)
        yield
    finally:
        try:
            cache.decr(key)
        except Exception:  # expired meanwhile (a request longer than two minutes): nothing to undo
            log.info("concurrency counter of %s was gone", origin)


def matrix_endpoint(methods: tuple[str, ...], *, auth: bool = True) -> Callable[[View], View]:
    """Wrap a view ``(request, body, origin, **kwargs) -> dict | HttpResponse`` with the boundary work."""

    def deco(fn: View) -> View:
        @csrf_exempt
        @functools.wraps(fn)
        def view(request: HttpRequest, **kwargs: Any) -> HttpResponse:
            if not config.enabled():
                return error_response(404, "M_UNRECOGNIZED", "Federation is disabled on this server")
            if request.method not in methods:
                return error_response(405, "M_UNRECOGNIZED", f"{request.method} is not allowed here")
            try:
                body = _read_json(request)
                origin = ""
                if auth:
                    try:
                        origin = authenticate_request(request, body, config.server_name(),
                                                      get_server_verify_keys_now)
                    except AuthFailure as exc:
                        log.info("refused federation request to %s: %s", request.path, exc)
                        raise MatrixError(exc.status, exc.errcode, str(exc))
                    if not config.server_allowed(origin):
                        raise MatrixError(403, "M_FORBIDDEN", "Federation with your server is not allowed")
                    _throttle(origin)
                    _wake(origin)
                    with _in_flight(origin):
                        result = fn(request, body, origin, **kwargs)
                else:
                    result = fn(request, body, origin, **kwargs)
            except LimitExceeded as exc:
                return JsonResponse({"errcode": "M_LIMIT_EXCEEDED", "error": str(exc),
                                     "retry_after_ms": exc.retry_after_ms}, status=429)
            except MatrixError as exc:
                return error_response(exc.status, exc.errcode, exc.error)
            except DataError:  # e.g. a NUL character, which PostgreSQL text cannot hold: nothing was stored
                log.info("federation request to %s held a value the database cannot store", request.path)
                return error_response(400, "M_INVALID_PARAM", "The request holds a value that cannot be stored")
            except Exception:
                log.exception("federation endpoint %s failed", request.path)
                return error_response(500, "M_UNKNOWN", "Internal server error")
            if isinstance(result, HttpResponse):
                return result
            return JsonResponse(result, safe=False, json_dumps_params={"ensure_ascii": False})

        return view

    return deco


def _read_json(request: HttpRequest) -> Any:
    if request.method in ("GET", "HEAD", "DELETE"):
        return None
    try:
        length = int(request.headers.get("Content-Length") or 0)
    except ValueError:
        raise MatrixError(400, "M_BAD_JSON", "bad Content-Length")
    if length > MAX_BODY_BYTES:
        raise MatrixError(413, "M_TOO_LARGE", "request body too large")
    try:
        raw = request.body
    except RawPostDataException:
        raw = b""
    except Exception as exc:  # RequestDataTooBig and friends
        if exc.__class__.__name__ == "RequestDataTooBig":
            raise MatrixError(413, "M_TOO_LARGE", "request body too large")
        raise
    if len(raw) > MAX_BODY_BYTES:
        raise MatrixError(413, "M_TOO_LARGE", "request body too large")
    if not raw:
        return {}
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        raise MatrixError(400, "M_NOT_JSON", "body is not UTF-8 JSON")
    try:
        return parse_json(raw)
    except CanonicalJsonError as exc:
        code = "M_NOT_JSON" if "malformed" in str(exc) else "M_BAD_JSON"
        raise MatrixError(400, code, f"body is not valid JSON: {exc}")


def _wake(origin: str) -> None:
    """Any request from a server clears our backoff for it and re-drives its queue."""
    try:
        wake_destination(origin)
    except Exception:
        log.exception("could not wake the queue of %s", origin)
