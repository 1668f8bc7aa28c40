"""Our signing key, remote servers' verify keys, and the notary.

Our key
    Generated on first use into ``CONCORD_DATA_DIR/matrix_signing.key`` (one line,
    ``ed25519 <version> <seed>``, Synapse's format, mode 0600). :func:`rotate_signing_key` (the
    ``federation_rotate_key`` command) makes a new key under a *new* version and moves the old
    public key to ``matrix_old_verify_keys.json`` with its ``expired_ts``: peers cache keys by ID,
    so a key ID is never reused. :func:`server_key_response` is our signed ``/_matrix/key/v2/server``.

Remote keys
    :func:`get_server_verify_keys_now` (for request authentication) and :class:`OrmKeyStore` (the
    protocol core's ``KeyStore``, for event signatures) read :class:`~federation.models.RemoteServerKey`
    and fetch ``/_matrix/key/v2/server`` from the server itself when a key is missing or no longer
    valid. A response is accepted only if ``server_name`` matches and every key in ``verify_keys``
    signed it; the keys are then stored with ``valid_until_ts`` (``expired_ts`` for old ones) and the
    signed response is kept for the notary. Failed fetches are not retried for 60 s per server.

Notary
    :func:`notary_query` answers ``/_matrix/key/v2/query``: cached responses that satisfy
    ``minimum_valid_until_ts`` (fetched when needed), each countersigned by us.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction

from federation.protocol.errors import ProtocolError, SignatureError
from federation.protocol.signing import SigningKey, VerifyKey, sign_json, verify_json_signature

log = logging.getLogger(__name__)

KEY_FILE = "matrix_signing.key"
OLD_KEYS_FILE = "matrix_old_verify_keys.json"
FETCH_FAILURE_COOLDOWN = 60.0

_key_lock = threading.Lock()
_cached_key: tuple[Path, float, SigningKey] | None = None
_failures: dict[str, float] = {}


class KeyFetchError(Exception):
    """A remote server's keys could not be fetched or did not check out."""


def now_ms() -> int:
    """Milliseconds since the epoch."""
    return int(time.time() * 1000)


def our_server_name() -> str:
    """``CONCORD_SERVER_NAME`` (empty when federation is not configured)."""
    return str(getattr(settings, "CONCORD_SERVER_NAME", ""))


def _key_path() -> Path:
    return Path(settings.DATA_DIR) / KEY_FILE


def _new_version() -> str:
    return "c" + format(int(time.time() * 1000), "x")


def get_signing_key() -> SigningKey:
    """Our current signing key; generated and saved on first use.

    Guarantees: the same key (and version) is returned until the key file changes; the file is
    written atomically with mode 0600.
    """
    global _cached_key
    path = _key_path()
    with _key_lock:
        mtime = path.stat().st_mtime if path.exists() else -1.0
        if _cached_key and _cached_key[0] == path and _cached_key[1] == mtime:
            return _cached_key[2]
        if not path.exists():
            key = SigningKey.generate(_new_version())
            _write_private(path, key.to_key_file_line() + "\n")
            mtime = path.stat().st_mtime
        key = SigningKey.from_key_file_line(path.read_text().strip().splitlines()[0])
        _cached_key = (path, mtime, key)
        return key


def _write_private(path: Path, text: str) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.chmod(0o600)
    tmp.replace(path)


def old_verify_keys() -> dict[str, dict[str, Any]]:
    """Our retired public keys: ``{key_id: {"key": b64, "expired_ts": ms}}``."""
    path = Path(settings.DATA_DIR) / OLD_KEYS_FILE
    if not path.exists():
        return {}
    data = json.loads(path.read_text())
    return data if isinstance(data, dict) else {}


def rotate_signing_key() -> tuple[str, str]:
    """Replace our signing key by a new one under a new key ID; keep the old public key as expired.

    Returns:
        ``(old key ID, new key ID)``.
    """
    global _cached_key
    old = get_signing_key()
    olds = old_verify_keys()
    olds[old.key_id] = {"key": old.verify_key.encode(), "expired_ts": now_ms()}
    new = SigningKey.generate(_new_version())
    while new.key_id in olds:
        new = SigningKey.generate(_new_version() + "a")
    with _key_lock:
        (Path(settings.DATA_DIR) / OLD_KEYS_FILE).write_text(json.dumps(olds, indent=1))
        _write_private(_key_path(), new.to_key_file_line() + "\n")
        _cached_key = None
    return old.key_id, new.key_id


def server_key_response(valid_for_ms: int | None = None) -> dict[str, Any]:
    """Our signed ``/_matrix/key/v2/server`` body."""
    key = get_signing_key()
    validity = valid_for_ms if valid_for_ms is not None else settings.CONCORD_FEDERATION_KEY_VALIDITY * 1000
    body = {
        "server_name": our_server_name(),
        "valid_until_ts": now_ms() + validity,
        "verify_keys": {key.key_id: {"key": key.verify_key.encode()}},
        "old_verify_keys": old_verify_keys(),
    }
    return sign_json(body, our_server_name(), key)


# --- remote keys -------------------------------------------------------------------------------


def check_key_response(response: Any, server_name: str) -> None:
    """Check a ``/_matrix/key/v2/server`` response: names ``server_name``, self-signed by all its keys.

    Raises:
        KeyFetchError: if not.
    """
    if not isinstance(response, dict) or response.get("server_name") != server_name:
        raise KeyFetchError(f"key response is not for {server_name}")
    vks = response.get("verify_keys")
    if not isinstance(vks, dict) or not vks:
        raise KeyFetchError("key response has no verify_keys")
    if not isinstance(response.get("valid_until_ts"), int):
        raise KeyFetchError("key response has no valid_until_ts")
    for key_id, entry in vks.items():
        try:
            vk = VerifyKey.decode(key_id, entry["key"])
            verify_json_signature(response, server_name, vk)
        except (ProtocolError, KeyError, TypeError) as exc:
            raise KeyFetchError(f"key {key_id} of {server_name} did not sign the response: {exc}")


def store_key_response(response: dict[str, Any], server_name: str) -> None:
    """Cache the keys of a checked response (newer validity wins)."""
    from federation.models import RemoteKeyResponse, RemoteServerKey

    until = int(response["valid_until_ts"])
    rows: list[tuple[str, str, int, int | None]] = []
    for key_id, entry in response["verify_keys"].items():
        rows.append((key_id, entry["key"], until, None))
    olds = response.get("old_verify_keys")
    if isinstance(olds, dict):
        for key_id, entry in olds.items():
            if isinstance(entry, dict) and isinstance(entry.get("key"), str) and isinstance(
                    entry.get("expired_ts"), int):
                try:
                    VerifyKey.decode(key_id, entry["key"])
                except ProtocolError:
                    continue
                rows.append((key_id, entry["key"], entry["expired_ts"], entry["expired_ts"]))
    for key_id, key_b64, valid_until, expired in rows:
        for _ in range(2):
            try:
                with transaction.atomic():
                    obj = RemoteServerKey.objects.filter(server_name=server_name, key_id=key_id).first()
                    if obj is None:
                        RemoteServerKey.objects.create(server_name=server_name, key_id=key_id, key=key_b64,
                                                       valid_until_ts=valid_until, expired_ts=expired)
                    elif obj.key == key_b64 and (expired is not None or valid_until >= obj.valid_until_ts):
                        RemoteServerKey.objects.filter(pk=obj.pk).update(valid_until_ts=valid_until,
                                                                         expired_ts=expired)
                    if expired is None:
                        RemoteKeyResponse.objects.update_or_create(
                            server_name=server_name, key_id=key_id,
                            defaults={"valid_until_ts": valid_until, "response": response})
                break
            except IntegrityError:
                continue


def fetch_server_keys(server_name: str) -> dict[str, Any]:
    """Fetch, check and cache ``server_name``'s keys from the server itself.

    Raises:
        KeyFetchError: on any failure (also for 60 s after a failure, without a new request).
    """
    from federation.transport.client import FederationClient, FederationError

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


def _own_keys(key_ids: Iterable[str], at_ts: int | None) -> dict[str, VerifyKey]:
    key = get_signing_key()
    out: dict[str, VerifyKey] = {}
    olds = old_verify_keys()
    for key_id in key_ids:
        if key_id == key.key_id:
            out[key_id] = key.verify_key
        elif key_id in olds and (at_ts is None or olds[key_id]["expired_ts"] >= at_ts):
            out[key_id] = VerifyKey.decode(key_id, olds[key_id]["key"])
    return out


def _cached_keys(server_name: str, key_ids: Sequence[str], min_valid_ts: int) -> dict[str, VerifyKey]:
    from federation.models import RemoteServerKey

    out: dict[str, VerifyKey] = {}
    for row in RemoteServerKey.objects.filter(server_name=server_name, key_id__in=list(key_ids),
                                              valid_until_ts__gte=min_valid_ts):
        try:
            out[row.key_id] = VerifyKey.decode(row.key_id, row.key)
        except SignatureError:
            continue
    return out


def get_verify_keys(server_name: str, key_ids: Sequence[str], min_valid_ts: int,
                    *, current_only: bool = False) -> dict[str, VerifyKey]:
    """Keys of ``server_name`` among ``key_ids`` valid at ``min_valid_ts``, fetching if some are missing.

    ``current_only`` excludes keys known only as old keys (requests must use a current key).

    Raises:
        KeyFetchError: if a fetch was needed and failed, and no key at all is known.
    """
    if server_name == our_server_name():
        own = _own_keys(key_ids, None if current_only else min_valid_ts)
        if current_only:
            own = {k: v for k, v in own.items() if k == get_signing_key().key_id}
        return own
    found = _cached_keys(server_name, key_ids, min_valid_ts)
    if current_only:
        from federation.models import RemoteServerKey
        expired = set(RemoteServerKey.objects.filter(server_name=server_name, key_id__in=list(found),
                                                     expired_ts__isnull=False).values_list("key_id", flat=True))
        found = {k: v for k, v in found.items() if k not in expired}
    if len(found) < len(set(key_ids)):
        try:
            fetch_server_keys(server_name)
        except KeyFetchError:
            if not found:
                raise
            return found
        found = get_verify_keys_cached(server_name, key_ids, min_valid_ts, current_only)
    return found


def get_verify_keys_cached(server_name: str, key_ids: Sequence[str], min_valid_ts: int,
                           current_only: bool) -> dict[str, VerifyKey]:
    """Like :func:`get_verify_keys` without fetching."""
    from federation.models import RemoteServerKey

    found = _cached_keys(server_name, key_ids, min_valid_ts)
    if current_only:
        expired = set(RemoteServerKey.objects.filter(server_name=server_name, key_id__in=list(found),
                                                     expired_ts__isnull=False).values_list("key_id", flat=True))
        found = {k: v for k, v in found.items() if k not in expired}
    return found


def get_server_verify_keys_now(server_name: str, key_ids: Sequence[str]) -> dict[str, VerifyKey]:
    """Current keys valid right now: what an inbound request's signature may use."""
    return get_verify_keys(server_name, key_ids, now_ms(), current_only=True)


class OrmKeyStore:
    """The protocol core's ``KeyStore`` over the cache, fetching missing keys from their server."""

    def get_verify_keys(self, server_name: str, key_ids: Sequence[str], at_ts: int | None) -> Mapping[str, VerifyKey]:
        try:
            return get_verify_keys(server_name, key_ids, at_ts if at_ts is not None else 0)
        except KeyFetchError as exc:
            log.info("no keys of %s for an event: %s", server_name, exc)
            return {}


# --- notary ------------------------------------------------------------------------------------


def notary_query(criteria: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Answer a notary query ``{server: {key_id: {"minimum_valid_until_ts": ms}}}``.

    An empty key map asks for all the server's keys. Each returned response is the server's own
    signed response with our signature added. Servers we cannot reach are left out.
    """
    from federation.models import RemoteKeyResponse

    out: list[dict[str, Any]] = []
    me = our_server_name()
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
        qs = RemoteKeyResponse.objects.filter(server_name=server)
        if wanted:
            qs = qs.filter(key_id__in=list(wanted))
        rows = list(qs)
        if not rows or any(r.valid_until_ts < min_ts for r in rows) or (
                wanted and {r.key_id for r in rows} != set(wanted)):
            try:
                fetch_server_keys(server)
            except KeyFetchError as exc:
                log.info("notary: no keys for %s: %s", server, exc)
            rows = list(qs.all())
        seen: set[str] = set()
        for r in rows:
            body = json.dumps(r.response, sort_keys=True)
            if body in seen:
                continue
            seen.add(body)
            out.append(sign_json(r.response, me, get_signing_key()))
    return out
