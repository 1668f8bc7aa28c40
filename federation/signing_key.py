"""Our signing key: generated on first use, rotated on demand, and our signed key response.

The key lives in ``CONCORD_DATA_DIR/matrix_signing.key`` (one line, ``ed25519 <version> <seed>``,
Synapse's format, mode 0600). :func:`rotate_signing_key` (the ``federation_rotate_key`` command)
makes a new key under a *new* version and moves the old public key to
``matrix_old_verify_keys.json`` with its ``expired_ts``: peers cache keys by ID, so a key ID is
never reused. :func:`server_key_response` is our signed ``/_matrix/key/v2/server``.

Layer: bottom, beside :mod:`federation.config` (the transport signs requests with this key).
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

from federation import config
from federation.clock import now_ms
from federation.protocol.signing import SigningKey, VerifyKey, sign_json

KEY_FILE = "matrix_signing.key"
OLD_KEYS_FILE = "matrix_old_verify_keys.json"

_key_lock = threading.Lock()
_cached_key: tuple[Path, float, SigningKey] | None = None


def _key_path() -> Path:
    return config.data_dir() / KEY_FILE


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
    path = config.data_dir() / OLD_KEYS_FILE
    if not path.exists():
        return {}
    data = json.loads(path.read_text())
    return data if isinstance(data, dict) else {}


def own_verify_keys(key_ids: list[str] | tuple[str, ...], at_ts: int | None,
                    *, current_only: bool = False) -> dict[str, VerifyKey]:
    """Our public keys among ``key_ids``: the current one, and retired ones still valid at ``at_ts``
    (unless ``current_only``, what a request signature must use)."""
    key = get_signing_key()
    out: dict[str, VerifyKey] = {}
    olds = {} if current_only else old_verify_keys()
    for key_id in key_ids:
        if key_id == key.key_id:
            out[key_id] = key.verify_key
        elif key_id in olds and (at_ts is None or olds[key_id]["expired_ts"] >= at_ts):
            out[key_id] = VerifyKey.decode(key_id, olds[key_id]["key"])
    return out


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
        (config.data_dir() / OLD_KEYS_FILE).write_text(json.dumps(olds, indent=1))
        _write_private(_key_path(), new.to_key_file_line() + "\n")
        _cached_key = None
    return old.key_id, new.key_id


def server_key_response(valid_for_ms: int | None = None) -> dict[str, Any]:
    """Our signed ``/_matrix/key/v2/server`` body."""
    key = get_signing_key()
    validity = valid_for_ms if valid_for_ms is not None else config.key_validity_ms()
    body = {
        "server_name": config.server_name(),
        "valid_until_ts": now_ms() + validity,
        "verify_keys": {key.key_id: {"key": key.verify_key.encode()}},
        "old_verify_keys": old_verify_keys(),
    }
    return sign_json(body, config.server_name(), key)
