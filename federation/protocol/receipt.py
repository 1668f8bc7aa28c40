"""Steps 1-3 of the checks on receipt of a PDU, in one pass.

:func:`check_pdu` is what the inbound ``/send`` handler calls on each PDU:

1. format (:func:`~federation.protocol.validation.check_pdu_fields`), strict
   canonical JSON and the 65,536-byte limit - else :class:`InvalidEvent`: drop;
2. signatures of every required server - else :class:`SignatureError`: drop;
3. content hash - on mismatch the result holds the redacted copy.

It gives the same verdicts as ``validate_pdu`` followed by ``verify_event``,
but encodes the event's hashed part once and uses those bytes for the strict
JSON check, the size limit and the content hash alike; the strictness check
mostly runs over the encoded bytes (:func:`encode_parsed_json`) instead of
walking the Python objects.  That is valid because a PDU comes out of a JSON parser, so its
object keys are strings.  Steps 4-6 (authorization) follow with
:func:`~federation.protocol.auth_rules.authorize_event` and
:func:`~federation.protocol.auth_rules.check_auth_rules`.
"""

from __future__ import annotations

from typing import Any

from .canonical_json import encode_canonical_json_unchecked, encode_parsed_json
from .errors import CanonicalJsonError, InvalidEvent
from .event_signing import VerifiedEvent, verify_event
from .room_versions import RoomVersion
from .store import KeyStore
from .validation import MAX_PDU_BYTES, check_pdu_fields

_NOT_HASHED = ("hashes", "signatures", "unsigned")


def check_pdu(
    pdu: Any,
    room_version: RoomVersion,
    keys: KeyStore,
    *,
    parsed_strictly: bool = False,
) -> VerifiedEvent:
    """Validate a received PDU and check its signatures and content hash.

    Args:
        pdu: the PDU as parsed from the transaction's JSON.
        room_version: the room's version.
        keys: servers' verify keys.
        parsed_strictly: True if ``pdu`` came out of
            :func:`~federation.protocol.canonical_json.parse_json`, which already
            refused every float and out-of-range integer while parsing; the
            number scan of the encoded bytes is then skipped.

    Returns:
        The event to process (redacted if the content hash did not match).

    Raises:
        InvalidEvent: the PDU breaks the event format or limits (drop it).
        SignatureError: a required signature is missing or invalid (drop it).
    """
    if not isinstance(pdu, dict):
        raise InvalidEvent("a PDU must be a JSON object")
    stripped = {k: v for k, v in pdu.items() if k not in _NOT_HASHED}
    encode = encode_canonical_json_unchecked if parsed_strictly else encode_parsed_json
    try:
        payload = encode(stripped)
        # The canonical PDU is the hashed part's members plus these, merged in
        # key order: its length is the two encodings' lengths less one pair of
        # braces, plus a comma if both have members.
        size = len(payload)
        extras = {k: pdu[k] for k in _NOT_HASHED if k in pdu}
        if extras:
            size += len(encode(extras)) - 2 + (1 if stripped else 0)
    except (CanonicalJsonError, TypeError, ValueError) as exc:
        raise InvalidEvent(f"not canonical JSON: {exc}") from exc
    if size > MAX_PDU_BYTES:
        raise InvalidEvent(f"PDU larger than {MAX_PDU_BYTES} bytes")
    check_pdu_fields(pdu, room_version)
    return verify_event(pdu, room_version, keys, prechecked=True, content_payload=payload)
