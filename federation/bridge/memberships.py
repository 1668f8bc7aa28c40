"""Federated memberships as the chat sees them: invitations both ways, joining remote rooms,
accepting, declining and revoking. The Matrix handshakes are :mod:`federation.handlers.joins`'s;
this module decides who may, and writes the chat side through ``rooms.actions``.

* :func:`receive_invite` (``PUT /v2/invite``): the invitee must be an active local user with
  ``access-federation`` (else 404 / 403 ``M_FORBIDDEN``); the invite is counter-signed and a pending
  invitation appears in the chat (a portal is created from the stripped state).
* :func:`invite_remote_user`: federates the room if needed, then the invite handshake.
* :func:`join_remote_room`: by room ID or alias, trying the given ``via`` servers, the alias's
  servers, the inviters' servers and the ID's server in turn (fail-over on any error); then the
  portal, its remote members (puppets) and recent history (backfill) appear in the chat.
* :func:`accept_invite` / :func:`decline_invite` / :func:`revoke_invite`: answer or withdraw a
  pending invitation (through the inviting server when we are not in the room).
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction

from accounts.actions import do_get_or_create_puppets
from accounts.models import User
from federation import config
from federation.bridge.portals import create_portal_room, ensure_portal, portal_of
from federation.bridge.remote_media import queue_avatar
from federation.bridge.users import (
    forget_unused_puppet,
    local_user_for,
    may_federate,
    mxid_of,
    puppet_for,
    refresh_profile,
    remember_profiles,
)
from federation.handlers import joins
from federation.handlers.backfill import backfill_from
from federation.handlers.joins import MembershipError
from federation.hooks import applying_remote
from federation.models import MatrixRoom
from federation.protocol.events import Event, StateKey
from federation.protocol.ids import is_valid_user_id, server_name_of
from federation.transport.client import FederationError
from federation.transport.errors import MatrixError
from rooms.actions.memberships import do_accept_invite, do_add_member, do_add_members, do_decline_invite, do_invite
from rooms.models import Membership, Room

__all__ = ["MembershipError", "accept_invite", "decline_invite", "invite_remote_user", "join_remote_room",
           "receive_invite", "revoke_invite"]

log = logging.getLogger(__name__)

BACKFILL_ON_JOIN = 50


# --- invited from another server ------------------------------------------------------------------


def _stripped(invite_state: list[Any], event_type: str) -> dict[str, Any]:
    for item in invite_state:
        if isinstance(item, dict) and item.get("type") == event_type and isinstance(item.get("content"), dict):
            return item["content"]
    return {}


def receive_invite(origin: str, room_id: str, event_id: str, body: Any) -> dict[str, Any]:
    """``PUT /_matrix/federation/v2/invite/{roomId}/{eventId}``: an invite of one of our users.

    Returns the answer (the counter-signed event). Raises :class:`MatrixError` as the spec says.
    """
    event, invite_state = joins.check_invite(origin, room_id, event_id, body)
    user = local_user_for(event.state_key or "")
    if user is None or not user.is_active:
        raise MatrixError(404, "M_NOT_FOUND", "No such user here")
    if not may_federate(user):
        raise MatrixError(403, "M_FORBIDDEN", "This user may not take part in federated rooms")
    with transaction.atomic():
        mroom, signed = joins.countersign_invite(event)
        inviter = puppet_for(event.sender, fetch_profile=False)
        room = mroom.chat_room
        if room is None:
            room = create_portal_room(
                mroom, name=str(_stripped(invite_state, "m.room.name").get("name") or ""),
                topic=str(_stripped(invite_state, "m.room.topic").get("topic") or ""),
                join_rule=str(_stripped(invite_state, "m.room.join_rules").get("join_rule") or "invite"),
                is_direct=bool(event.content.get("is_direct")), creator=inviter, dm_users=[user, inviter])
        sub = Membership.objects.filter(room=room, user=user).first()
        if sub is None or sub.state == Membership.LEFT:
            with applying_remote():
                do_invite(room, user, by=inviter)
    transaction.on_commit(lambda: _refresh_profile_later(inviter))
    return {"event": dict(signed.pdu)}


def _refresh_profile_later(user: User) -> None:
    try:
        refresh_profile(user)
    except Exception:
        log.info("profile refresh of %s failed", user.username)


# --- inviting a remote user into one of our rooms -----------------------------------------------


def invite_remote_user(room: Room, invitee: User, *, by: User) -> None:
    """Invite a remote user (puppet) into a chat room, federating the room if needed.

    Checked first (:func:`federation.handlers.joins.check_invitee`): the server is allowed, the
    room's ACL admits it, it answers and the user exists; a failed check changes nothing (the room
    is not federated for it, and a puppet made for the mistyped ID is removed).

    Raises:
        MembershipError: the inviter lacks ``access-federation``, a check failed, or the invitee's
            server refused (its answer is in the message).
    """
    if not may_federate(by):
        raise MembershipError("You are not allowed to invite users from other servers")
    try:
        joins.check_invitee(invitee.username, portal_of(room))
    except MembershipError:
        forget_unused_puppet(invitee)  # a mistyped ID leaves nothing behind
        raise
    mroom = ensure_portal(room, by=by)
    joins.send_invite(mroom, mxid_of(by), invitee.username, is_direct=room.type == Room.DIRECT)
    with applying_remote():
        do_invite(room, invitee, by=by)


# --- joining a remote room ----------------------------------------------------------------------


def join_remote_room(user: User, target: str, via: list[str] | None = None) -> Room:
    """Join a Matrix room by ID or alias; returns the chat portal (created as needed).

    If our server is already in the room, the join is a plain event of ours. Otherwise each
    candidate server (``via``, the alias's servers, the inviters' and the room ID's server) is
    tried in turn.

    Raises:
        MembershipError: not allowed, or no server would let us in (the last error is given).
    """
    if not may_federate(user):
        raise MembershipError("You are not allowed to join rooms on other servers")
    via = [v for v in (via or []) if isinstance(v, str) and v]
    if target.startswith("#"):
        room_id, servers = joins.resolve_alias(target)
    else:
        room_id, servers = target, []
    existing = MatrixRoom.objects.filter(room_id=room_id).first()
    if existing is not None and joins.we_are_joined(existing):
        if existing.chat_room is None:
            raise MembershipError("This room is not available here")
        do_add_member(existing.chat_room, user)  # the hook sends our join
        return existing.chat_room
    me = config.server_name()
    candidates: list[str] = []
    for s in [*via, *servers, *joins.invite_servers(room_id, mxid_of(user)), joins.room_id_server(room_id)]:
        if s and s != me and s not in candidates and config.server_allowed(s):
            candidates.append(s)
    if not candidates:
        raise MembershipError("No server to join through (give via servers)")
    last = "no server answered"
    for server in candidates:
        try:
            mroom, join, state = joins.join_via(server, room_id, mxid_of(user), displayname=user.display_name)
        except MembershipError as exc:
            last = str(exc)
            log.info("join of %s via %s failed: %s", room_id, server, exc)
            continue
        state[join.state_key_tuple] = join
        room = mroom.chat_room or _portal_from_state(mroom, state, user)
        _mirror_members(room, state)
        del state
        _backfill(server, mroom, join)
        with applying_remote():
            do_add_member(room, user)
        return room
    raise MembershipError(f"Could not join {target}: {last}")


def _portal_from_state(mroom: MatrixRoom, state: dict[StateKey, Event], user: User) -> Room:
    create = state.get(("m.room.create", ""))
    creator = puppet_for(create.sender, fetch_profile=False) if create is not None and server_name_of(
        create.sender) != config.server_name() else user
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


def _mirror_members(room: Room, state: dict[StateKey, Event]) -> None:
    """Puppets and chat memberships for the room's joined remote members (no system messages).

    In bulk (:func:`accounts.actions.do_get_or_create_puppets`, :func:`rooms.actions.memberships.do_add_members`):
    a few queries per thousand members. Each puppet's display name is the member event's (its profile is
    then not fetched for :data:`~federation.bridge.users.PROFILE_TTL`), its avatar queued when the event has one.
    """
    me = config.server_name()
    joined: dict[str, Event] = {}
    for (t, sk), ev in state.items():
        if t == "m.room.member" and ev.membership == "join" and is_valid_user_id(sk) and server_name_of(sk) != me:
            joined[sk] = ev
    names: dict[str, str | None] = {}
    for mxid, ev in joined.items():
        name = ev.content.get("displayname")
        names[mxid] = name if isinstance(name, str) and name else None
    with applying_remote():
        puppets = do_get_or_create_puppets(names)
        remember_profiles([m for m, n in names.items() if n and m in puppets])
        for mxid, puppet in puppets.items():
            queue_avatar(puppet, joined[mxid].content.get("avatar_url"))
        do_add_members(room, puppets.values())


def _backfill(server: str, mroom: MatrixRoom, join: Event) -> None:
    """Fetch recent history before our join; the chat mirror puts its messages in place."""
    try:
        backfill_from(server, mroom, join.room_version, join.prev_event_ids, BACKFILL_ON_JOIN)
    except FederationError as exc:
        log.info("backfill of %s from %s failed: %s", mroom.room_id, server, exc)


# --- answering and withdrawing invitations ------------------------------------------------------


def _pending_invitation(room: Room, user: User) -> tuple[Membership, MatrixRoom | None]:
    """The user's pending invitation, and the Matrix room to answer it through: None when it is
    answered here (a local room, or one our server is in)."""
    sub = Membership.objects.filter(room=room, user=user, state=Membership.INVITED).first()
    if sub is None:
        raise MembershipError("There is no pending invitation")
    mroom = portal_of(room)
    return sub, (mroom if mroom is not None and not joins.we_are_joined(mroom) else None)


def accept_invite(room: Room, user: User) -> None:
    """Accept a pending invitation in a chat room, joining the Matrix room as needed."""
    sub, remote = _pending_invitation(room, user)
    if remote is None:
        do_accept_invite(sub)
    else:
        join_remote_room(user, remote.room_id)


def decline_invite(room: Room, user: User) -> None:
    """Decline a pending invitation; tells the inviting server when we are not in the room."""
    sub, remote = _pending_invitation(room, user)
    if remote is None:
        do_decline_invite(sub)
        return
    joins.leave_via(mxid_of(user), remote.room_id)
    with applying_remote():
        do_decline_invite(sub)


def revoke_invite(room: Room, invitee: User, *, by: User) -> None:
    """Withdraw a pending invitation (a leave of the invitee, sent by the inviter)."""
    sub = Membership.objects.filter(room=room, user=invitee, state=Membership.INVITED).first()
    if sub is None:
        raise MembershipError("There is no pending invitation")
    do_decline_invite(sub, by=by)
