"""Remote servers' verify keys as we hold them: checking a key response, caching it, reading it back.

A response from ``/_matrix/key/v2/server`` is accepted only if ``server_name`` matches and every
key in ``verify_keys`` signed it (:func:`check_key_response`); its keys are then stored with
``valid_until_ts`` (``expired_ts`` for old ones) and the signed response is kept for the notary
(:func:`store_key_response`). Fetching is :mod:`federation.handlers.keys`'s job; nothing here
talks to the network.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import IntegrityError, transaction

from federation.models import RemoteKeyResponse, RemoteServerKey
from federation.protocol.errors import ProtocolError, SignatureError
from federation.protocol.signing import VerifyKey, verify_json_signature
from federation.transport.errors import KeyFetchError


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


def cached_verify_keys(server_name: str, key_ids: Sequence[str], min_valid_ts: int,
                       *, current_only: bool = False) -> dict[str, VerifyKey]:
    """The held keys of ``server_name`` among ``key_ids`` valid at ``min_valid_ts`` (no fetching).

    ``current_only`` leaves out keys known only as old keys (requests must use a current key).
    """
    out: dict[str, VerifyKey] = {}
    for row in RemoteServerKey.objects.filter(server_name=server_name, key_id__in=list(key_ids),
                                              valid_until_ts__gte=min_valid_ts):
        if current_only and row.expired_ts is not None:
            continue
        try:
            out[row.key_id] = VerifyKey.decode(row.key_id, row.key)
        except SignatureError:
            continue
    return out


def all_cached_keys(server_name: str) -> dict[str, tuple[VerifyKey, int]]:
    """Every held key of ``server_name``: ``{key_id: (key, valid_until_ts)}`` (undecodable ones left out)."""
    rows: dict[str, tuple[VerifyKey, int]] = {}
    for key_id, key, until in RemoteServerKey.objects.filter(server_name=server_name).values_list(
            "key_id", "key", "valid_until_ts"):
        try:
            rows[key_id] = (VerifyKey.decode(key_id, key), until)
        except SignatureError:
            continue
    return rows


def key_responses(server_name: str, key_ids: Sequence[str] = ()) -> list[RemoteKeyResponse]:
    """The kept signed responses of ``server_name`` (for the given key IDs, or all)."""
    qs = RemoteKeyResponse.objects.filter(server_name=server_name)
    if key_ids:
        qs = qs.filter(key_id__in=list(key_ids))
    return list(qs)
