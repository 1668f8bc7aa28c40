"""Our own events in Matrix rooms: building, checking, storing and fanning them out.

Design notes
------------
* **One writer per room.** :func:`send_event` locks the :class:`~federation.models.MatrixRoom` row,
  builds the event on the room's forward extremities with the current state as the source of its
  auth events, checks it against the auth rules *before* anything leaves (an event that would be
  rejected by peers is refused here, :class:`EventRefused`), stores it with the state after it,
  moves the room's current state and extremities, and queues it in the durable outbox for every
  server with a joined member (before or after the event, so a kicked server hears of its kick).
  All of that happens in one database transaction: the event and its outbox rows commit together.
* **Rooms we create** (:func:`create_room`) start with the usual initial state: create, the
  creator's join, power levels, join rules, history visibility (``shared``), guest access
  (``forbidden``), then name and topic if given. Room versions 10, 11 and 12 are supported; in v12
  the room ID is the create event's hash and the creator is left out of ``users`` in the power
  levels (creators have unlimited power there).
* **Events that arrive through membership handshakes** (``send_join``/``send_leave``/invites) are
  stored by :func:`store_accepted_event`, which does the same bookkeeping for an event someone
  else signed once it has passed the checks.
* Both store through :func:`federation.store.events.persist_event` (``Arrival.LIVE``), so the
  chat mirror hears of handshake events exactly as of events received in a transaction.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterable, Mapping
from typing import Any

from django.db import transaction

from federation import config
from federation.clock import now_ms
from federation.models import MatrixRoom, MatrixRoomAlias
from federation.protocol.auth_rules import check_auth_rules
from federation.protocol.builder import build_create_event, build_event
from federation.protocol.errors import AuthError, ProtocolError
from federation.protocol.events import Event, StateKey
from federation.protocol.room_versions import DEFAULT_ROOM_VERSION, RoomVersion, get_room_version
from federation.signing_key import get_signing_key
from federation.store.events import Arrival, OrmEventStore, decode_state, encode_state, persist_event
from federation.store.outbox import enqueue_pdu
from federation.store.room_state import joined_servers, state_events

log = logging.getLogger(__name__)


class EventRefused(Exception):
    """Our own event would break the room's auth rules; nothing was stored or sent."""


def _advance(room: MatrixRoom, event: Event, state_before: dict[StateKey, str]) -> dict[StateKey, str]:
    """Store ``event`` (accepted) and make it the room's only forward extremity."""
    after = dict(state_before)
    if event.is_state:
        after[event.state_key_tuple] = event.event_id
    persist_event(room, event, arrival=Arrival.LIVE, state_after=after)
    room.current_state = encode_state(after)
    room.forward_extremities = [event.event_id]
    room.save(update_fields=["current_state", "forward_extremities"])
    return after


def _fan_out(room: MatrixRoom, event: Event, before: Mapping[StateKey, str], after: Mapping[StateKey, str],
             extra: Iterable[str] = (), exclude: Iterable[str] = ()) -> None:
    skip = set(exclude) | {config.server_name()}
    dests: list[str] = []
    for s in [*joined_servers(room, before), *joined_servers(room, after), *extra]:
        if s not in skip and s not in dests:
            dests.append(s)
    if dests:
        enqueue_pdu(dests, room.room_id, event.event_id, dict(event.pdu))


def send_event(room_id: str, event_type: str, sender: str, content: Mapping[str, Any], *,
               state_key: str | None = None, redacts: str | None = None,
               extra_destinations: Iterable[str] = (), origin_server_ts: int | None = None) -> Event:
    """Build, check, store and queue one of our events in a room we are in.

    Guarantees: the event passes the auth rules against the current state (else
    :class:`EventRefused` and nothing changes); it is stored, becomes the room's forward extremity
    and is queued for every server joined before or after it, in one transaction.
    ``origin_server_ts`` dates it in the past (a chat message older than the room's federation).
    """
    with transaction.atomic():
        room = MatrixRoom.objects.select_for_update().get(room_id=room_id)
        rv = get_room_version(room.room_version)
        state = decode_state(room.current_state)
        store = OrmEventStore(room)
        prevs = list(store.get_events(room.forward_extremities).values())
        event = build_event(rv, room_id=room.room_id, event_type=event_type, sender=sender, content=content,
                            prev_events=prevs[-20:], state=state,
                            origin_server_ts=origin_server_ts if origin_server_ts is not None else now_ms(),
                            server_name=config.server_name(), signing_key=get_signing_key(), state_key=state_key,
                            redacts=redacts)
        try:
            check_auth_rules(event, state_events(room, state))
        except (AuthError, ProtocolError) as exc:
            raise EventRefused(str(exc)) from exc
        after = _advance(room, event, state)
        _fan_out(room, event, state, after, extra_destinations)
    return event


def store_accepted_event(room_id: str, event: Event, *, exclude: Iterable[str] = (),
                         fan_out: bool = True) -> None:
    """Store an event signed elsewhere that joins our room's head (send_join/send_leave/invites).

    The caller has verified its signatures; it is checked against the current state here.

    Raises:
        EventRefused: it fails the auth rules against the current state.
    """
    with transaction.atomic():
        room = MatrixRoom.objects.select_for_update().get(room_id=room_id)
        state = decode_state(room.current_state)
        try:
            check_auth_rules(event, state_events(room, state))
        except (AuthError, ProtocolError) as exc:
            raise EventRefused(str(exc)) from exc
        after = dict(state)
        if event.is_state:
            after[event.state_key_tuple] = event.event_id
        persist_event(room, event, arrival=Arrival.LIVE, state_after=after)
        room.current_state = encode_state(after)
        room.forward_extremities = [e for e in room.forward_extremities if e not in event.prev_event_ids] + [
            event.event_id]
        room.save(update_fields=["current_state", "forward_extremities"])
        if fan_out:
            _fan_out(room, event, state, after, exclude=exclude)


def power_levels_content(rv: RoomVersion, creator: str, *, invite_level: int = 0) -> dict[str, Any]:
    """The initial power levels: the creator 100 (implicit in v12), moderation at 50."""
    users = {} if rv.creators_infinite_power else {creator: 100}
    return {"users": users, "users_default": 0, "events_default": 0, "state_default": 50, "ban": 50,
            "kick": 50, "redact": 50, "invite": invite_level,
            "events": {"m.room.name": 50, "m.room.topic": 0, "m.room.power_levels": 100,
                       "m.room.history_visibility": 100, "m.room.server_acl": 100}}


def create_room(creator: str, *, version: str | None = None, join_rule: str = "invite", name: str = "",
                topic: str = "", chat_room_id: str | None = None, alias: str | None = None,
                published: bool = False, history_visibility: str = "shared") -> MatrixRoom:
    """Create a Matrix room on our server with ``creator`` (a local Matrix ID) joined.

    Returns the stored room; its events are stored (nobody else is in it yet, so nothing is sent).
    """
    rv = get_room_version(version or DEFAULT_ROOM_VERSION.identifier)
    key = get_signing_key()
    with transaction.atomic():
        me = config.server_name()
        room_id = None if rv.room_id_is_create_hash else f"!{secrets.token_urlsafe(18)}:{me}"
        create = build_create_event(rv, sender=creator, origin_server_ts=now_ms(), server_name=me,
                                    signing_key=key, room_id=room_id)
        room = MatrixRoom.objects.create(room_id=create.room_id, room_version=rv.identifier,
                                         chat_room_id=chat_room_id, published=published)
        state: dict[StateKey, str] = {}
        _advance(room, create, state)
        send_event(room.room_id, "m.room.member", creator, {"membership": "join"}, state_key=creator)
        send_event(room.room_id, "m.room.power_levels", creator, power_levels_content(rv, creator), state_key="")
        send_event(room.room_id, "m.room.join_rules", creator, {"join_rule": join_rule}, state_key="")
        send_event(room.room_id, "m.room.history_visibility", creator,
                   {"history_visibility": history_visibility}, state_key="")
        send_event(room.room_id, "m.room.guest_access", creator, {"guest_access": "forbidden"}, state_key="")
        if alias:
            MatrixRoomAlias.objects.update_or_create(alias=alias, defaults={"room": room})
            send_event(room.room_id, "m.room.canonical_alias", creator, {"alias": alias}, state_key="")
        if name:
            send_event(room.room_id, "m.room.name", creator, {"name": name}, state_key="")
        if topic:
            send_event(room.room_id, "m.room.topic", creator, {"topic": topic}, state_key="")
        room.refresh_from_db()
    return room
