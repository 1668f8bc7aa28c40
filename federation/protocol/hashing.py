"""Content hashes, reference hashes, event IDs and v12 room IDs.

* Content hash: SHA-256 of the canonical event without ``unsigned``,
  ``signatures`` and ``hashes``; stored as ``hashes.sha256`` (unpadded base64).
  It covers the *unredacted* event, so it tells a receiver whether it got the
  full event or a redacted copy.
* Reference hash: SHA-256 of the canonical *redacted* event without
  ``signatures`` and ``unsigned``.  It covers the hashes, so it pins content.
* Event ID (room v4+): ``"$"`` + URL-safe unpadded base64 of the reference hash.
* Room ID (room v12): the create event's ID with sigil ``!`` (the create event
  itself carries no ``room_id``).

Note: Synapse also strips legacy top-level ``age_ts``, ``outlier`` and
``destinations`` before hashing; the spec does not, and valid PDUs never carry
them, so we follow the spec.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from unpaddedbase64 import decode_base64, encode_base64

from .canonical_json import encode_canonical_json
from .errors import InvalidEvent
from .redaction import redact_event
from .room_versions import RoomVersion

_NOT_HASHED = frozenset({"unsigned", "signatures", "hashes"})


def compute_content_hash(event: Mapping[str, Any]) -> bytes:
    """The 32-byte SHA-256 content hash of an (unredacted) event."""
    stripped = {k: v for k, v in event.items() if k not in _NOT_HASHED}
    return hashlib.sha256(encode_canonical_json(stripped)).digest()


def add_content_hash(event: Mapping[str, Any]) -> dict[str, Any]:
    """Return a copy of ``event`` with ``hashes.sha256`` set."""
    out = dict(event)
    out["hashes"] = {"sha256": encode_base64(compute_content_hash(event))}
    return out


def check_content_hash(event: Mapping[str, Any]) -> bool:
    """Whether ``hashes.sha256`` matches the event's content hash.

    False (never an exception) for a missing or malformed hash: the caller then
    keeps the redacted copy, as the spec says.
    """
    hashes = event.get("hashes")
    if not isinstance(hashes, Mapping):
        return False
    expected = hashes.get("sha256")
    if not isinstance(expected, str):
        return False
    try:
        raw = decode_base64(expected)
    except Exception:
        return False
    return raw == compute_content_hash(event)


def compute_reference_hash(event: Mapping[str, Any], room_version: RoomVersion) -> bytes:
    """The 32-byte SHA-256 reference hash of an event."""
    redacted = redact_event(event, room_version)
    redacted.pop("signatures", None)
    redacted.pop("unsigned", None)
    return hashlib.sha256(encode_canonical_json(redacted)).digest()


def compute_event_id(event: Mapping[str, Any], room_version: RoomVersion) -> str:
    """The event ID of a v4+ event: ``$`` + URL-safe unpadded base64 reference hash.

    Compute it after ``hashes`` is in place: the reference hash covers it.
    """
    digest = compute_reference_hash(event, room_version)
    return "$" + encode_base64(digest, urlsafe=True)


def room_id_from_create_event(
    create_event: Mapping[str, Any], room_version: RoomVersion
) -> str:
    """The room ID a v12 create event defines: its event ID with ``!`` for ``$``.

    Raises:
        InvalidEvent: if the room version does not derive room IDs from the
            create event, or the event is not a create event.
    """
    if not room_version.room_id_is_create_hash:
        raise InvalidEvent(f"room version {room_version.identifier} has server room IDs")
    if create_event.get("type") != "m.room.create":
        raise InvalidEvent("not an m.room.create event")
    return "!" + compute_event_id(create_event, room_version)[1:]


def create_event_id_for_room(room_id: str) -> str:
    """The create event ID a v12 room ID points at (``!x`` -> ``$x``)."""
    return "$" + room_id[1:]
