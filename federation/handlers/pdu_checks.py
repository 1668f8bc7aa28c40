"""The checks on receipt of a PDU, whatever brought it (a transaction, a join answer, backfill, a fetch).

:func:`check_received_pdu` runs steps 1-3 of the spec (format, signatures, content hash) with
our key store; :func:`room_id_of` and :func:`event_id_or_none` read a PDU that has not been checked
yet, without raising.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from federation.handlers.keys import OrmKeyStore
from federation.protocol.errors import ProtocolError
from federation.protocol.events import Event
from federation.protocol.hashing import compute_event_id
from federation.protocol.receipt import check_pdu
from federation.protocol.room_versions import RoomVersion, get_room_version
from federation.protocol.store import KeyStore

log = logging.getLogger(__name__)


def check_received_pdu(pdu: Any, rv: RoomVersion, keys: KeyStore | None = None, *,
                       parsed_strictly: bool = False) -> Event:
    """Steps 1-3 of the checks on receipt: format, signatures, content hash.

    Args:
        pdu: the PDU as received.
        rv: the room's version.
        keys: where to find verify keys (default: :class:`~federation.handlers.keys.OrmKeyStore`, fetching).
        parsed_strictly: True when ``pdu`` came out of the strict parser (``parse_json``), which
            already refused floats and out-of-range integers; the check is then not repeated.

    Returns the event to keep (redacted if its content hash did not match).

    Raises:
        ProtocolError: ``InvalidEvent`` (format) or ``SignatureError``: the PDU must be dropped.
    """
    checked = check_pdu(pdu, rv, keys if keys is not None else OrmKeyStore(), parsed_strictly=parsed_strictly)
    if not checked.content_hash_ok:
        log.info("content hash mismatch for %s: keeping the redacted copy", checked.event.event_id)
    return checked.event


def room_id_of(pdu: Mapping[str, Any]) -> str | None:
    """The PDU's room ID; for a v12 create event (which has none) the one derived from its event ID."""
    room_id = pdu.get("room_id")
    if room_id is None and pdu.get("type") == "m.room.create" and pdu.get("state_key") == "":
        content = pdu.get("content")
        version = content.get("room_version") if isinstance(content, dict) else None
        try:
            rv = get_room_version(version)
            if rv.room_id_is_create_hash:
                room_id = "!" + compute_event_id(pdu, rv)[1:]
        except (ProtocolError, TypeError, ValueError, KeyError):
            room_id = None
    return room_id if isinstance(room_id, str) else None


def event_id_or_none(pdu: Mapping[str, Any], rv: RoomVersion | None) -> str | None:
    """The PDU's event ID in room version ``rv``, or None when it cannot be computed."""
    if rv is None:
        return None
    try:
        return compute_event_id(pdu, rv)
    except (ProtocolError, TypeError, ValueError, KeyError):
        return None
