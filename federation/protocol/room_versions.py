"""Room versions as frozen objects with named feature flags.

Code asks a :class:`RoomVersion` *what it does* (``rv.implicit_room_creator``)
instead of comparing version strings, so adding a version means adding one
object here.  Only versions 10, 11 and 12 are supported; :func:`get_room_version`
raises :class:`~federation.protocol.errors.UnsupportedRoomVersion` for the rest.

Differences between the supported versions, as flags:

========================  =====  =====  =====
flag                      v10    v11    v12
========================  =====  =====  =====
redaction_rules           V9     V11    V11
implicit_room_creator     no     yes    yes
redacts_in_content        no     yes    yes
room_id_is_create_hash    no     no     yes
creators_infinite_power   no     no     yes
create_in_auth_events     yes    yes    no
state_res                 V2     V2     V2_1
========================  =====  =====  =====

All three share: v4+ event IDs (reference hashes), strict canonical JSON (v6+),
integer-only power levels, ``knock``, ``restricted`` and ``knock_restricted``
join rules, ``notifications`` checked in power level changes, signing-key
validity periods enforced.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .errors import UnsupportedRoomVersion


class RedactionRules(enum.Enum):
    """Which redaction algorithm a room version uses."""

    V9 = "v9"
    """Rooms v9-v10: keeps top-level ``origin``, ``membership``, ``prev_state``."""
    V11 = "v11"
    """Rooms v11+: drops those; keeps all of create content, PL ``invite``, ``redacts``."""


class StateResAlgorithm(enum.Enum):
    """Which state resolution algorithm a room version uses."""

    V2 = "v2"
    """Room v2-v11: iterative checks start from the unconflicted state."""
    V2_1 = "v2.1"
    """Room v12 (MSC4297): start from an empty map; add the conflicted subgraph."""


@dataclass(frozen=True, slots=True)
class RoomVersion:
    """The properties of one room version that the protocol core depends on."""

    identifier: str
    redaction_rules: RedactionRules
    state_res: StateResAlgorithm
    implicit_room_creator: bool
    """The create event has no ``creator``; its ``sender`` is the creator (v11+)."""
    redacts_in_content: bool
    """``m.room.redaction`` carries ``redacts`` in ``content`` (v11+)."""
    room_id_is_create_hash: bool
    """The room ID is the create event's ID with ``!`` for ``$`` (v12)."""
    creators_infinite_power: bool
    """Creators (create sender + ``additional_creators``) have infinite power (v12)."""
    create_in_auth_events: bool
    """The create event is listed in every other event's ``auth_events`` (not v12)."""
    strict_canonical_json: bool = True
    enforce_int_power_levels: bool = True
    knock_join_rule: bool = True
    restricted_join_rule: bool = True
    knock_restricted_join_rule: bool = True
    limit_notifications_power_levels: bool = True
    enforce_key_validity: bool = True


ROOM_V10 = RoomVersion(
    identifier="10",
    redaction_rules=RedactionRules.V9,
    state_res=StateResAlgorithm.V2,
    implicit_room_creator=False,
    redacts_in_content=False,
    room_id_is_create_hash=False,
    creators_infinite_power=False,
    create_in_auth_events=True,
)

ROOM_V11 = RoomVersion(
    identifier="11",
    redaction_rules=RedactionRules.V11,
    state_res=StateResAlgorithm.V2,
    implicit_room_creator=True,
    redacts_in_content=True,
    room_id_is_create_hash=False,
    creators_infinite_power=False,
    create_in_auth_events=True,
)

ROOM_V12 = RoomVersion(
    identifier="12",
    redaction_rules=RedactionRules.V11,
    state_res=StateResAlgorithm.V2_1,
    implicit_room_creator=True,
    redacts_in_content=True,
    room_id_is_create_hash=True,
    creators_infinite_power=True,
    create_in_auth_events=False,
)

SUPPORTED_ROOM_VERSIONS: dict[str, RoomVersion] = {
    rv.identifier: rv for rv in (ROOM_V10, ROOM_V11, ROOM_V12)
}
"""The room versions this core can create, build, sign, verify, authorize and resolve."""

DEFAULT_ROOM_VERSION = ROOM_V12
"""The version new rooms get (Synapse 1.163 also creates v12 rooms by default)."""

RECOGNISED_ROOM_VERSION_IDS: frozenset[str] = frozenset(str(n) for n in range(1, 13))
"""Stable versions the spec defines.  Create-event auth rule 1.3 only needs the
``room_version`` to be *recognised*, which is wider than what we support."""


def get_room_version(identifier: object) -> RoomVersion:
    """Look up a supported room version by its identifier.

    Raises:
        UnsupportedRoomVersion: for any identifier other than "10", "11", "12".
    """
    rv = SUPPORTED_ROOM_VERSIONS.get(identifier) if isinstance(identifier, str) else None
    if rv is None:
        raise UnsupportedRoomVersion(identifier)
    return rv
