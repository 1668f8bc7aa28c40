"""Building, hashing and signing new events.

:func:`build_event` is what a caller uses to create an event in a room: it
selects ``auth_events`` from the current state (the spec's "auth events
selection"; in room v12 the create event is never listed), takes the caller's
``prev_events`` (at most 20), sets ``depth`` to one more than the deepest
prev event (capped at 2**53-1), then adds the content hash and the signature
and computes the event ID.  :func:`build_create_event` starts a room; in v12 the
result's ``room_id`` is derived from it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .errors import InvalidEvent
from .event_signing import hash_and_sign_event
from .events import CREATE_KEY, JOIN_RULES_KEY, POWER_LEVELS_KEY, Event, StateKey
from .room_versions import RoomVersion
from .signing import SigningKey
from .validation import MAX_DEPTH, MAX_PREV_EVENTS


def auth_types_for_event(
    room_version: RoomVersion,
    event_type: str,
    sender: str,
    state_key: str | None,
    content: Mapping[str, Any],
) -> list[StateKey]:
    """The state keys whose current events an event must cite as ``auth_events``.

    Follows the spec's auth events selection.  The create event is included
    only when the room version lists it (not in v12).
    """
    if event_type == "m.room.create" and state_key == "":
        return []
    keys: list[StateKey] = []
    if room_version.create_in_auth_events:
        keys.append(CREATE_KEY)
    keys.append(POWER_LEVELS_KEY)
    keys.append(("m.room.member", sender))
    if event_type == "m.room.member" and state_key is not None:
        membership = content.get("membership")
        if state_key != sender:
            keys.append(("m.room.member", state_key))
        if membership in ("join", "invite", "knock"):
            keys.append(JOIN_RULES_KEY)
        if membership == "invite":
            tpi = content.get("third_party_invite")
            if isinstance(tpi, Mapping):
                signed = tpi.get("signed")
                if isinstance(signed, Mapping) and isinstance(signed.get("token"), str):
                    keys.append(("m.room.third_party_invite", signed["token"]))
        if membership == "join" and room_version.restricted_join_rule:
            authoriser = content.get("join_authorised_via_users_server")
            if isinstance(authoriser, str):
                key = ("m.room.member", authoriser)
                if key not in keys:
                    keys.append(key)
    return keys


def select_auth_event_ids(
    room_version: RoomVersion,
    event_type: str,
    sender: str,
    state_key: str | None,
    content: Mapping[str, Any],
    state: Mapping[StateKey, str],
) -> list[str]:
    """The ``auth_events`` for a new event, given the current state (key -> event ID)."""
    out: list[str] = []
    for key in auth_types_for_event(room_version, event_type, sender, state_key, content):
        event_id = state.get(key)
        if event_id is not None and event_id not in out:
            out.append(event_id)
    return out


def event_template(
    room_version: RoomVersion,
    *,
    room_id: str,
    event_type: str,
    sender: str,
    content: Mapping[str, Any],
    prev_events: Sequence[Event],
    state: Mapping[StateKey, str],
    origin_server_ts: int,
    state_key: str | None = None,
    redacts: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The unsigned PDU of a new event in an existing room (no ``hashes``, no ``signatures``).

    The one place a PDU's fields are put together: :func:`build_event` hashes and signs it, a
    ``make_join``/``make_leave`` answer sends it as the template the joining server signs.

    Args:
        room_version: the room's version.
        room_id: the room.
        event_type, sender, content, state_key: the event's own fields.
        prev_events: the forward extremities it follows (1 to 20 events).
        state: the room state before this event (key -> event ID); the
            auth events are selected from it.
        origin_server_ts: milliseconds since the epoch.
        redacts: for ``m.room.redaction``: placed at the top level in v10 and
            in ``content`` from v11.
        extra: further top-level keys (e.g. ``unsigned``); never ``event_id``.

    Raises:
        InvalidEvent: if there are no prev events or more than 20.
    """
    if not prev_events or len(prev_events) > MAX_PREV_EVENTS:
        raise InvalidEvent(f"an event needs 1 to {MAX_PREV_EVENTS} prev_events")
    content = dict(content)
    pdu: dict[str, Any] = {}
    if redacts is not None:
        if room_version.redacts_in_content:
            content["redacts"] = redacts
        else:
            pdu["redacts"] = redacts
    depth = min(max(e.depth for e in prev_events) + 1, MAX_DEPTH)
    pdu.update(
        {
            "room_id": room_id,
            "type": event_type,
            "sender": sender,
            "content": content,
            "origin_server_ts": origin_server_ts,
            "depth": depth,
            "prev_events": [e.event_id for e in prev_events],
            "auth_events": select_auth_event_ids(
                room_version, event_type, sender, state_key, content, state
            ),
        }
    )
    if state_key is not None:
        pdu["state_key"] = state_key
    if extra:
        pdu.update({k: v for k, v in extra.items() if k != "event_id"})
    return pdu


def build_event(
    room_version: RoomVersion,
    *,
    room_id: str,
    event_type: str,
    sender: str,
    content: Mapping[str, Any],
    prev_events: Sequence[Event],
    state: Mapping[StateKey, str],
    origin_server_ts: int,
    server_name: str,
    signing_key: SigningKey,
    state_key: str | None = None,
    redacts: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Event:
    """Build, hash and sign a new event in an existing room: :func:`event_template`, then the
    content hash and our signature (``server_name`` signs with ``signing_key``).

    Raises:
        InvalidEvent: if there are no prev events or more than 20.
    """
    pdu = event_template(
        room_version, room_id=room_id, event_type=event_type, sender=sender, content=content,
        prev_events=prev_events, state=state, origin_server_ts=origin_server_ts,
        state_key=state_key, redacts=redacts, extra=extra,
    )
    signed = hash_and_sign_event(pdu, room_version, server_name, signing_key)
    return Event(signed, room_version)


def build_create_event(
    room_version: RoomVersion,
    *,
    sender: str,
    origin_server_ts: int,
    server_name: str,
    signing_key: SigningKey,
    room_id: str | None = None,
    content: Mapping[str, Any] | None = None,
) -> Event:
    """Build the ``m.room.create`` event of a new room.

    ``content.room_version`` is set; in v10 ``content.creator`` is set to the
    sender.  In v12 ``room_id`` must be None (the room ID comes from this
    event: ``event.room_id``); before v12 it is required.

    Raises:
        InvalidEvent: if ``room_id`` is given in v12 or missing before.
    """
    body: dict[str, Any] = {"room_version": room_version.identifier}
    if not room_version.implicit_room_creator:
        body["creator"] = sender
    body.update(content or {})
    pdu: dict[str, Any] = {
        "type": "m.room.create",
        "state_key": "",
        "sender": sender,
        "content": body,
        "origin_server_ts": origin_server_ts,
        "depth": 1,
        "prev_events": [],
        "auth_events": [],
    }
    if room_version.room_id_is_create_hash:
        if room_id is not None:
            raise InvalidEvent("v12 create events carry no room_id")
    else:
        if room_id is None:
            raise InvalidEvent("this room version needs a room_id for the create event")
        pdu["room_id"] = room_id
    signed = hash_and_sign_event(pdu, room_version, server_name, signing_key)
    return Event(signed, room_version)
