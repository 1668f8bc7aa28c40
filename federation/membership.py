"""Membership handshakes between servers: invites, joins and leaves, both as server and as client.

Serving (other servers' users and our rooms / our users and their rooms)
    * ``GET /v1/make_join/{roomId}/{userId}?ver=..``: a join template on our room's head, if the
      user may join (public room, or invited), the origin is the user's server and supports the
      room version (else 400 ``M_INCOMPATIBLE_ROOM_VERSION``).
    * ``PUT /v2/send_join/{roomId}/{eventId}``: the signed join is checked (format, signatures,
      ID, it is a join of a user of the origin) and stored on our head, sent on to the other
      servers; the answer is the state before it and its auth chain.
    * ``GET /v1/make_leave`` + ``PUT /v2/send_leave``: the same for leaving (a declined invite).
    * ``PUT /v2/invite/{roomId}/{eventId}``: an invite of one of our users; refused with 403
      ``M_FORBIDDEN`` when the user lacks ``access-federation``; otherwise counter-signed, and a
      pending invitation appears in the chat (a portal is created from the stripped state).

Client (our users)
    * :func:`invite_remote_user`: the invite event is built on our head, counter-signed by the
      invitee's server through its ``/v2/invite``, then stored and sent to the room.
    * :func:`join_remote_room`: by room ID or alias, trying the given ``via`` servers, the
      alias's servers and the ID's server in turn (fail-over on any error); the ``send_join``
      answer's state and auth chain are checked (signatures, auth rules) before the room is stored;
      then recent history is backfilled into the chat.
    * :func:`leave_remote_room`: ``make_leave``/``send_leave`` through the inviting server, to
      decline an invite to a room we are not in.

Every entry point checks the server allow/deny lists (:func:`federation.bridge.server_allowed`).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.http import HttpRequest

from federation.bridge import (
    apply_remote_event,
    create_portal_room,
    local_user_for,
    may_federate,
    me,
    mxid_of,
    portal_of,
    puppet_for,
    server_allowed,
)
from federation.models import MatrixEvent, MatrixRoom, MatrixRoomAlias
from federation.protocol.auth_rules import authorize_event, check_auth_rules
from federation.protocol.builder import select_auth_event_ids
from federation.protocol.errors import AuthError, ProtocolError, UnsupportedRoomVersion
from federation.protocol.event_signing import add_event_signature, hash_and_sign_event
from federation.protocol.events import Event, StateKey
from federation.protocol.ids import server_name_of
from federation.protocol.room_versions import SUPPORTED_ROOM_VERSIONS, get_room_version
from federation.room_events import (
    EventRefused,
    now_ms,
    state_events,
    store_accepted_event,
    stripped_state,
)
from federation.store import OrmEventStore, auth_chain_ids, create_event_id_of, decode_state, encode_state, pdus_for
from federation.views import MatrixError, matrix_endpoint

if TYPE_CHECKING:
    from accounts.models import User
    from rooms.models import Room

log = logging.getLogger(__name__)

BACKFILL_ON_JOIN = 50


class MembershipError(Exception):
    """A federated membership change could not be made (the message says why, in plain words)."""


# --- serving -----------------------------------------------------------------------------------


def _our_room(room_id: str) -> MatrixRoom:
    room = MatrixRoom.objects.filter(room_id=room_id).first()
    if room is None or not room.current_state:
        raise MatrixError(404, "M_NOT_FOUND", "Unknown room")
    return room


def _check_origin(origin: str, user_id: str) -> None:
    if not server_allowed(origin):
        raise MatrixError(403, "M_FORBIDDEN", "Server is not allowed to federate with this server")
    try:
        if server_name_of(user_id) != origin:
            raise MatrixError(403, "M_FORBIDDEN", "User is not from the requesting server")
    except ValueError:
        raise MatrixError(400, "M_INVALID_PARAM", "invalid user ID")


def _check_acl(room: MatrixRoom, origin: str) -> None:
    from federation.serving import server_acl_allows

    acl = state_events(room).get(("m.room.server_acl", ""))
    if acl is not None and not server_acl_allows(dict(acl.content), origin):
        raise MatrixError(403, "M_FORBIDDEN", "Server is banned from this room by its ACL")


def _template(room: MatrixRoom, user_id: str, membership: str) -> dict[str, Any]:
    rv = get_room_version(room.room_version)
    state = decode_state(room.current_state)
    store = OrmEventStore(room)
    prevs = list(store.get_events(room.forward_extremities).values())
    content = {"membership": membership}
    return {
        "room_id": room.room_id, "type": "m.room.member", "state_key": user_id, "sender": user_id,
        "content": content, "origin_server_ts": now_ms(), "depth": max(e.depth for e in prevs) + 1,
        "prev_events": [e.event_id for e in prevs][-20:],
        "auth_events": select_auth_event_ids(rv, "m.room.member", user_id, user_id, content, state),
        **({"origin": me()} if not rv.implicit_room_creator else {}),
    }


def _make_membership(request: HttpRequest, origin: str, room_id: str, user_id: str, membership: str) -> Any:
    room = _our_room(room_id)
    _check_origin(origin, user_id)
    _check_acl(room, origin)
    if membership == "join":
        versions = request.GET.getlist("ver") or ["1"]
        if room.room_version not in versions:
            raise MatrixError(400, "M_INCOMPATIBLE_ROOM_VERSION",
                              f"Your server does not support room version {room.room_version}")
    template = _template(room, user_id, membership)
    rv = get_room_version(room.room_version)
    # Check now, with a stand-in event, so that a join that would be refused is refused here.
    probe = Event(dict(template, hashes={"sha256": ""}, signatures={}), rv, "$probe")
    try:
        check_auth_rules(probe, state_events(room))
    except AuthError as exc:
        raise MatrixError(403, "M_FORBIDDEN", f"You are not allowed to {membership} this room: {exc}")
    return {"room_version": room.room_version, "event": template}


@matrix_endpoint(("GET",))
def make_join(request: HttpRequest, body: Any, origin: str, room_id: str, user_id: str) -> Any:
    """``GET /_matrix/federation/v1/make_join/{roomId}/{userId}``."""
    return _make_membership(request, origin, room_id, user_id, "join")


@matrix_endpoint(("GET",))
def make_leave(request: HttpRequest, body: Any, origin: str, room_id: str, user_id: str) -> Any:
    """``GET /_matrix/federation/v1/make_leave/{roomId}/{userId}``."""
    return _make_membership(request, origin, room_id, user_id, "leave")


def _receive_membership(origin: str, room_id: str, event_id: str, body: Any, membership: str) -> tuple[
        MatrixRoom, Event, dict[StateKey, str]]:
    from federation.inbound import check_received_pdu

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
    apply_remote_event(room_id, event)
    return room, event, state_before


@matrix_endpoint(("PUT",))
def send_join(request: HttpRequest, body: Any, origin: str, room_id: str, event_id: str) -> Any:
    """``PUT /_matrix/federation/v2/send_join/{roomId}/{eventId}``: state before the join + auth chain."""
    from federation.views import _servers_in_room

    room, event, state_before = _receive_membership(origin, room_id, event_id, body, "join")
    pdu_ids = [eid for eid in state_before.values()]
    chain = auth_chain_ids(pdu_ids)
    create = create_event_id_of(room)
    if create and create not in chain and create not in pdu_ids:
        chain.append(create)
    room.refresh_from_db()
    return {"origin": me(), "state": pdus_for(pdu_ids), "auth_chain": pdus_for(chain), "event": dict(event.pdu),
            "members_omitted": False, "servers_in_room": _servers_in_room(room)}


@matrix_endpoint(("PUT",))
def send_leave(request: HttpRequest, body: Any, origin: str, room_id: str, event_id: str) -> Any:
    """``PUT /_matrix/federation/v2/send_leave/{roomId}/{eventId}``."""
    _receive_membership(origin, room_id, event_id, body, "leave")
    return {}


@matrix_endpoint(("PUT",))
def invite(request: HttpRequest, body: Any, origin: str, room_id: str, event_id: str) -> Any:
    """``PUT /_matrix/federation/v2/invite/{roomId}/{eventId}``: an invite of one of our users."""
    from federation.inbound import check_received_pdu
    from federation.keys import get_signing_key

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
    if not server_allowed(origin) or server_name_of(event.sender) != origin:
        raise MatrixError(403, "M_FORBIDDEN", "Inviting server is not allowed or not the sender's")
    user = local_user_for(event.state_key)
    if user is None or not user.is_active:
        raise MatrixError(404, "M_NOT_FOUND", "No such user here")
    if not may_federate(user):
        raise MatrixError(403, "M_FORBIDDEN", "This user may not take part in federated rooms")
    signed = add_event_signature(event.pdu, rv, me(), get_signing_key())
    invite_state = body.get("invite_room_state") or []
    _record_invite(Event(signed, rv, event.event_id), user, invite_state if isinstance(invite_state, list) else [])
    return {"event": signed}


def _stripped(invite_state: list[Any], event_type: str) -> dict[str, Any]:
    for item in invite_state:
        if isinstance(item, dict) and item.get("type") == event_type and isinstance(item.get("content"), dict):
            return item["content"]
    return {}


def _record_invite(event: Event, user: User, invite_state: list[Any]) -> None:
    """Store the invite and leave a pending invitation in the (created if needed) portal."""
    from federation.bridge import applying_remote
    from rooms.actions.memberships import do_invite
    from rooms.models import Membership

    with transaction.atomic():
        mroom, _ = MatrixRoom.objects.get_or_create(room_id=event.room_id,
                                                    defaults={"room_version": event.room_version.identifier})
        MatrixEvent.objects.get_or_create(event_id=event.event_id, defaults=dict(
            room=mroom, type=event.type, state_key=event.state_key, sender=event.sender,
            origin_server_ts=event.origin_server_ts, depth=event.depth, pdu=dict(event.pdu), outlier=True))
        inviter = puppet_for(event.sender, fetch_profile=False)
        room = mroom.chat_room
        if room is None:
            is_direct = bool(event.content.get("is_direct"))
            room = create_portal_room(
                mroom, name=str(_stripped(invite_state, "m.room.name").get("name") or ""),
                topic=str(_stripped(invite_state, "m.room.topic").get("topic") or ""),
                join_rule=str(_stripped(invite_state, "m.room.join_rules").get("join_rule") or "invite"),
                is_direct=is_direct, creator=inviter, dm_users=[user, inviter])
        sub = Membership.objects.filter(room=room, user=user).first()
        if sub is None or sub.state == Membership.LEFT:
            with applying_remote():
                do_invite(room, user, by=inviter)
    transaction.on_commit(lambda: _refresh_profile_later(inviter))


def _refresh_profile_later(user: User) -> None:
    from federation.bridge import refresh_profile

    try:
        refresh_profile(user)
    except Exception:
        log.info("profile refresh of %s failed", user.username)


# --- client: inviting a remote user into one of our rooms -----------------------------------------


def invite_remote_user(room: Room, invitee: User, *, by: User) -> None:
    """Invite a remote user (puppet) into a chat room, federating the room if needed.

    Raises:
        MembershipError: the inviter lacks ``access-federation``, the server is not allowed, or the
            invitee's server refused (its answer is in the message).
    """
    from federation.bridge import applying_remote, ensure_portal
    from federation.keys import get_signing_key
    from federation.transport.client import FederationClient, FederationError, encode_path
    from rooms.actions.memberships import do_invite
    from rooms.models import Room as ChatRoom

    server = server_name_of(invitee.username)
    if not may_federate(by):
        raise MembershipError("You are not allowed to invite users from other servers")
    if not server_allowed(server):
        raise MembershipError(f"Federation with {server} is not allowed")
    mroom = ensure_portal(room, by=by)
    rv = get_room_version(mroom.room_version)
    content: dict[str, Any] = {"membership": "invite"}
    if room.type == ChatRoom.DIRECT:
        content["is_direct"] = True
    state = decode_state(mroom.current_state)
    store = OrmEventStore(mroom)
    prevs = list(store.get_events(mroom.forward_extremities).values())
    pdu: dict[str, Any] = {
        "room_id": mroom.room_id, "type": "m.room.member", "state_key": invitee.username, "sender": mxid_of(by),
        "content": content, "origin_server_ts": now_ms(), "depth": max(e.depth for e in prevs) + 1,
        "prev_events": [e.event_id for e in prevs][-20:],
        "auth_events": select_auth_event_ids(rv, "m.room.member", mxid_of(by), invitee.username, content, state),
    }
    event = Event(hash_and_sign_event(pdu, rv, me(), get_signing_key()), rv)
    try:
        check_auth_rules(event, state_events(mroom))
    except AuthError as exc:
        raise MembershipError(f"You may not invite into this room: {exc}")
    try:
        answer = FederationClient(timeout=30).put_json(
            server, encode_path("/_matrix/federation/v2/invite/{}/{}", mroom.room_id, event.event_id),
            {"room_version": rv.identifier, "event": dict(event.pdu),
             "invite_room_state": stripped_state(mroom, state_events(mroom)[("m.room.member", mxid_of(by))])})
    except FederationError as exc:
        raise MembershipError(f"{server} refused the invite: {exc}")
    signed = answer.get("event") if isinstance(answer, dict) else None
    if not isinstance(signed, dict):
        raise MembershipError(f"{server} answered the invite without the signed event")
    from federation.inbound import check_received_pdu

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
    with applying_remote():
        do_invite(room, invitee, by=by)


# --- client: joining a remote room ------------------------------------------------------------


def resolve_alias(alias: str, via: list[str]) -> tuple[str, list[str]]:
    """``#name:server`` -> (room ID, servers) via ``query/directory`` on the alias's server.

    A server refused by the allow/deny lists is never contacted (:class:`MembershipError`).
    """
    from federation.transport.client import FederationClient, FederationError

    local = MatrixRoomAlias.objects.filter(alias=alias).select_related("room").first()
    if local is not None:
        return local.room.room_id, [me()]
    server = server_name_of(alias)
    if server == me():
        raise MembershipError(f"No room has the alias {alias}")
    if not server_allowed(server):
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


def join_remote_room(user: User, target: str, via: list[str] | None = None) -> Room:
    """Join a Matrix room by ID or alias; returns the chat portal (created as needed).

    If our server is already in the room, the join is a plain event of ours. Otherwise each
    candidate server (``via``, the alias's servers, the room ID's server) is tried in turn.

    Raises:
        MembershipError: not allowed, or no server would let us in (the last error is given).
    """
    from federation.bridge import applying_remote
    from rooms.actions.memberships import do_add_member

    if not may_federate(user):
        raise MembershipError("You are not allowed to join rooms on other servers")
    via = [v for v in (via or []) if isinstance(v, str) and v]
    if target.startswith("#"):
        room_id, servers = resolve_alias(target, via)
    else:
        room_id, servers = target, []
    existing = MatrixRoom.objects.filter(room_id=room_id).first()
    if existing is not None and existing.current_state and _local_joined(existing):
        if existing.chat_room is None:
            raise MembershipError("This room is not available here")
        do_add_member(existing.chat_room, user)  # the hook sends our join
        return existing.chat_room
    candidates: list[str] = []
    for s in [*via, *servers, *_invite_servers(room_id, user), _room_id_server(room_id)]:
        if s and s != me() and s not in candidates and server_allowed(s):
            candidates.append(s)
    if not candidates:
        raise MembershipError("No server to join through (give via servers)")
    last = "no server answered"
    for server in candidates:
        try:
            room = _join_via(server, room_id, user)
        except MembershipError as exc:
            last = str(exc)
            log.info("join of %s via %s failed: %s", room_id, server, exc)
            continue
        with applying_remote():
            do_add_member(room, user)
        return room
    raise MembershipError(f"Could not join {target}: {last}")


def _room_id_server(room_id: str) -> str:
    return room_id.split(":", 1)[1] if ":" in room_id else ""


def _invite_servers(room_id: str, user: User) -> list[str]:
    rows = MatrixEvent.objects.filter(room_id=room_id, type="m.room.member", state_key=mxid_of(user))
    return [server_name_of(r.sender) for r in rows if r.pdu.get("content", {}).get("membership") == "invite"]


def _local_joined(room: MatrixRoom) -> bool:
    return any(t == "m.room.member" and server_name_of(sk) == me() and ev.membership == "join"
               for (t, sk), ev in state_events(room).items())


def _make_and_send(server: str, room_id: str, user: User, membership: str) -> tuple[Event, dict[str, Any]]:
    from federation.inbound import check_received_pdu
    from federation.keys import get_signing_key
    from federation.transport.client import FederationClient, FederationError, encode_path

    client = FederationClient(timeout=60)
    mxid = mxid_of(user)
    try:
        query = {"ver": list(SUPPORTED_ROOM_VERSIONS)} if membership == "join" else None
        made = client.get_json(server, encode_path(f"/_matrix/federation/v1/make_{membership}/{{}}/{{}}",
                                                   room_id, mxid), query)
        rv = get_room_version(made.get("room_version", "1"))
    except (FederationError, UnsupportedRoomVersion, AttributeError) as exc:
        raise MembershipError(f"make_{membership} via {server}: {exc}")
    template = made.get("event")
    if not isinstance(template, dict) or template.get("state_key") != mxid or template.get("room_id") != room_id:
        raise MembershipError(f"{server} sent an unusable {membership} template")
    pdu = {k: v for k, v in template.items() if k not in ("event_id", "hashes", "signatures", "unsigned")}
    pdu["sender"] = mxid
    pdu["origin_server_ts"] = now_ms()
    pdu["content"] = dict(pdu.get("content") or {}, membership=membership)
    if membership == "join":
        pdu["content"]["displayname"] = user.display_name
    event = Event(hash_and_sign_event(pdu, rv, me(), get_signing_key()), rv)
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


def _join_via(server: str, room_id: str, user: User) -> Room:
    """make_join + send_join through ``server``; check the answer; store the room; backfill."""
    from federation.inbound import check_received_pdu

    event, answer = _make_and_send(server, room_id, user, "join")
    rv = event.room_version
    state_pdus: list[Any] = answer["state"] if isinstance(answer.get("state"), list) else []
    chain_pdus: list[Any] = answer["auth_chain"] if isinstance(answer.get("auth_chain"), list) else []
    checked: dict[str, Event] = {}
    for pdu in [*chain_pdus, *state_pdus]:
        try:
            ev = check_received_pdu(pdu, rv)
        except ProtocolError as exc:
            log.info("dropping a bad PDU of the send_join answer: %s", exc)
            continue
        checked[ev.event_id] = ev
    state_ids = {checked[i].event_id for i in (_event_id(p, rv) for p in state_pdus) if i in checked}
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
        for ev in sorted(checked.values(), key=lambda e: (e.depth, e.origin_server_ts)):
            store.remember(ev)
            reason = ""
            try:
                authorize_event(ev, store)
            except (AuthError, ProtocolError) as exc:
                reason = f"auth events: {exc}"[:255]
                rejected.add(ev.event_id)
                store.remember(ev, rejected=True)
            MatrixEvent.objects.update_or_create(event_id=ev.event_id, defaults=dict(
                room=mroom, type=ev.type, state_key=ev.state_key, sender=ev.sender,
                origin_server_ts=ev.origin_server_ts, depth=ev.depth, pdu=dict(ev.pdu), outlier=True,
                rejected_reason=reason))
        state: dict[StateKey, str] = {}
        for eid in state_ids:
            ev = checked[eid]
            if eid not in rejected and ev.is_state:
                state[ev.state_key_tuple] = eid
        try:
            check_auth_rules(event, {k: checked[v] for k, v in state.items()})
        except AuthError as exc:
            raise MembershipError(f"our join does not pass the room's rules: {exc}")
        after = dict(state)
        after[event.state_key_tuple] = event.event_id
        MatrixEvent.objects.filter(event_id=event.event_id).delete()
        MatrixEvent.objects.create(event_id=event.event_id, room=mroom, type=event.type, state_key=event.state_key,
                                   sender=event.sender, origin_server_ts=event.origin_server_ts, depth=event.depth,
                                   pdu=dict(event.pdu), state_after=encode_state(after))
        for prev in event.prev_event_ids:  # the state before our join is known at its prev events
            MatrixEvent.objects.filter(event_id=prev, state_after__isnull=True).update(
                state_after=encode_state(state), outlier=False)
        mroom.current_state = encode_state(after)
        mroom.forward_extremities = [event.event_id]
        mroom.save(update_fields=["current_state", "forward_extremities", "room_version"])
        room = mroom.chat_room or _portal_from_state(mroom, state_events(mroom), user)
    _mirror_members(mroom, room, user)
    _backfill(server, mroom, room, event)
    return room


def _event_id(pdu: Any, rv: Any) -> str:
    from federation.protocol.hashing import compute_event_id

    try:
        return compute_event_id(pdu, rv)
    except (ProtocolError, TypeError, ValueError, KeyError):
        return ""


def _portal_from_state(mroom: MatrixRoom, state: dict[StateKey, Event], user: User) -> Room:
    create = state.get(("m.room.create", ""))
    creator = puppet_for(create.sender, fetch_profile=False) if create is not None and server_name_of(
        create.sender) != me() else user
    name = state.get(("m.room.name", ""))
    topic = state.get(("m.room.topic", ""))
    rules = state.get(("m.room.join_rules", ""))
    member = state.get(("m.room.member", mxid_of(user)))
    return create_portal_room(
        mroom, name=str(name.content.get("name", "")) if name is not None else "",
        topic=str(topic.content.get("topic", "")) if topic is not None else "",
        join_rule=str(rules.content.get("join_rule", "invite")) if rules is not None else "invite",
        is_direct=bool(member is not None and member.content.get("is_direct")), creator=creator,
        dm_users=[user, creator])


def _mirror_members(mroom: MatrixRoom, room: Room, user: User) -> None:
    """Puppets for the room's joined remote members (no system messages)."""
    from federation.bridge import applying_remote
    from rooms.actions.memberships import do_add_member
    from rooms.models import Membership

    with applying_remote():
        for (t, sk), ev in state_events(mroom).items():
            if t != "m.room.member" or ev.membership != "join" or server_name_of(sk) == me():
                continue
            name = ev.content.get("displayname")
            puppet = puppet_for(sk, fetch_profile=False, displayname=name if isinstance(name, str) else None)
            if not Membership.objects.filter(room=room, user=puppet, state=Membership.JOINED).exists():
                do_add_member(room, puppet, system_message=False)


def _backfill(server: str, mroom: MatrixRoom, room: Room, join: Event) -> None:
    """Fetch recent history before our join and mirror its messages (history on join)."""
    from federation.history import backfill_from
    from federation.transport.client import FederationError

    try:
        backfill_from(server, mroom, join.room_version, join.prev_event_ids, BACKFILL_ON_JOIN)
    except FederationError as exc:
        log.info("backfill of %s from %s failed: %s", mroom.room_id, server, exc)


# --- client: leaving a room we are not in (declining a remote invite) ---------------------------


def leave_remote_room(user: User, room_id: str) -> None:
    """Decline an invite (or leave) through ``make_leave``/``send_leave`` via the inviting server(s).

    Raises:
        MembershipError: no server accepted the leave.
    """
    candidates = [s for s in [*_invite_servers(room_id, user), _room_id_server(room_id)] if s and s != me()]
    last = "no server to leave through"
    for server in dict.fromkeys(candidates):
        try:
            _make_and_send(server, room_id, user, "leave")
            return
        except MembershipError as exc:
            last = str(exc)
    raise MembershipError(last)


def we_are_in(room: Room) -> MatrixRoom | None:
    """The portal's Matrix room when our server is joined to it (so we can send events ourselves)."""
    mroom = portal_of(room)
    if mroom is not None and mroom.current_state and _local_joined(mroom):
        return mroom
    return None


def accept_invite(room: Room, user: User) -> None:
    """Accept a pending invitation in a chat room, joining the Matrix room as needed."""
    from rooms.actions.memberships import do_accept_invite
    from rooms.models import Membership

    sub = Membership.objects.filter(room=room, user=user, state=Membership.INVITED).first()
    if sub is None:
        raise MembershipError("There is no pending invitation")
    mroom = portal_of(room)
    if mroom is None or we_are_in(room) is not None:
        do_accept_invite(sub)
        return
    join_remote_room(user, mroom.room_id)


def decline_invite(room: Room, user: User) -> None:
    """Decline a pending invitation; tells the inviting server when we are not in the room."""
    from federation.bridge import applying_remote
    from rooms.actions.memberships import do_decline_invite
    from rooms.models import Membership

    sub = Membership.objects.filter(room=room, user=user, state=Membership.INVITED).first()
    if sub is None:
        raise MembershipError("There is no pending invitation")
    mroom = portal_of(room)
    if mroom is None or we_are_in(room) is not None:
        do_decline_invite(sub)
        return
    leave_remote_room(user, mroom.room_id)
    with applying_remote():
        do_decline_invite(sub)


def revoke_invite(room: Room, invitee: User, *, by: User) -> None:
    """Withdraw a pending invitation (a leave of the invitee, sent by the inviter)."""
    from rooms.actions.memberships import do_decline_invite
    from rooms.models import Membership

    sub = Membership.objects.filter(room=room, user=invitee, state=Membership.INVITED).first()
    if sub is None:
        raise MembershipError("There is no pending invitation")
    do_decline_invite(sub, by=by)
