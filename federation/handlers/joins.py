"""Membership handshakes between servers (invites, joins, leaves), as server and as client.

Only the Matrix side is here; what a handshake means for the chat (pending invitations, portals,
puppets) is :mod:`federation.bridge.memberships`'s, which calls these.

Serving (other servers' users and our rooms / our users and their rooms)
    * ``GET /v1/make_join/{roomId}/{userId}?ver=..``: a join template on our room's head, if the
      user may join (public room, or invited), the origin is the user's server and supports the
      room version (else 400 ``M_INCOMPATIBLE_ROOM_VERSION``).
    * ``PUT /v2/send_join/{roomId}/{eventId}``: the signed join is checked (format, signatures,
      ID, it is a join of a user of the origin) and stored on our head, sent on to the other
      servers; the answer is the state before it and its auth chain.
    * ``GET /v1/make_leave`` + ``PUT /v2/send_leave``: the same for leaving (a declined invite).
    * ``PUT /v2/invite/{roomId}/{eventId}``: :func:`check_invite` checks the invite of one of our
      users; :func:`countersign_invite` signs it and stores it as an outlier.

Client (our users)
    * :func:`send_invite`: the invite event is built on our head, counter-signed by the invitee's
      server through its ``/v2/invite``, then stored and sent to the room.
    * :func:`resolve_alias`, :func:`join_via`: ``query/directory``, then ``make_join``/``send_join``
      through one server; the answer's state and auth chain are checked (signatures, auth rules)
      before the room is stored.
    * :func:`leave_via`: ``make_leave``/``send_leave``, to decline an invite to a room we are not in.

Every entry point checks the server allow/deny lists (:func:`federation.config.server_allowed`).
"""

from __future__ import annotations

import logging
from typing import Any, NamedTuple

from django.db import transaction

from federation import config
from federation.clock import now_ms
from federation.handlers.keys import TransactionKeyStore
from federation.handlers.pdu_checks import check_received_pdu, event_id_or_none
from federation.handlers.room_events import EventRefused, store_accepted_event
from federation.models import MatrixEvent, MatrixRoom, MatrixRoomAlias
from federation.protocol.auth_rules import authorize_event, check_auth_rules
from federation.protocol.builder import event_template
from federation.protocol.errors import AuthError, ProtocolError, UnsupportedRoomVersion
from federation.protocol.event_signing import add_event_signature, hash_and_sign_event
from federation.protocol.events import Event, StateKey
from federation.protocol.ids import server_name_of
from federation.protocol.room_servers import servers_in_room
from federation.protocol.room_versions import SUPPORTED_ROOM_VERSIONS, RoomVersion, get_room_version
from federation.signing_key import get_signing_key
from federation.store.events import (
    Arrival,
    OrmEventStore,
    auth_chain_ids,
    decode_state,
    encode_state,
    mark_state_known,
    pdus_for,
    persist_event,
    persist_outliers,
)
from federation.store.room_state import (
    create_event_id_of,
    origin_allowed_by_acl,
    server_joined,
    state_events,
    stripped_state,
)
from federation.transport.client import FederationClient, FederationError, encode_path
from federation.transport.errors import MatrixError

log = logging.getLogger(__name__)


class MembershipError(Exception):
    """A federated membership change could not be made (the message says why, in plain words)."""


# --- serving -----------------------------------------------------------------------------------


def _our_room(room_id: str) -> MatrixRoom:
    room = MatrixRoom.objects.filter(room_id=room_id).first()
    if room is None or not room.current_state:
        raise MatrixError(404, "M_NOT_FOUND", "Unknown room")
    return room


def _check_origin(origin: str, user_id: str) -> None:
    if not config.server_allowed(origin):
        raise MatrixError(403, "M_FORBIDDEN", "Server is not allowed to federate with this server")
    try:
        if server_name_of(user_id) != origin:
            raise MatrixError(403, "M_FORBIDDEN", "User is not from the requesting server")
    except ValueError:
        raise MatrixError(400, "M_INVALID_PARAM", "invalid user ID")


def _check_acl(room: MatrixRoom, origin: str) -> None:
    if not origin_allowed_by_acl(room, origin):
        raise MatrixError(403, "M_FORBIDDEN", "Server is banned from this room by its ACL")


def _head(room: MatrixRoom) -> tuple[RoomVersion, dict[StateKey, str], list[Event]]:
    """The room's version, current state and forward extremities (as events, at most 20)."""
    prevs = list(OrmEventStore(room).get_events(room.forward_extremities).values())
    return get_room_version(room.room_version), decode_state(room.current_state), prevs[-20:]


def make_membership(origin: str, room_id: str, user_id: str, membership: str, versions: list[str]) -> dict[str, Any]:
    """``make_join`` / ``make_leave``: a template on our head, if the membership would be allowed."""
    room = _our_room(room_id)
    _check_origin(origin, user_id)
    _check_acl(room, origin)
    if membership == "join" and room.room_version not in (versions or ["1"]):
        raise MatrixError(400, "M_INCOMPATIBLE_ROOM_VERSION",
                          f"Your server does not support room version {room.room_version}")
    rv, state, prevs = _head(room)
    template = event_template(rv, room_id=room.room_id, event_type="m.room.member", sender=user_id,
                              content={"membership": membership}, prev_events=prevs, state=state,
                              origin_server_ts=now_ms(), state_key=user_id,
                              extra={"origin": config.server_name()} if not rv.implicit_room_creator else None)
    # Check now, with a stand-in event, so that a join that would be refused is refused here.
    probe = Event(dict(template, hashes={"sha256": ""}, signatures={}), rv, "$probe")
    try:
        check_auth_rules(probe, state_events(room))
    except AuthError as exc:
        raise MatrixError(403, "M_FORBIDDEN", f"You are not allowed to {membership} this room: {exc}")
    return {"room_version": room.room_version, "event": template}


def receive_membership(origin: str, room_id: str, event_id: str, body: Any, membership: str) -> tuple[
        MatrixRoom, Event, dict[StateKey, str]]:
    """``send_join`` / ``send_leave``: check the signed event and store it on our head (sent on to the
    room's other servers). Returns the room, the event and the state before it."""
    room = _our_room(room_id)
    rv = get_room_version(room.room_version)
    if not isinstance(body, dict):
        raise MatrixError(400, "M_BAD_JSON", "body must be an event")
    try:
        event = check_received_pdu(body, rv)
    except ProtocolError as exc:
        raise MatrixError(400, "M_BAD_JSON", f"invalid event: {exc}")
    if event.event_id != event_id or event.room_id != room_id:
        raise MatrixError(400, "M_BAD_JSON", "event ID or room ID does not match the path")
    if event.type != "m.room.member" or event.state_key != event.sender or event.membership != membership:
        raise MatrixError(400, "M_BAD_JSON", f"not a {membership} event of its sender")
    _check_origin(origin, event.sender)
    _check_acl(room, origin)
    state_before = decode_state(room.current_state)
    if MatrixEvent.objects.filter(event_id=event.event_id, rejected_reason="", outlier=False).exists():
        return room, event, state_before
    try:
        authorize_event(event, OrmEventStore(room))
        store_accepted_event(room_id, event, exclude=[origin])
    except (AuthError, EventRefused) as exc:
        raise MatrixError(403, "M_FORBIDDEN", f"{membership} refused: {exc}")
    return room, event, state_before


def send_join_answer(origin: str, room_id: str, event_id: str, body: Any) -> dict[str, Any]:
    """``send_join`` v2: the state before the join and its auth chain."""
    room, event, state_before = receive_membership(origin, room_id, event_id, body, "join")
    pdu_ids = list(state_before.values())
    chain = auth_chain_ids(pdu_ids)
    create = create_event_id_of(room)
    if create and create not in chain and create not in pdu_ids:
        chain.append(create)
    room.refresh_from_db()
    return {"origin": config.server_name(), "state": pdus_for(pdu_ids), "auth_chain": pdus_for(chain),
            "event": dict(event.pdu), "members_omitted": False, "servers_in_room": servers_in_room(state_events(room))}


def check_invite(origin: str, room_id: str, event_id: str, body: Any) -> tuple[Event, list[Any]]:
    """``/v2/invite``: the invite event as checked (format, signatures, IDs, origin) and the invite
    room state. The invitee is not looked at here (the bridge knows our users)."""
    if not isinstance(body, dict) or not isinstance(body.get("event"), dict):
        raise MatrixError(400, "M_BAD_JSON", "event is required")
    version = body.get("room_version")
    if version not in SUPPORTED_ROOM_VERSIONS:
        raise MatrixError(400, "M_INCOMPATIBLE_ROOM_VERSION", f"Room version {version} is not supported")
    rv = get_room_version(version)
    try:
        event = check_received_pdu(body["event"], rv)
    except ProtocolError as exc:
        raise MatrixError(400, "M_BAD_JSON", f"invalid event: {exc}")
    if event.event_id != event_id or event.room_id != room_id:
        raise MatrixError(400, "M_BAD_JSON", "event ID or room ID does not match the path")
    if event.type != "m.room.member" or event.membership != "invite" or not event.state_key:
        raise MatrixError(400, "M_BAD_JSON", "not an invite")
    if not config.server_allowed(origin) or server_name_of(event.sender) != origin:
        raise MatrixError(403, "M_FORBIDDEN", "Inviting server is not allowed or not the sender's")
    invite_state = body.get("invite_room_state") or []
    return event, invite_state if isinstance(invite_state, list) else []


def countersign_invite(event: Event) -> tuple[MatrixRoom, Event]:
    """Add our signature to an accepted invite and store it as an outlier (we are not in the room).

    Runs in the caller's transaction. Returns the (created if needed) room and the signed event.
    """
    rv = event.room_version
    signed = Event(add_event_signature(event.pdu, rv, config.server_name(), get_signing_key()), rv,
                   event.event_id)
    mroom, _ = MatrixRoom.objects.get_or_create(room_id=event.room_id, defaults={"room_version": rv.identifier})
    persist_event(mroom, signed, arrival=Arrival.OUTLIER, if_exists="keep")
    return mroom, signed


# --- client: inviting a remote user into one of our rooms -----------------------------------------


INVITE_CHECK_TIMEOUT = 15.0


def check_invitee(user_id: str, mroom: MatrixRoom | None = None) -> None:
    """What Rocket.Chat checks before an invite goes out, so that a mistyped one fails at once
    and in words: the server is allowed (ours and, for a room already federated, the room's server
    ACL), it resolves and answers, and the user exists there (a profile query; a server that
    refuses profile queries, 403, is given the benefit of the doubt).

    Raises:
        MembershipError: which of those failed.
    """
    server = server_name_of(user_id)
    if not config.server_allowed(server):
        raise MembershipError(f"Federation with {server} is not allowed on this server")
    if mroom is not None and mroom.current_state and not origin_allowed_by_acl(mroom, server):
        raise MembershipError(f"This room's server ACL does not admit {server}")
    try:
        FederationClient(timeout=min(config.request_timeout(), INVITE_CHECK_TIMEOUT)).query_profile(server, user_id)
    except FederationError as exc:
        if exc.status == 0:
            raise MembershipError(f"{server} could not be reached: {exc}") from exc
        if exc.status == 404:
            raise MembershipError(f"There is no user {user_id} on {server}") from exc
        if exc.status not in (401, 403):
            raise MembershipError(f"{server} did not answer about {user_id}: {exc}") from exc
        log.info("profile of %s not given by %s (%s): inviting anyway", user_id, server, exc.status)


def send_invite(mroom: MatrixRoom, sender: str, invitee: str, *, is_direct: bool) -> Event:
    """Invite ``invitee`` (a remote Matrix ID) into our room: built on our head, counter-signed by
    the invitee's server, then stored and sent to the room.

    Raises:
        MembershipError: the rules refuse it, or the invitee's server refused (its answer is given).
    """
    server = server_name_of(invitee)
    if not we_are_joined(mroom):
        raise MembershipError("This server is not in that room (yet): answer its pending invitation first")
    rv, state, prevs = _head(mroom)
    content: dict[str, Any] = {"membership": "invite"}
    if is_direct:
        content["is_direct"] = True
    pdu = event_template(rv, room_id=mroom.room_id, event_type="m.room.member", sender=sender, content=content,
                         prev_events=prevs, state=state, origin_server_ts=now_ms(), state_key=invitee)
    event = Event(hash_and_sign_event(pdu, rv, config.server_name(), get_signing_key()), rv)
    current = state_events(mroom)
    try:
        check_auth_rules(event, current)
    except AuthError as exc:
        raise MembershipError(f"You may not invite into this room: {exc}")
    try:
        answer = FederationClient(timeout=30).put_json(
            server, encode_path("/_matrix/federation/v2/invite/{}/{}", mroom.room_id, event.event_id),
            {"room_version": rv.identifier, "event": dict(event.pdu),
             "invite_room_state": stripped_state(mroom, current[("m.room.member", sender)])})
    except FederationError as exc:
        raise MembershipError(f"{server} refused the invite: {exc}")
    signed = answer.get("event") if isinstance(answer, dict) else None
    if not isinstance(signed, dict):
        raise MembershipError(f"{server} answered the invite without the signed event")
    try:
        checked = check_received_pdu(signed, rv)
    except ProtocolError as exc:
        raise MembershipError(f"{server} returned an invalid invite: {exc}")
    if checked.event_id != event.event_id or server not in checked.pdu.get("signatures", {}):
        raise MembershipError(f"{server} returned a different or unsigned invite")
    try:
        store_accepted_event(mroom.room_id, checked, exclude=[server])
    except EventRefused as exc:
        raise MembershipError(f"the invite no longer fits the room: {exc}")
    return checked


# --- client: joining and leaving remote rooms -------------------------------------------------


def resolve_alias(alias: str) -> tuple[str, list[str]]:
    """``#name:server`` -> (room ID, servers) via ``query/directory`` on the alias's server.

    A server refused by the allow/deny lists is never contacted (:class:`MembershipError`).
    """
    local = MatrixRoomAlias.objects.filter(alias=alias).select_related("room").first()
    me = config.server_name()
    if local is not None:
        return local.room.room_id, [me]
    server = server_name_of(alias)
    if server == me:
        raise MembershipError(f"No room has the alias {alias}")
    if not config.server_allowed(server):
        raise MembershipError(f"Federation with {server} is not allowed")
    try:
        answer = FederationClient(timeout=20).get_json(server, "/_matrix/federation/v1/query/directory",
                                                        {"room_alias": alias})
    except FederationError as exc:
        raise MembershipError(f"Could not resolve {alias}: {exc}")
    room_id = answer.get("room_id") if isinstance(answer, dict) else None
    servers = [s for s in (answer.get("servers") or []) if isinstance(s, str)] if isinstance(answer, dict) else []
    if not isinstance(room_id, str):
        raise MembershipError(f"Could not resolve {alias}")
    return room_id, servers + [server]


def we_are_joined(room: MatrixRoom) -> bool:
    """Whether one of our users is joined to the room (so we can send events ourselves)."""
    return bool(room.current_state) and server_joined(room, config.server_name())


def invite_servers(room_id: str, user_id: str) -> list[str]:
    """The servers of those who invited ``user_id`` into the room (from the invites we hold)."""
    rows = MatrixEvent.objects.filter(room_id=room_id, type="m.room.member", state_key=user_id)
    return [server_name_of(r.sender) for r in rows if r.pdu.get("content", {}).get("membership") == "invite"]


def room_id_server(room_id: str) -> str:
    """The server part of a room ID (v12 room IDs have none: empty)."""
    return room_id.split(":", 1)[1] if ":" in room_id else ""


def make_and_send(server: str, room_id: str, user_id: str, membership: str, *,
                  displayname: str | None = None) -> tuple[Event, dict[str, Any]]:
    """``make_<membership>`` then ``send_<membership>`` through ``server``. Returns our signed
    event (as the server returned it, for a join) and the ``send_*`` answer."""
    client = FederationClient(timeout=60)
    try:
        query = {"ver": list(SUPPORTED_ROOM_VERSIONS)} if membership == "join" else None
        made = client.get_json(server, encode_path(f"/_matrix/federation/v1/make_{membership}/{{}}/{{}}",
                                                   room_id, user_id), query)
        rv = get_room_version(made.get("room_version", "1"))
    except (FederationError, UnsupportedRoomVersion, AttributeError) as exc:
        raise MembershipError(f"make_{membership} via {server}: {exc}")
    template = made.get("event")
    if not isinstance(template, dict) or template.get("state_key") != user_id or template.get("room_id") != room_id:
        raise MembershipError(f"{server} sent an unusable {membership} template")
    pdu = {k: v for k, v in template.items() if k not in ("event_id", "hashes", "signatures", "unsigned")}
    pdu["sender"] = user_id
    pdu["origin_server_ts"] = now_ms()
    pdu["content"] = dict(pdu.get("content") or {}, membership=membership)
    if membership == "join" and displayname is not None:
        pdu["content"]["displayname"] = displayname
    event = Event(hash_and_sign_event(pdu, rv, config.server_name(), get_signing_key()), rv)
    try:
        answer = client.put_json(server, encode_path(f"/_matrix/federation/v2/send_{membership}/{{}}/{{}}",
                                                     room_id, event.event_id), dict(event.pdu))
    except FederationError as exc:
        raise MembershipError(f"send_{membership} via {server}: {exc}")
    if membership == "join" and isinstance(answer, dict) and isinstance(answer.get("event"), dict):
        try:
            returned = check_received_pdu(answer["event"], rv)
            if returned.event_id == event.event_id:
                event = returned
        except ProtocolError:
            pass
    return event, answer if isinstance(answer, dict) else {}


class Joined(NamedTuple):
    """What :func:`join_via` stored: the room, our join, and the state before it as checked events."""

    room: MatrixRoom
    join: Event
    state: dict[StateKey, Event]


def join_via(server: str, room_id: str, user_id: str, *, displayname: str | None) -> Joined:
    """make_join + send_join through ``server``; check the answer; store the room at our join.

    Every event of the answer's state and auth chain is checked on receipt (format, signatures,
    content hash: :func:`check_received_pdu`, with each server's keys read once for the whole
    answer) and then authorised against its own auth events (in depth order, so an event's auth
    events are judged before it; one that fails is stored as rejected and its dependants fail
    too). The state before our join is the answer's state minus rejected events; our join must
    pass the auth rules against it. All of it is written in one transaction (the answer's events
    with one bulk insert per thousand, :func:`persist_outliers`).

    Returns the stored room, our join and the state before it. Raises :class:`MembershipError`
    when the server would not let us in or its answer does not check out (nothing is stored then
    but checked events).
    """
    event, answer = make_and_send(server, room_id, user_id, "join", displayname=displayname)
    rv = event.room_version
    state_pdus: list[Any] = answer["state"] if isinstance(answer.get("state"), list) else []
    chain_pdus: list[Any] = answer["auth_chain"] if isinstance(answer.get("auth_chain"), list) else []
    keys = TransactionKeyStore()
    checked: dict[str, Event] = {}
    state_ids: set[str] = set()
    for n, pdu in enumerate([*chain_pdus, *state_pdus]):
        try:
            ev = check_received_pdu(pdu, rv, keys)
        except ProtocolError as exc:
            log.info("dropping a bad PDU of the send_join answer: %s", exc)
            if n >= len(chain_pdus) and (eid := event_id_or_none(pdu, rv)) is not None:
                state_ids.add(eid)  # a state event may still count if its copy in the auth chain checked out
            continue
        checked[ev.event_id] = ev
        if n >= len(chain_pdus):
            state_ids.add(ev.event_id)
    state_ids &= checked.keys()
    del state_pdus, chain_pdus, answer
    create = next((e for e in checked.values() if e.type == "m.room.create" and e.state_key == ""), None)
    if create is None or create.room_id != room_id:
        raise MembershipError(f"{server}'s join answer has no valid create event for {room_id}")
    with transaction.atomic():
        mroom, _ = MatrixRoom.objects.get_or_create(room_id=room_id, defaults={"room_version": rv.identifier})
        if mroom.room_version != rv.identifier:
            mroom.room_version = rv.identifier
            mroom.save(update_fields=["room_version"])
        store = OrmEventStore(mroom)
        rejected: set[str] = set()
        judged: list[tuple[Event, str]] = []
        for ev in sorted(checked.values(), key=lambda e: (e.depth, e.origin_server_ts)):
            store.remember(ev)
            reason = ""
            try:
                authorize_event(ev, store)
            except (AuthError, ProtocolError) as exc:
                reason = f"auth events: {exc}"[:255]
                rejected.add(ev.event_id)
                store.remember(ev, rejected=True)
            judged.append((ev, reason))
        persist_outliers(mroom, judged, arrival=Arrival.OUTLIER)
        del judged
        state: dict[StateKey, str] = {}
        state_events_before: dict[StateKey, Event] = {}
        for eid in state_ids:
            ev = checked[eid]
            if eid not in rejected and ev.is_state:
                state[ev.state_key_tuple] = eid
                state_events_before[ev.state_key_tuple] = ev
        try:
            check_auth_rules(event, state_events_before)
        except AuthError as exc:
            raise MembershipError(f"our join does not pass the room's rules: {exc}")
        after = dict(state)
        after[event.state_key_tuple] = event.event_id
        persist_event(mroom, event, arrival=Arrival.LIVE, state_after=after)
        mark_state_known(event.prev_event_ids, state)  # the state before our join is known at its prevs
        mroom.current_state = encode_state(after)
        mroom.forward_extremities = [event.event_id]
        mroom.save(update_fields=["current_state", "forward_extremities", "room_version"])
    return Joined(mroom, event, state_events_before)


def leave_via(user_id: str, room_id: str) -> None:
    """Decline an invite (or leave) through ``make_leave``/``send_leave`` via the inviting server(s).

    Raises:
        MembershipError: no server accepted the leave.
    """
    me = config.server_name()
    candidates = [s for s in [*invite_servers(room_id, user_id), room_id_server(room_id)] if s and s != me]
    last = "no server to leave through"
    for server in dict.fromkeys(candidates):
        try:
            make_and_send(server, room_id, user_id, "leave")
            return
        except MembershipError as exc:
            last = str(exc)
    raise MembershipError(last)
