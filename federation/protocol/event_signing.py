"""Hashing and signing events, and verifying received ones.

Outgoing (spec "Adding hashes and signatures to outgoing events"): compute the
content hash into ``hashes.sha256``, redact, sign the redacted copy, copy the
signature back onto the full event.  :func:`hash_and_sign_event` does all
three; :func:`add_event_signature` adds another server's signature to an event
that already has its hashes (restricted joins, knocks and invites are
co-signed that way).

Incoming (spec "Validating hashes and signatures on received events"):
signatures first, on the redacted form, from every server that must sign
(:func:`required_signers`); a key counts only if it is known and, from room v5
on, valid at the event's ``origin_server_ts``.  Then the content hash: if it
does not match, the event is kept only in its redacted form.
:func:`verify_event` returns a :class:`VerifiedEvent` telling which.

The redacted canonical bytes that signatures cover are also what the event ID
hashes, so :func:`verify_event` encodes them once and derives both.
"""

from __future__ import annotations

import binascii
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from unpaddedbase64 import decode_base64, encode_base64

from .canonical_json import encode_canonical_json, encode_canonical_json_unchecked
from .errors import SignatureError
from .events import Event
from .hashing import compute_content_hash
from .redaction import redact_event
from .room_versions import RoomVersion
from .signing import ALGORITHM, SigningKey, VerifyKey, verify_json_signature
from .store import KeyStore

_NOT_HASHED = frozenset({"unsigned", "signatures", "hashes"})


def _b64decode(text: str) -> bytes:
    """Decode unpadded (standard or URL-safe) base64; b"" if malformed."""
    try:
        return binascii.a2b_base64(text + "=" * (-len(text) % 4), strict_mode=True)
    except (binascii.Error, ValueError):
        try:
            return decode_base64(text)
        except Exception:
            return b""


def _redacted_payload(pdu: Mapping[str, Any], room_version: RoomVersion) -> bytes:
    redacted = redact_event(pdu, room_version)
    redacted.pop("signatures", None)
    redacted.pop("unsigned", None)
    return encode_canonical_json(redacted)


def hash_and_sign_event(
    pdu: Mapping[str, Any],
    room_version: RoomVersion,
    server_name: str,
    key: SigningKey,
) -> dict[str, Any]:
    """Return a copy of ``pdu`` with its content hash and ``server_name``'s signature.

    Any previous ``hashes`` are replaced; signatures by other servers are kept
    (they would no longer verify if the content changed, so sign last).
    """
    out = dict(pdu)
    out["hashes"] = {"sha256": encode_base64(compute_content_hash(pdu))}
    return add_event_signature(out, room_version, server_name, key)


def add_event_signature(
    pdu: Mapping[str, Any],
    room_version: RoomVersion,
    server_name: str,
    key: SigningKey,
) -> dict[str, Any]:
    """Return a copy of ``pdu`` with one more signature (its hashes untouched)."""
    sig = encode_base64(key.sign(_redacted_payload(pdu, room_version)))
    out = dict(pdu)
    signatures = {k: dict(v) for k, v in pdu.get("signatures", {}).items()}
    signatures.setdefault(server_name, {})[key.key_id] = sig
    out["signatures"] = signatures
    return out


def required_signers(pdu: Mapping[str, Any], room_version: RoomVersion) -> set[str]:
    """The servers whose signatures an event must carry (room v3+ rules).

    The sender's server, except for third-party invites (the server that holds
    the invite may send it for the sender); plus, for a restricted join with
    ``join_authorised_via_users_server``, that user's server.
    """
    sender = pdu.get("sender")
    content = pdu.get("content")
    if type(content) is not dict and not isinstance(content, Mapping):
        content = {}
    servers: set[str] = set()
    is_member = pdu.get("type") == "m.room.member"
    membership = content.get("membership") if is_member else None
    if isinstance(sender, str) and ":" in sender:
        if not (membership == "invite" and "third_party_invite" in content):
            servers.add(sender.split(":", 1)[1])
    if room_version.restricted_join_rule and membership == "join":
        authoriser = content.get("join_authorised_via_users_server")
        if isinstance(authoriser, str) and ":" in authoriser:
            servers.add(authoriser.split(":", 1)[1])
    return servers


@dataclass(frozen=True, slots=True)
class VerifiedEvent:
    """The result of :func:`verify_event`.

    Attributes:
        event: the event to use from now on: the full event if the content hash
            matched, else its redacted copy (same event ID).
        content_hash_ok: whether the content hash matched.
    """

    event: Event
    content_hash_ok: bool


def verify_event(
    pdu: Mapping[str, Any],
    room_version: RoomVersion,
    keys: KeyStore,
    *,
    prechecked: bool = False,
    content_payload: bytes | None = None,
) -> VerifiedEvent:
    """Check an event's signatures and content hash; build its :class:`Event`.

    Args:
        pdu: the received PDU (already passed through
            :func:`~federation.protocol.validation.validate_pdu`).
        room_version: the room's version.
        keys: where to find servers' verify keys.
        prechecked: True if the PDU's strict canonical-JSON check already ran
            (``validate_pdu`` does it), to skip a second walk.
        content_payload: the canonical bytes the content hash covers, if the
            caller already encoded them (see :func:`~federation.protocol.receipt.check_pdu`).

    Raises:
        SignatureError: if a required server has no valid signature from a key
            we know (the event must then be dropped).
    """
    encode = encode_canonical_json_unchecked if prechecked else encode_canonical_json
    redacted = redact_event(pdu, room_version)
    redacted.pop("signatures", None)
    redacted.pop("unsigned", None)
    payload = encode(redacted)

    signatures = pdu.get("signatures")
    if type(signatures) is not dict and not isinstance(signatures, Mapping):
        raise SignatureError("signatures must be an object")
    ts = pdu.get("origin_server_ts")
    at_ts = ts if isinstance(ts, int) and room_version.enforce_key_validity else None
    for server in required_signers(pdu, room_version):
        _check_server_signed(payload, signatures.get(server), server, keys, at_ts)

    event_id = "$" + encode_base64(hashlib.sha256(payload).digest(), urlsafe=True)

    hashes = pdu.get("hashes")
    ok = False
    if isinstance(hashes, Mapping) and isinstance(hashes.get("sha256"), str):
        expected = _b64decode(hashes["sha256"])
        if content_payload is None:
            stripped = {k: v for k, v in pdu.items() if k not in _NOT_HASHED}
            content_payload = encode(stripped)
        ok = hashlib.sha256(content_payload).digest() == expected
    if ok:
        return VerifiedEvent(Event(pdu, room_version, event_id), True)
    return VerifiedEvent(
        Event(redact_event(pdu, room_version), room_version, event_id), False
    )


def _check_server_signed(
    payload: bytes,
    server_sigs: object,
    server: str,
    keys: KeyStore,
    at_ts: int | None,
) -> None:
    if not server_sigs or (type(server_sigs) is not dict and not isinstance(server_sigs, Mapping)):
        raise SignatureError(f"event not signed by {server}")
    key_ids = [k for k in server_sigs if isinstance(k, str) and k.startswith(ALGORITHM + ":")]
    known = keys.get_verify_keys(server, key_ids, at_ts)
    if not known:
        raise SignatureError(f"no known key of {server} among {key_ids}")
    for key_id, vk in known.items():
        sig_b64 = server_sigs.get(key_id)
        if not isinstance(sig_b64, str):
            raise SignatureError(f"signature by {server} is not a string")
        sig = _b64decode(sig_b64)
        if not sig:
            raise SignatureError(f"signature by {server} is not base64")
        vk.verify(payload, sig)


def verify_event_signature(
    pdu: Mapping[str, Any],
    room_version: RoomVersion,
    server_name: str,
    verify_key: VerifyKey,
) -> None:
    """Check ``server_name``'s signature on an event with one given key.

    Raises:
        SignatureError: if missing or invalid.
    """
    payload = _redacted_payload(pdu, room_version)
    verify_json_signature(pdu, server_name, verify_key, payload=payload)
