"""The authorization rules of room versions 10, 11 and 12.

Comments and :attr:`AuthError.rule <federation.protocol.errors.AuthError.rule>`
use the spec's numbering *for the event's room version*.  The code is written
with the v10/v11 numbers; v12 inserted a new rule 2 (room ID names an accepted
create event) and a new rule 10.4 (creators may not appear in ``users``), so
:func:`_n` shifts the numbers after those for v12 rooms.

Entry points:

* :func:`check_create_event` - rule 1 (depends on nothing but the event).
* :func:`check_auth_events` - rule 2 (v12: rules 2 and 3): the event's
  ``auth_events`` are exactly selected, unique, accepted and in the same room.
  Returns the auth events as a state map.
* :func:`check_auth_rules` - rules 3 onwards (v12: 4 onwards) against a state
  map (its auth events, the state before it, or the current state).
* :func:`authorize_event` - all of the above against the event's own auth
  events (step 4 of the checks on receipt of a PDU).
* :func:`redaction_needs_no_recheck` - the "handling redactions" test a server
  applies before it honours an ``m.room.redaction``.

Signatures: rule 4.2 requires events with ``join_authorised_via_users_server``
to be *validly* signed by that user's server.  Cryptographic verification is
:func:`~federation.protocol.event_signing.verify_event`'s job (which requires
that server's signature); here we check the signature is present.

Known differences from Synapse 1.163, all where we follow the spec text:

* Synapse also refuses member events whose *target* is on another server when
  ``m.federate`` is false; the spec only looks at the sender.
* Synapse treats any ``m.federate`` value other than ``true`` as false; the
  spec (and we) only block on ``false``.
* Synapse accepts any ``@x:y`` key in power level ``users``; we require a
  user ID with a valid server name (rule 9.3 says "valid user IDs").
* Rule 4.2 applies to any membership carrying ``join_authorised_via_users_server``;
  Synapse only demands the authorising server's signature on joins.

The differential tests (``tests/federation/protocol/test_differential_synapse.py``)
generate events that avoid these corners and otherwise require identical
verdicts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from unpaddedbase64 import decode_base64

from .builder import auth_types_for_event
from .errors import AuthError, SignatureError
from .events import CREATE_KEY, JOIN_RULES_KEY, POWER_LEVELS_KEY, Event, StateKey
from .hashing import create_event_id_for_room
from .ids import is_valid_user_id, server_name_of
from .power_levels import named_level, required_power_level, room_creators, user_power_level
from .room_versions import RECOGNISED_ROOM_VERSION_IDS, RoomVersion
from .signing import ALGORITHM, VerifyKey, verify_json_signature
from .store import EventStore

_PL_NAMED = ("users_default", "events_default", "state_default", "ban", "redact", "kick", "invite")


def _n(rv: RoomVersion, rule: str) -> str:
    """Translate a v10/v11 rule number into the event's room version's numbering."""
    if not rv.room_id_is_create_hash:
        return rule
    parts = rule.split(".")
    top = int(parts[0])
    if top >= 2:
        parts[0] = str(top + 1)
    if top == 9 and len(parts) > 1 and int(parts[1]) >= 4:
        parts[1] = str(int(parts[1]) + 1)
    return ".".join(parts)


def _reject(rv: RoomVersion, rule: str, why: str) -> AuthError:
    return AuthError(_n(rv, rule), why)


def _domain(user_id: str) -> str:
    return server_name_of(user_id)


# --------------------------------------------------------------------------- rule 1


def check_create_event(event: Event) -> None:
    """Rule 1: an ``m.room.create`` event.

    Raises:
        AuthError: if the create event is not acceptable.
    """
    rv = event.room_version
    # 1.1 If it has any prev_events, reject.
    if event.prev_event_ids:
        raise AuthError("1.1", "create event has prev_events")
    if rv.room_id_is_create_hash:
        # 1.2 (v12) If the event has a room_id, reject.
        if "room_id" in event.pdu:
            raise AuthError("1.2", "create event has a room_id")
    else:
        # 1.2 If the domain of the room_id does not match the domain of the sender, reject.
        if ":" not in event.room_id or _domain(event.room_id) != _domain(event.sender):
            raise AuthError("1.2", "room_id domain differs from sender domain")
    # 1.3 If content.room_version is present and is not a recognised version, reject.
    room_version = event.content.get("room_version", "1")
    if room_version not in RECOGNISED_ROOM_VERSION_IDS:
        raise AuthError("1.3", f"unrecognised room version {room_version!r}")
    if not rv.implicit_room_creator:
        # 1.4 (v10) If content has no creator property, reject.
        if "creator" not in event.content:
            raise AuthError("1.4", "create event has no creator")
    if rv.creators_infinite_power and "additional_creators" in event.content:
        # 1.4 (v12) additional_creators must be an array of valid user IDs.
        extra = event.content["additional_creators"]
        if type(extra) is not list or not all(
            type(u) is str and is_valid_user_id(u) for u in extra
        ):
            raise AuthError("1.4", "additional_creators must be a list of user IDs")
    # 1.5 (v10: 1.5, v11: 1.4) Otherwise, allow.


# --------------------------------------------------------------------------- rule 2


def auth_types_for(event: Event) -> set[StateKey]:
    """The state keys an event may cite in ``auth_events`` (auth events selection)."""
    return set(
        auth_types_for_event(
            event.room_version, event.type, event.sender, event.state_key, event.content
        )
    )


def check_auth_events(
    event: Event,
    auth_events: Mapping[str, Event],
    is_rejected: Callable[[str], bool],
) -> dict[StateKey, Event]:
    """Rule 2 (v12: rules 2 and 3): check the event's ``auth_events`` themselves.

    Args:
        event: a non-create event.
        auth_events: at least the events its ``effective_auth_event_ids`` name.
        is_rejected: tells whether an event was rejected.

    Returns:
        The auth events as a state map (in v12 including the implied create event).

    Raises:
        AuthError: if a rule rejects the event, or an auth event is unknown.
    """
    rv = event.room_version
    state: dict[StateKey, Event] = {}
    if rv.room_id_is_create_hash:
        # 2 (v12) If the room_id is not the ID of an accepted create event (with
        # "!" for "$"), reject.
        create_id = create_event_id_for_room(event.room_id)
        create = auth_events.get(create_id)
        if (
            create is None
            or create.type != "m.room.create"
            or create.state_key != ""
            or is_rejected(create_id)
        ):
            raise AuthError("2", "room_id does not name an accepted create event")
        state[CREATE_KEY] = create
    expected = auth_types_for(event)
    seen: set[StateKey] = set()
    for auth_id in event.auth_event_ids:
        auth = auth_events.get(auth_id)
        if auth is None:
            raise _reject(rv, "2", f"unknown auth event {auth_id}")
        if auth.state_key is None:
            raise _reject(rv, "2.2", f"auth event {auth_id} is not a state event")
        key = (auth.type, auth.state_key)
        # 2.1 If there are duplicate entries for a given type and state_key pair, reject.
        if key in seen:
            raise _reject(rv, "2.1", f"duplicate auth events for {key}")
        seen.add(key)
        # 2.2 If there are entries whose type and state_key don't match those
        # specified by the auth events selection algorithm, reject.
        if key not in expected:
            raise _reject(rv, "2.2", f"auth event {key} is not one the event may cite")
        # 2.3 If there are entries which were themselves rejected, reject.
        if is_rejected(auth_id):
            raise _reject(rv, "2.3", f"auth event {auth_id} was rejected")
        # 2.5 If any event in auth_events has a room_id which does not match
        # that of the event being authorised, reject.
        if auth.room_id != event.room_id:
            raise _reject(rv, "2.5", f"auth event {auth_id} is in another room")
        state[key] = auth
    # 2.4 (v10, v11) If there is no m.room.create event among the entries, reject.
    if CREATE_KEY not in state:
        raise AuthError("2.4", "no create event among the auth events")
    return state


# --------------------------------------------------------------------------- rules 3-10


def check_auth_rules(event: Event, state: Mapping[StateKey, Event]) -> None:
    """Rules 3-10 (v12: 4-11): authorize ``event`` against a room state.

    ``state`` needs the entries the rules read (see :func:`auth_types_for`);
    more is fine.  A create event is checked with rule 1 only.

    Raises:
        AuthError: if the event is not allowed.
    """
    rv = event.room_version
    if event.type == "m.room.create" and event.state_key == "":
        check_create_event(event)
        return
    create = state.get(CREATE_KEY)
    if create is None:
        raise _reject(rv, "2.4", "no create event in the state")
    sender = event.sender
    try:
        sender_domain = _domain(sender)
    except ValueError as exc:
        raise _reject(rv, "3", "sender has no server name") from exc

    # 3. If the create event's content has m.federate set to false, and the
    # sender domain differs from the create event's sender domain, reject.
    if create.content.get("m.federate", True) is False and sender_domain != _domain(
        create.sender
    ):
        raise _reject(rv, "3", "room does not federate")

    # 4. If type is m.room.member: ...
    if event.type == "m.room.member":
        _check_membership(event, state, create)
        return

    # 5. If the sender's current membership state is not join, reject.
    if _membership(state, sender) != "join":
        raise _reject(rv, "5", "sender is not joined")

    sender_level = user_power_level(sender, state)

    # 6. If type is m.room.third_party_invite: allow if and only if sender's
    # current power level >= the invite level.
    if event.type == "m.room.third_party_invite":
        if sender_level >= named_level(state, "invite"):
            return
        raise _reject(rv, "6.1", "sender may not invite")

    # 7. If the event type's required power level is greater than the sender's
    # power level, reject.
    if required_power_level(state, event.type, event.state_key is not None) > sender_level:
        raise _reject(rv, "7", "sender's power level is too low for this event type")

    # 8. If the event has a state_key that starts with an @ and does not match
    # the sender, reject.
    sk = event.state_key
    if sk is not None and sk.startswith("@") and sk != sender:
        raise _reject(rv, "8", "state_key names another user")

    # 9. If type is m.room.power_levels: ...
    if event.type == "m.room.power_levels" and sk == "":
        _check_power_levels(event, state, create, sender_level)
        return

    # 10. Otherwise, allow.  (m.room.redaction needs nothing more: the redact
    # level is applied when the redaction is honoured, not here.)


def _membership(state: Mapping[StateKey, Event], user_id: str) -> str | None:
    ev = state.get(("m.room.member", user_id))
    return ev.membership if ev is not None else None


def _is_signed_by(event: Event, server: str) -> bool:
    sigs = event.pdu.get("signatures")
    return isinstance(sigs, Mapping) and isinstance(sigs.get(server), Mapping) and bool(
        sigs[server]
    )


def _check_membership(event: Event, state: Mapping[StateKey, Event], create: Event) -> None:
    rv = event.room_version
    content = event.content
    target = event.state_key
    sender = event.sender
    # 4.1 If there is no state_key property, or no membership property in
    # content, reject.
    if target is None or "membership" not in content:
        raise _reject(rv, "4.1", "member event without state_key or membership")
    membership = content["membership"]

    # 4.2 If content has a join_authorised_via_users_server key: if the event is
    # not validly signed by the homeserver of that user ID, reject.
    if "join_authorised_via_users_server" in content:
        authoriser = content["join_authorised_via_users_server"]
        if not (isinstance(authoriser, str) and is_valid_user_id(authoriser)) or not (
            _is_signed_by(event, _domain(authoriser))
        ):
            raise _reject(rv, "4.2.1", "not signed by the authorising user's server")

    sender_membership = _membership(state, sender)
    target_membership = _membership(state, target)
    join_rules = state.get(JOIN_RULES_KEY)
    join_rule = join_rules.content.get("join_rule", "invite") if join_rules else "invite"

    if membership == "join":
        # 4.3.1 If the only previous event is an m.room.create and the state_key
        # is the creator (v11+: the sender of the create event), allow.
        if event.prev_event_ids == (create.event_id,):
            creator = (
                create.sender
                if rv.implicit_room_creator
                else create.content.get("creator")
            )
            if target == creator:
                return
        # 4.3.2 If the sender does not match state_key, reject.
        if sender != target:
            raise _reject(rv, "4.3.2", "cannot join someone else")
        # 4.3.3 If the sender is banned, reject.
        if sender_membership == "ban":
            raise _reject(rv, "4.3.3", "sender is banned")
        # 4.3.4 If the join_rule is invite or knock then allow if membership
        # state is invite or join.
        if join_rule in ("invite", "knock"):
            if sender_membership in ("invite", "join"):
                return
            raise _reject(rv, "4.3.7", "room is invite-only and sender is not invited")
        # 4.3.5 If the join_rule is restricted or knock_restricted:
        if join_rule in ("restricted", "knock_restricted"):
            # 4.3.5.1 If membership state is join or invite, allow.
            if sender_membership in ("invite", "join"):
                return
            # 4.3.5.2 If join_authorised_via_users_server is not a user with
            # sufficient permission to invite, or not a joined member, reject.
            authoriser = content.get("join_authorised_via_users_server")
            if (
                not isinstance(authoriser, str)
                or _membership(state, authoriser) != "join"
                or user_power_level(authoriser, state) < named_level(state, "invite")
            ):
                raise _reject(rv, "4.3.5.2", "join not authorised by a joined member who may invite")
            # 4.3.5.3 Otherwise, allow.
            return
        # 4.3.6 If the join_rule is public, allow.
        if join_rule == "public":
            return
        # 4.3.7 Otherwise, reject.
        raise _reject(rv, "4.3.7", f"join rule {join_rule!r} does not allow joining")

    if membership == "invite":
        # 4.4.1 If content has a third_party_invite property: ...
        if "third_party_invite" in content:
            _check_third_party_invite(event, state, target_membership)
            return
        # 4.4.2 If the sender's current membership state is not join, reject.
        if sender_membership != "join":
            raise _reject(rv, "4.4.2", "sender is not joined")
        # 4.4.3 If target user's current membership state is join or ban, reject.
        if target_membership in ("join", "ban"):
            raise _reject(rv, "4.4.3", f"target is already {target_membership}")
        # 4.4.4 If the sender's power level >= the invite level, allow.
        if user_power_level(sender, state) >= named_level(state, "invite"):
            return
        # 4.4.5 Otherwise, reject.
        raise _reject(rv, "4.4.5", "sender may not invite")

    if membership == "leave":
        # 4.5.1 If the sender matches state_key, allow if and only if that
        # user's current membership state is invite, join, or knock.
        if sender == target:
            if sender_membership in ("invite", "join", "knock"):
                return
            raise _reject(rv, "4.5.1", "sender is not in the room")
        # 4.5.2 If the sender's current membership state is not join, reject.
        if sender_membership != "join":
            raise _reject(rv, "4.5.2", "sender is not joined")
        sender_level = user_power_level(sender, state)
        # 4.5.3 If the target is banned and the sender's level < ban level, reject.
        if target_membership == "ban" and sender_level < named_level(state, "ban"):
            raise _reject(rv, "4.5.3", "sender may not unban")
        # 4.5.4 If the sender's level >= kick level and the target's level is
        # lower than the sender's, allow.
        if sender_level >= named_level(state, "kick") and user_power_level(
            target, state
        ) < sender_level:
            return
        # 4.5.5 Otherwise, reject.
        raise _reject(rv, "4.5.5", "sender may not kick the target")

    if membership == "ban":
        # 4.6.1 If the sender's current membership state is not join, reject.
        if sender_membership != "join":
            raise _reject(rv, "4.6.1", "sender is not joined")
        sender_level = user_power_level(sender, state)
        # 4.6.2 If the sender's level >= ban level and the target's level is
        # lower than the sender's, allow.
        if sender_level >= named_level(state, "ban") and user_power_level(
            target, state
        ) < sender_level:
            return
        # 4.6.3 Otherwise, reject.
        raise _reject(rv, "4.6.3", "sender may not ban the target")

    if membership == "knock":
        # 4.7.1 If the join_rule is anything other than knock or
        # knock_restricted, reject.
        if join_rule not in ("knock", "knock_restricted"):
            raise _reject(rv, "4.7.1", "room does not allow knocking")
        # 4.7.2 If sender does not match state_key, reject.
        if sender != target:
            raise _reject(rv, "4.7.2", "cannot knock for someone else")
        # 4.7.3 If the sender's current membership is not ban, invite, or join, allow.
        if sender_membership not in ("ban", "invite", "join"):
            return
        # 4.7.4 Otherwise, reject.
        raise _reject(rv, "4.7.4", f"sender is already {sender_membership}")

    # 4.8 Otherwise, the membership is unknown. Reject.
    raise _reject(rv, "4.8", f"unknown membership {membership!r}")


def _check_third_party_invite(
    event: Event, state: Mapping[StateKey, Event], target_membership: str | None
) -> None:
    rv = event.room_version
    # 4.4.1.1 If target user is banned, reject.
    if target_membership == "ban":
        raise _reject(rv, "4.4.1.1", "target is banned")
    tpi = event.content["third_party_invite"]
    # 4.4.1.2 If content.third_party_invite does not have a signed property, reject.
    signed = tpi.get("signed") if isinstance(tpi, Mapping) else None
    if not isinstance(signed, Mapping):
        raise _reject(rv, "4.4.1.2", "third_party_invite has no signed object")
    # 4.4.1.3 If signed does not have mxid and token properties, reject.
    if "mxid" not in signed or "token" not in signed:
        raise _reject(rv, "4.4.1.3", "signed lacks mxid or token")
    # 4.4.1.4 If mxid does not match state_key, reject.
    if signed["mxid"] != event.state_key:
        raise _reject(rv, "4.4.1.4", "mxid does not match state_key")
    # 4.4.1.5 If there is no m.room.third_party_invite event in the current room
    # state with state_key matching token, reject.
    token = signed["token"]
    invite = state.get(("m.room.third_party_invite", token)) if isinstance(token, str) else None
    if invite is None:
        raise _reject(rv, "4.4.1.5", "no matching m.room.third_party_invite")
    # 4.4.1.6 If sender does not match sender of the m.room.third_party_invite, reject.
    if invite.sender != event.sender:
        raise _reject(rv, "4.4.1.6", "sender did not issue the third-party invite")
    # 4.4.1.7 If any signature in signed matches any public key in the
    # m.room.third_party_invite event, allow.
    if _third_party_signature_matches(signed, invite.content):
        return
    # 4.4.1.8 Otherwise, reject.
    raise _reject(rv, "4.4.1.8", "no valid signature on the third-party invite")


def _third_party_signature_matches(signed: Mapping[str, Any], content: Mapping[str, Any]) -> bool:
    public_keys: list[object] = []
    if "public_key" in content:
        public_keys.append(content["public_key"])
    extra = content.get("public_keys")
    if isinstance(extra, list):
        public_keys.extend(k.get("public_key") for k in extra if isinstance(k, Mapping))
    sigs = signed.get("signatures")
    if not isinstance(sigs, Mapping):
        return False
    for public_key in public_keys:
        if not isinstance(public_key, str):
            continue
        try:
            raw = decode_base64(public_key)
        except Exception:
            continue
        for server, by_key in sigs.items():
            if not isinstance(by_key, Mapping):
                continue
            for key_id in by_key:
                if not isinstance(key_id, str) or not key_id.startswith(ALGORITHM + ":"):
                    continue
                try:
                    vk = VerifyKey(key_id.split(":", 1)[1], raw)
                    verify_json_signature(signed, server, vk)
                except (SignatureError, ValueError):
                    continue
                return True
    return False


def _check_power_levels(
    event: Event, state: Mapping[StateKey, Event], create: Event, sender_level: int
) -> None:
    rv = event.room_version
    content = event.content
    # 9.1 If any of users_default, events_default, state_default, ban, redact,
    # kick, invite are present and not an integer, reject.
    for name in _PL_NAMED:
        if name in content and type(content[name]) is not int:
            raise _reject(rv, "9.1", f"{name} is not an integer")
    # 9.2 If events or notifications are present and not an object with
    # integer values, reject.
    for name in ("events", "notifications"):
        if name in content:
            value = content[name]
            if not isinstance(value, Mapping) or not all(type(v) is int for v in value.values()):
                raise _reject(rv, "9.2", f"{name} must map to integers")
    # 9.3 If users is not an object with valid user ID keys and integer
    # values, reject.
    users = content.get("users", {})
    if not isinstance(users, Mapping) or not all(
        is_valid_user_id(k) and type(v) is int for k, v in users.items()
    ):
        raise _reject(rv, "9.3", "users must map user IDs to integers")
    # 10.4 (v12 only) If users contains a room creator, reject.
    if rv.creators_infinite_power and any(c in users for c in room_creators(create)):
        raise AuthError("10.4", "room creators may not appear in users")

    # 9.4 If there is no previous m.room.power_levels event in the room, allow.
    old_event = state.get(POWER_LEVELS_KEY)
    if old_event is None:
        return
    old = old_event.content

    # 9.5 For users_default, events_default, state_default, ban, redact, kick,
    # invite: for each addition, change or removal, reject if the current or
    # the new value is higher than the sender's level.
    for name in _PL_NAMED:
        before, after = old.get(name), content.get(name)
        if before == after and (name in old) == (name in content):
            continue
        if before is not None and _level(before) > sender_level:
            raise _reject(rv, "9.5.1", f"current {name} is above the sender's level")
        if after is not None and _level(after) > sender_level:
            raise _reject(rv, "9.5.2", f"new {name} is above the sender's level")

    for name in ("events", "notifications"):
        before_map = _mapping(old.get(name))
        after_map = _mapping(content.get(name))
        for key in before_map.keys() | after_map.keys():
            in_before, in_after = key in before_map, key in after_map
            if in_before and in_after and before_map[key] == after_map[key]:
                continue
            # 9.6 For each entry changed in or removed from events or
            # notifications: reject if the current value is above the sender's.
            if in_before and _level(before_map[key]) > sender_level:
                raise _reject(rv, "9.6.1", f"current {name}[{key}] is above the sender's level")
            # 9.7 For each entry added or changed: reject if the new value is
            # above the sender's.
            if in_after and _level(after_map[key]) > sender_level:
                raise _reject(rv, "9.7.1", f"new {name}[{key}] is above the sender's level")

    before_users = _mapping(old.get("users"))
    for user in before_users.keys() | users.keys():
        in_before, in_after = user in before_users, user in users
        if in_before and in_after and before_users[user] == users[user]:
            continue
        # 9.8 For each entry changed in or removed from users, other than the
        # sender's own: reject if the current value >= the sender's level.
        if in_before and user != event.sender and _level(before_users[user]) >= sender_level:
            raise _reject(rv, "9.8.1", f"cannot change the level of {user}")
        # 9.9 For each entry added to or changed in users: reject if the new
        # value is above the sender's level.
        if in_after and _level(users[user]) > sender_level:
            raise _reject(rv, "9.9.1", f"cannot raise {user} above the sender's level")
    # 9.10 Otherwise, allow.


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _level(value: object) -> int:
    if type(value) is int:
        return value
    try:
        return int(value)  # type: ignore[call-overload, no-any-return]
    except (TypeError, ValueError):
        return 0


# --------------------------------------------------------------------------- helpers


def authorize_event(event: Event, store: EventStore) -> None:
    """Authorize an event against its own auth events (checks-on-receipt step 4).

    Fetches the auth events from ``store`` and runs rules 1-10 (v12: 1-11).

    Raises:
        AuthError: if any rule rejects the event.
    """
    if event.type == "m.room.create" and event.state_key == "":
        check_create_event(event)
        return
    auth_events = store.get_events(event.effective_auth_event_ids)
    state = check_auth_events(event, auth_events, store.is_rejected)
    check_auth_rules(event, state)


def auth_state_for(
    event: Event, state: Mapping[StateKey, Event]
) -> dict[StateKey, Event]:
    """The part of ``state`` that the auth rules read for ``event``."""
    keys = auth_types_for(event)
    keys.add(CREATE_KEY)
    keys.add(POWER_LEVELS_KEY)
    return {k: state[k] for k in keys if k in state}


def redaction_needs_no_recheck(
    redaction: Event, target: Event, state: Mapping[StateKey, Event]
) -> bool:
    """Whether a server should apply ``redaction`` to ``target`` ("Handling redactions").

    True if the redaction's sender has at least the redact level, or is on the
    same server as the target's sender.
    """
    if user_power_level(redaction.sender, state) >= named_level(state, "redact"):
        return True
    return _domain(redaction.sender) == _domain(target.sender)
