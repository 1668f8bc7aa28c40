"""Concord's pure-Python Matrix protocol core (room versions 10, 11 and 12).

No Django and nothing else from the project is imported here: the core is a
set of functions over plain data, so it can be tested without a database and
checked against Synapse.  Storage comes in through two small Protocols
(:class:`EventStore`, :class:`KeyStore`); ``federation/store/events.py`` implements
them over the ORM, tests use :class:`InMemoryEventStore` / :class:`InMemoryKeyStore`.

Building an event (sending)::

    rv = get_room_version("12")
    key = SigningKey.from_key_file_line(open("signing.key").read())
    create = build_create_event(rv, sender="@a:hs", origin_server_ts=now,
                                server_name="hs", signing_key=key)
    room_id = create.room_id                      # v12: derived from the create event
    join = build_event(rv, room_id=room_id, event_type="m.room.member",
                       state_key="@a:hs", sender="@a:hs", content={"membership": "join"},
                       prev_events=[create], state={CREATE_KEY: create.event_id},
                       origin_server_ts=now, server_name="hs", signing_key=key)
    join.pdu                                      # the signed PDU to send

``build_event`` selects ``auth_events`` from the state you pass, sets
``depth``, the content hash and the signature, and computes the event ID.

Checking a received PDU, in the spec's order::

    pdu = parse_json(raw_pdu_bytes)               # strict: no floats, ints in range
    checked = check_pdu(pdu, rv, keys, parsed_strictly=True)
                                                  # 1. format, sizes  -> InvalidEvent: drop
                                                  # 2. signatures     -> SignatureError: drop
    event = checked.event                         # 3. hash mismatch  -> redacted copy
    authorize_event(event, store)                 # 4. vs auth events -> AuthError: reject
    check_auth_rules(event, state_before)         # 5. vs state before it
    check_auth_rules(event, current_state)        # 6. vs current state -> soft-fail

(``check_pdu`` = ``validate_pdu`` + ``verify_event`` with shared encoding.
``state_before`` / ``current_state`` are ``{(type, state_key): Event}`` maps;
:func:`auth_state_for` trims a full state to what the rules read.)

Resolving state (the state before an event with several prev events)::

    state = resolve_state(rv, [state_after_prev1, state_after_prev2], store)

Lower-level pieces: :mod:`.ids` (typed identifiers), :mod:`.room_versions`,
:mod:`.canonical_json`, :mod:`.signing` (keys, signed JSON), :mod:`.hashing`
(content/reference hashes, event and room IDs), :mod:`.redaction`,
:mod:`.event_signing`, :mod:`.power_levels`, :mod:`.validation`,
:mod:`.auth_rules`, :mod:`.state_res`.  Errors all derive from
:class:`ProtocolError`.
"""

from .auth_rules import (
    auth_state_for,
    authorize_event,
    check_auth_events,
    check_auth_rules,
    check_create_event,
    redaction_needs_no_recheck,
)
from .builder import auth_types_for_event, build_create_event, build_event, select_auth_event_ids
from .canonical_json import encode_canonical_json, parse_json
from .errors import (
    AuthError,
    CanonicalJsonError,
    InvalidEvent,
    InvalidIdentifier,
    ProtocolError,
    SignatureError,
    UnsupportedRoomVersion,
)
from .event_signing import (
    VerifiedEvent,
    add_event_signature,
    hash_and_sign_event,
    required_signers,
    verify_event,
    verify_event_signature,
)
from .events import CREATE_KEY, JOIN_RULES_KEY, POWER_LEVELS_KEY, Event, StateKey
from .hashing import (
    check_content_hash,
    compute_content_hash,
    compute_event_id,
    compute_reference_hash,
    room_id_from_create_event,
)
from .ids import EventId, RoomAlias, RoomId, ServerName, UserId
from .receipt import check_pdu
from .redaction import redact_event
from .room_versions import (
    DEFAULT_ROOM_VERSION,
    ROOM_V10,
    ROOM_V11,
    ROOM_V12,
    SUPPORTED_ROOM_VERSIONS,
    RoomVersion,
    get_room_version,
)
from .signing import SigningKey, VerifyKey, sign_json, verify_json_signature
from .state_res import StateResolutionError, resolve_state
from .store import EventStore, InMemoryEventStore, InMemoryKeyStore, KeyStore
from .validation import validate_pdu

__all__ = [
    "CREATE_KEY", "DEFAULT_ROOM_VERSION", "JOIN_RULES_KEY", "POWER_LEVELS_KEY",
    "ROOM_V10", "ROOM_V11", "ROOM_V12", "SUPPORTED_ROOM_VERSIONS",
    "AuthError", "CanonicalJsonError", "Event", "EventId", "EventStore",
    "InMemoryEventStore", "InMemoryKeyStore", "InvalidEvent", "InvalidIdentifier",
    "KeyStore", "ProtocolError", "RoomAlias", "RoomId", "RoomVersion", "ServerName",
    "SignatureError", "SigningKey", "StateKey", "StateResolutionError",
    "UnsupportedRoomVersion", "UserId", "VerifiedEvent", "VerifyKey",
    "add_event_signature", "auth_state_for", "auth_types_for_event", "authorize_event",
    "build_create_event", "build_event", "check_auth_events", "check_auth_rules", "check_pdu",
    "check_content_hash", "check_create_event", "compute_content_hash",
    "compute_event_id", "compute_reference_hash", "encode_canonical_json",
    "get_room_version", "hash_and_sign_event", "parse_json", "redact_event",
    "redaction_needs_no_recheck", "required_signers", "resolve_state",
    "room_id_from_create_event", "select_auth_event_ids", "sign_json",
    "validate_pdu", "verify_event", "verify_event_signature", "verify_json_signature",
]
