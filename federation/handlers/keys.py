"""Remote servers' keys on demand, and the notary.

:func:`get_verify_keys` (for event signatures, through :class:`OrmKeyStore`, the protocol core's
``KeyStore``) and :func:`get_server_verify_keys_now` (for request authentication) answer from the
cache (:mod:`federation.store.keys`) and fetch ``/_matrix/key/v2/server`` from the server itself
when a key is missing or no longer valid. Failed fetches are not retried for
:data:`FETCH_FAILURE_COOLDOWN` seconds per server. :class:`TransactionKeyStore` reads each origin's
cached keys once per inbound transaction.

:func:`notary_query` answers ``/_matrix/key/v2/query``: cached responses that satisfy
``minimum_valid_until_ts`` (fetched when needed), each countersigned by us.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

from federation import config
from federation.clock import now_ms
from federation.protocol.signing import VerifyKey, sign_json
from federation.signing_key import get_signing_key, own_verify_keys, server_key_response
from federation.store.keys import (
    all_cached_keys,
    cached_verify_keys,
    check_key_response,
    key_responses,
    store_key_response,
)
from federation.transport.client import FederationClient
from federation.transport.errors import FederationError, KeyFetchError

log = logging.getLogger(__name__)

FETCH_FAILURE_COOLDOWN = 60.0
_failures: dict[str, float] = {}


def fetch_server_keys(server_name: str) -> dict[str, Any]:
    """Fetch, check and cache ``server_name``'s keys from the server itself.

    Raises:
        KeyFetchError: on any failure (also for 60 s after a failure, without a new request).
    """
    failed = _failures.get(server_name)
    if failed and time.time() - failed < FETCH_FAILURE_COOLDOWN:
        raise KeyFetchError(f"fetching keys of {server_name} failed recently")
    try:
        response = FederationClient(timeout=15).get_json(server_name, "/_matrix/key/v2/server", sign=False)
        check_key_response(response, server_name)
    except (FederationError, KeyFetchError) as exc:
        _failures[server_name] = time.time()
        raise KeyFetchError(str(exc)) from exc
    _failures.pop(server_name, None)
    store_key_response(response, server_name)
    return response


def clear_fetch_failures() -> None:
    """Forget recent key fetch failures (tests)."""
    _failures.clear()


def get_verify_keys(server_name: str, key_ids: Sequence[str], min_valid_ts: int,
                    *, current_only: bool = False) -> dict[str, VerifyKey]:
    """Keys of ``server_name`` among ``key_ids`` valid at ``min_valid_ts``, fetching if some are missing.

    ``current_only`` excludes keys known only as old keys (requests must use a current key).

    Raises:
        KeyFetchError: if a fetch was needed and failed, and no key at all is known.
    """
    if server_name == config.server_name():
        return own_verify_keys(tuple(key_ids), min_valid_ts, current_only=current_only)
    found = cached_verify_keys(server_name, key_ids, min_valid_ts, current_only=current_only)
    if len(found) < len(set(key_ids)):
        try:
            fetch_server_keys(server_name)
        except KeyFetchError:
            if not found:
                raise
            return found
        found = cached_verify_keys(server_name, key_ids, min_valid_ts, current_only=current_only)
    return found


def get_server_verify_keys_now(server_name: str, key_ids: Sequence[str]) -> dict[str, VerifyKey]:
    """Current keys valid right now: what an inbound request's signature may use (the transport's
    ``KeyLookup``)."""
    return get_verify_keys(server_name, key_ids, now_ms(), current_only=True)


class OrmKeyStore:
    """The protocol core's ``KeyStore`` over the cache, fetching missing keys from their server."""

    def get_verify_keys(self, server_name: str, key_ids: Sequence[str], at_ts: int | None) -> Mapping[str, VerifyKey]:
        try:
            return get_verify_keys(server_name, key_ids, at_ts if at_ts is not None else 0)
        except KeyFetchError as exc:
            log.info("no keys of %s for an event: %s", server_name, exc)
            return {}


class TransactionKeyStore:
    """The ``KeyStore`` for one inbound transaction: each origin's cached keys are read from the
    database once, then answered from memory; a miss falls through to :class:`OrmKeyStore`
    (which fetches) and drops the snapshot.

    Guarantee: the same answers as ``OrmKeyStore`` (a key counts only if its ``valid_until_ts`` is
    at least the event's ``origin_server_ts``), with one query per server instead of one per PDU.
    """

    def __init__(self) -> None:
        self._orm = OrmKeyStore()
        self._rows: dict[str, dict[str, tuple[VerifyKey, int]]] = {}

    def get_verify_keys(self, server_name: str, key_ids: Sequence[str], at_ts: int | None) -> Mapping[str, VerifyKey]:
        if server_name == config.server_name():
            return self._orm.get_verify_keys(server_name, key_ids, at_ts)
        rows = self._rows.get(server_name)
        if rows is None:
            rows = self._rows[server_name] = all_cached_keys(server_name)
        min_ts = at_ts if at_ts is not None else 0
        found = {k: rows[k][0] for k in key_ids if k in rows and rows[k][1] >= min_ts}
        if len(found) < len(set(key_ids)):
            self._rows.pop(server_name, None)
            return self._orm.get_verify_keys(server_name, key_ids, at_ts)
        return found


def notary_query(criteria: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Answer a notary query ``{server: {key_id: {"minimum_valid_until_ts": ms}}}``.

    An empty key map asks for all the server's keys. Each returned response is the server's own
    signed response with our signature added. Servers we cannot reach are left out.
    """
    out: list[dict[str, Any]] = []
    me = config.server_name()
    for server, wanted in criteria.items():
        if not isinstance(server, str):
            continue
        wanted = wanted if isinstance(wanted, Mapping) else {}
        min_ts = 0
        for crit in wanted.values():
            if isinstance(crit, Mapping) and isinstance(crit.get("minimum_valid_until_ts"), int):
                min_ts = max(min_ts, crit["minimum_valid_until_ts"])
        if server == me:
            out.append(server_key_response())
            continue
        rows = key_responses(server, list(wanted))
        if not rows or any(r.valid_until_ts < min_ts for r in rows) or (
                wanted and {r.key_id for r in rows} != set(wanted)):
            try:
                fetch_server_keys(server)
            except KeyFetchError as exc:
                log.info("notary: no keys for %s: %s", server, exc)
            rows = key_responses(server, list(wanted))
        seen: set[str] = set()
        for r in rows:
            body = json.dumps(r.response, sort_keys=True)
            if body in seen:
                continue
            seen.add(body)
            out.append(sign_json(r.response, me, get_signing_key()))
    return out
