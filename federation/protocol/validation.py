"""PDU format validation: what makes a received PDU droppable before any crypto.

:func:`validate_pdu` checks, for room versions 10-12 (event format v4 + strict
canonical JSON from v6 + v12 room IDs):

* the PDU is an object of strict canonical JSON (integers in range, no floats);
* required keys and their JSON types: ``type``, ``sender``, ``room_id`` (absent
  only on a v12 create event), ``origin_server_ts``, ``content`` (object),
  ``depth``, ``hashes`` (with a string ``sha256``), ``signatures`` (object of
  objects of strings), ``prev_events``/``auth_events`` (lists of ``$`` IDs),
  ``state_key`` (string, if present);
* ``sender`` is a user ID (historical localparts allowed), ``room_id`` a room ID;
* limits: canonical PDU at most 65,536 bytes (signatures included); ``sender``,
  ``room_id``, ``type``, ``state_key`` at most 255 bytes; ``depth`` in
  ``0..2**53-1``; at most 20 ``prev_events`` and 10 ``auth_events`` (as Synapse
  enforces).

A PDU that fails is dropped (the spec's step 1 of the checks on receipt).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from .canonical_json import MAX_INT, check_canonical_value, encode_canonical_json_unchecked
from .errors import CanonicalJsonError, InvalidEvent, InvalidIdentifier
from .ids import RoomId, UserId
from .room_versions import RoomVersion

MAX_PDU_BYTES = 65536
MAX_FIELD_BYTES = 255
MAX_DEPTH = MAX_INT
MAX_PREV_EVENTS = 20
MAX_AUTH_EVENTS = 10


def _str_field(pdu: Mapping[str, Any], key: str) -> str:
    value = pdu.get(key)
    if not isinstance(value, str):
        raise InvalidEvent(f"{key!r} must be a string")
    if len(value.encode("utf-8")) > MAX_FIELD_BYTES:
        raise InvalidEvent(f"{key!r} is longer than {MAX_FIELD_BYTES} bytes")
    return value


def _id_list(pdu: Mapping[str, Any], key: str, limit: int) -> None:
    value = pdu.get(key)
    if not isinstance(value, list):
        raise InvalidEvent(f"{key!r} must be a list")
    if len(value) > limit:
        raise InvalidEvent(f"more than {limit} {key}")
    for item in value:
        if not isinstance(item, str) or not item.startswith("$"):
            raise InvalidEvent(f"{key!r} must hold event IDs")
        if len(item.encode("utf-8")) > MAX_FIELD_BYTES:
            raise InvalidEvent(f"an ID in {key!r} is longer than {MAX_FIELD_BYTES} bytes")


@lru_cache(maxsize=8192)
def _sender_problem(sender: str) -> str | None:
    # Senders and rooms repeat across a room's events: parse each one once.
    try:
        UserId.parse(sender)
    except InvalidIdentifier as exc:
        return f"bad sender: {exc}"
    return None


@lru_cache(maxsize=8192)
def _room_id_server(room_id: str) -> tuple[str | None, bool]:
    """(problem, has a server name) for a room ID."""
    try:
        parsed = RoomId.parse(room_id)
    except InvalidIdentifier as exc:
        return f"bad room_id: {exc}", False
    return None, parsed.server_name is not None


def validate_pdu(pdu: object, room_version: RoomVersion) -> None:
    """Raise :class:`InvalidEvent` unless ``pdu`` has the room version's event format.

    Raises:
        InvalidEvent: naming the first problem found.
    """
    if not isinstance(pdu, dict):
        raise InvalidEvent("a PDU must be a JSON object")
    try:
        check_canonical_value(pdu)
    except CanonicalJsonError as exc:
        raise InvalidEvent(f"not canonical JSON: {exc}") from exc
    if len(encode_canonical_json_unchecked(pdu)) > MAX_PDU_BYTES:
        raise InvalidEvent(f"PDU larger than {MAX_PDU_BYTES} bytes")
    check_pdu_fields(pdu, room_version)


def check_pdu_fields(pdu: Mapping[str, Any], room_version: RoomVersion) -> None:
    """The checks of :func:`validate_pdu` other than canonical JSON and total size.

    Raises:
        InvalidEvent: naming the first problem found.
    """
    etype = _str_field(pdu, "type")
    problem = _sender_problem(_str_field(pdu, "sender"))
    if problem is not None:
        raise InvalidEvent(problem)
    if "state_key" in pdu:
        _str_field(pdu, "state_key")
    is_create = etype == "m.room.create" and pdu.get("state_key") == ""
    if not (room_version.room_id_is_create_hash and is_create and "room_id" not in pdu):
        problem, has_server = _room_id_server(_str_field(pdu, "room_id"))
        if problem is not None:
            raise InvalidEvent(problem)
        if room_version.room_id_is_create_hash and has_server:
            raise InvalidEvent("room IDs in this room version have no server name")

    ts = pdu.get("origin_server_ts")
    if type(ts) is not int:
        raise InvalidEvent("'origin_server_ts' must be an integer")
    depth = pdu.get("depth")
    if type(depth) is not int or not 0 <= depth <= MAX_DEPTH:
        raise InvalidEvent("'depth' must be an integer in 0..2**53-1")
    if not isinstance(pdu.get("content"), dict):
        raise InvalidEvent("'content' must be an object")

    hashes = pdu.get("hashes")
    if not isinstance(hashes, dict) or not isinstance(hashes.get("sha256"), str):
        raise InvalidEvent("'hashes' must be an object with a string 'sha256'")
    signatures = pdu.get("signatures")
    if not isinstance(signatures, dict):
        raise InvalidEvent("'signatures' must be an object")
    for server_sigs in signatures.values():
        if not isinstance(server_sigs, dict) or not all(
            isinstance(s, str) for s in server_sigs.values()
        ):
            raise InvalidEvent("'signatures' must map servers to objects of strings")

    _id_list(pdu, "prev_events", MAX_PREV_EVENTS)
    _id_list(pdu, "auth_events", MAX_AUTH_EVENTS)
    if "unsigned" in pdu and not isinstance(pdu["unsigned"], dict):
        raise InvalidEvent("'unsigned' must be an object")
