"""The chat <-> Matrix mapping, in one place: portals, puppets, and how each side's changes become
the other side's.

Vocabulary (after mautrix): a **portal** is a room that exists on both sides (a chat
:class:`~rooms.models.Room` linked to a :class:`~federation.models.MatrixRoom`); a **puppet** is the
local stand-in for a remote Matrix user: a :class:`~accounts.models.User` with ``is_remote`` set,
whose ``username`` is the Matrix ID and whose display name comes from the user's profile (fetched
over federation, cached for :data:`PROFILE_TTL`, refreshed whenever a member event carries one).

The mapping
    ============================  ===========================================================
    chat                          Matrix
    ============================  ===========================================================
    local user ``alice``          ``@alice:<CONCORD_SERVER_NAME>``
    puppet ``@bob:example.org``   ``@bob:example.org``
    public channel (``c``)        ``join_rule: public``, alias ``#name:<server>``, published
    private group (``p``) / DM    ``join_rule: invite`` (a 1:1 DM invites with ``is_direct``)
    joined / invited / left       ``m.room.member`` join / invite / leave (kick: leave by other)
    banned                        ``m.room.member`` ban
    message (markdown source)     ``m.room.message`` ``m.text``: ``body`` = the markdown,
                                  ``formatted_body`` = the sanitized HTML
                                  (``org.matrix.custom.html``)
    room name / topic             ``m.room.name`` / ``m.room.topic``
    ============================  ===========================================================

Direction of calls
    Chat actions call :mod:`federation.hooks` (one line each); the hooks call the *outbound*
    functions here after commit. Events accepted from other servers come to
    :func:`apply_remote_event`, which calls the chat actions inside :func:`applying_remote`, so
    those actions' hooks do not echo the change back to Matrix.

Inbound text is taken from ``body`` (the plain/markdown form every client sends) and rendered and
sanitized by the chat's own markdown renderer; remote HTML is never stored as is.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import re
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.cache import cache
from django.db import transaction

from federation.protocol.errors import InvalidIdentifier
from federation.protocol.events import Event
from federation.protocol.ids import UserId, server_name_of

if TYPE_CHECKING:
    from accounts.models import User
    from federation.models import MatrixRoom
    from rooms.models import Room

log = logging.getLogger(__name__)

PROFILE_TTL = 3600
_applying_remote: contextvars.ContextVar[bool] = contextvars.ContextVar("fed_applying_remote", default=False)


@contextlib.contextmanager
def applying_remote() -> Iterator[None]:
    """Chat actions run inside this block come from Matrix: their hooks must not send anything."""
    token = _applying_remote.set(True)
    try:
        yield
    finally:
        _applying_remote.reset(token)


def is_applying_remote() -> bool:
    """Whether the current code runs inside :func:`applying_remote`."""
    return _applying_remote.get()


def me() -> str:
    """Our server name."""
    return str(settings.CONCORD_SERVER_NAME)


# --- users -------------------------------------------------------------------------------------


def looks_like_matrix_id(value: str) -> bool:
    """``@local:server`` (what the REST API treats as a Matrix user rather than a username)."""
    return value.startswith("@") and ":" in value[1:]


def mxid_of(user: User) -> str:
    """The Matrix ID of a chat user (a puppet's username is its Matrix ID)."""
    return user.username if user.is_remote else f"@{user.username}:{me()}"


def local_user_for(mxid: str) -> User | None:
    """The local user with that Matrix ID, if it is ours."""
    from accounts.models import User

    try:
        uid = UserId.parse(mxid)
    except InvalidIdentifier:
        return None
    if str(uid.server_name) != me():
        return None
    return User.objects.filter(username=uid.localpart, is_remote=False).first()


def user_for_mxid(mxid: str, *, fetch_profile: bool = True) -> User:
    """The chat user for a Matrix ID: a local user, or the (created on demand) puppet.

    Raises:
        ValueError: not a valid Matrix ID, or one of ours that does not exist.
    """
    try:
        uid = UserId.parse(mxid)
    except InvalidIdentifier as exc:
        raise ValueError(f"{mxid} is not a valid Matrix user ID") from exc
    if str(uid.server_name) == me():
        user = local_user_for(mxid)
        if user is None:
            raise ValueError(f"no user {mxid} on this server")
        return user
    return puppet_for(str(uid), fetch_profile=fetch_profile)


def puppet_for(mxid: str, *, fetch_profile: bool = True, displayname: str | None = None) -> User:
    """The puppet of a remote Matrix user, created on first use; its profile fetched and cached."""
    from accounts.models import Role, User

    user = User.objects.filter(username=mxid).first()
    if user is None:
        localpart = mxid[1:].split(":", 1)[0]
        try:
            with transaction.atomic():
                user = User(username=mxid, name=displayname or localpart, is_remote=True, email="")
                user.set_unusable_password()
                user.save()
                user.roles.set(Role.objects.filter(id="user"))
        except Exception:  # a concurrent creation won: use it
            user = User.objects.get(username=mxid)
    if displayname:
        if user.name != displayname:
            User.objects.filter(id=user.id).update(name=displayname[:255])
            user.name = displayname[:255]
        cache.set(f"fed:profile:{mxid}", 1, PROFILE_TTL)
    elif fetch_profile:
        refresh_profile(user)
    return user


def refresh_profile(user: User, *, force: bool = False) -> None:
    """Fetch a puppet's display name (and avatar URL) over federation, at most once per TTL."""
    from federation.transport.client import FederationClient, FederationError

    key = f"fed:profile:{user.username}"
    if not force and cache.get(key):
        return
    cache.set(key, 1, PROFILE_TTL)
    try:
        profile = FederationClient(timeout=5).query_profile(server_name_of(user.username), user.username)
    except (FederationError, ValueError) as exc:
        log.info("profile of %s unavailable: %s", user.username, exc)
        return
    name = profile.get("displayname")
    if isinstance(name, str) and name and name != user.name:
        type(user).objects.filter(id=user.id).update(name=name[:255])
        user.name = name[:255]


# --- server allow / deny lists -------------------------------------------------------------------


def _pattern_matches(pattern: str, server: str) -> bool:
    host = server.rsplit(":", 1)[0] if not server.endswith("]") else server
    pattern = pattern.strip().lower()
    server, host = server.lower(), host.lower()
    if pattern.startswith("*."):
        domain = pattern[2:]
        return host.endswith("." + domain) and len(host) > len(domain) + 1
    return pattern in (server, host)


def server_allowed(server: str) -> bool:
    """Whether we talk to ``server``: not on the deny list, and on the allow list when it has entries.

    Entries are exact server names (with or without port) or ``*.domain`` wildcards, which match
    sub-domains of ``domain`` only; a bare suffix never matches (``evilexample.org`` is not
    ``example.org``).
    """
    deny = getattr(settings, "CONCORD_FEDERATION_DENIED_SERVERS", [])
    allow = getattr(settings, "CONCORD_FEDERATION_ALLOWED_SERVERS", [])
    if server == me():
        return True
    if any(_pattern_matches(p, server) for p in deny):
        return False
    return not allow or any(_pattern_matches(p, server) for p in allow)


def may_federate(user: User) -> bool:
    """``access-federation``: may this local user create, join or be invited to federated rooms."""
    from accounts.permissions import has_permission

    return user.is_remote or has_permission(user, "access-federation")


# --- portals -----------------------------------------------------------------------------------


def portal_of(room: Room) -> MatrixRoom | None:
    """The Matrix room linked to a chat room, if any."""
    from federation.models import MatrixRoom

    return MatrixRoom.objects.filter(chat_room=room).first()


def room_version_default() -> str:
    """The room version of rooms we create (``CONCORD_FEDERATION_ROOM_VERSION``, default 12)."""
    return str(getattr(settings, "CONCORD_FEDERATION_ROOM_VERSION", "12"))


def ensure_portal(room: Room, *, version: str | None = None, by: User | None = None) -> MatrixRoom:
    """The Matrix room of a chat room, created (with its joined local members) when missing.

    Public channels get ``join_rule: public``, the alias ``#name:<server>`` and are published in
    the room directory; groups and DMs are invite-only.
    """
    from federation.models import MatrixRoom
    from federation.room_events import create_room, send_event
    from rooms.models import Membership, Room

    existing = portal_of(room)
    if existing is not None:
        return existing
    with transaction.atomic():
        Room.objects.select_for_update().filter(id=room.id).first()
        existing = MatrixRoom.objects.filter(chat_room=room).first()
        if existing is not None:
            return existing
        members = list(Membership.objects.filter(room=room, state=Membership.JOINED, user__is_remote=False)
                       .select_related("user").order_by("joined_at"))
        creator = room.creator if room.creator is not None and not room.creator.is_remote else (
            by if by is not None else (members[0].user if members else None))
        if creator is None:
            raise ValueError("a room needs a local member to be federated")
        public = room.type == Room.CHANNEL
        mroom = create_room(mxid_of(creator), version=version or room_version_default(),
                            join_rule="public" if public else "invite",
                            name=room.fname or room.name if room.type != Room.DIRECT else "", topic=room.topic,
                            chat_room_id=room.id, alias=f"#{room.name}:{me()}" if public and room.name else None,
                            published=public)
        pl_users: dict[str, int] = {}
        for sub in members:
            if sub.user_id == creator.id:
                continue
            send_event(mroom.room_id, "m.room.member", mxid_of(sub.user), {"membership": "join",
                       "displayname": sub.user.display_name}, state_key=mxid_of(sub.user))
            if "owner" in sub.roles:
                pl_users[mxid_of(sub.user)] = 100
            elif "moderator" in sub.roles:
                pl_users[mxid_of(sub.user)] = 50
        if pl_users:
            _update_power_levels(mroom, mxid_of(creator), pl_users)
        mroom.refresh_from_db()
    return mroom


def _update_power_levels(mroom: MatrixRoom, sender: str, users: dict[str, int]) -> None:
    from federation.room_events import send_event, state_events

    pl = state_events(mroom).get(("m.room.power_levels", ""))
    content = dict(pl.content) if pl is not None else {}
    current = dict(content.get("users") or {})
    current.update(users)
    content["users"] = current
    send_event(mroom.room_id, "m.room.power_levels", sender, content, state_key="")


def _portal_name(name: str, mroom_id: str) -> str:
    from rooms.models import Room

    base = re.sub(r"[^\w\-.]+", "-", name, flags=re.UNICODE).strip("-.")[:80] or "matrix-" + re.sub(
        r"[^\w]", "", mroom_id)[:12]
    candidate, n = base, 1
    while Room.objects.filter(name=candidate).exclude(type=Room.DIRECT).exists():
        n += 1
        candidate = f"{base}-{n}"
    return candidate


def create_portal_room(mroom: MatrixRoom, *, name: str, topic: str, join_rule: str, is_direct: bool,
                       creator: User, dm_users: list[User] | None = None) -> Room:
    """The chat room that mirrors a remote Matrix room (no members yet; callers add them).

    (Created here rather than through ``do_create_room``: a portal has no local owner and no
    initial members; memberships are then written by the membership actions.)
    """
    from federation.models import MatrixRoom as MR
    from rooms.models import Room

    with transaction.atomic():
        if is_direct and dm_users:
            key = ",".join(sorted({u.id for u in dm_users}))
            room = Room.objects.filter(type=Room.DIRECT, dm_key=key).first()
            if room is not None and portal_of(room) is not None:
                key = ""
            if room is None or not key:
                room = Room.objects.create(type=Room.DIRECT, creator=creator, dm_key=key, name="", fname="")
        else:
            room_type = Room.CHANNEL if join_rule == "public" else Room.GROUP
            room = Room.objects.create(type=room_type, name=_portal_name(name, mroom.room_id), fname=name[:255],
                                       topic=topic, creator=creator)
        MR.objects.filter(room_id=mroom.room_id).update(chat_room=room)
        mroom.chat_room = room
    return room


# --- chat -> Matrix (called by federation.hooks after commit) ----------------------------------


def _send(room_id: str, event_type: str, sender: str, content: dict[str, Any], **kw: Any) -> Event | None:
    from federation.room_events import EventRefused, send_event

    try:
        return send_event(room_id, event_type, sender, content, **kw)
    except EventRefused as exc:
        log.warning("not sending %s by %s in %s: %s", event_type, sender, room_id, exc)
    except Exception:
        log.exception("sending %s by %s in %s failed", event_type, sender, room_id)
    return None


def on_member_joined(chat_room_id: str, user_id: str) -> None:
    """A local user joined a portal: their ``m.room.member`` join."""
    from accounts.models import User
    from federation.room_events import membership_of
    from rooms.models import Room

    room = Room.objects.filter(id=chat_room_id).first()
    user = User.objects.filter(id=user_id, is_remote=False).first()
    mroom = portal_of(room) if room is not None else None
    if mroom is None or user is None:
        return
    mxid = mxid_of(user)
    if membership_of(mroom, mxid) == "join":
        return
    if not mroom.current_state:
        log.warning("%s joined %s, which we are not in any more: not sent", mxid, mroom.room_id)
        return
    _send(mroom.room_id, "m.room.member", mxid, {"membership": "join", "displayname": user.display_name},
          state_key=mxid)


def on_member_left(chat_room_id: str, user_id: str, by_id: str | None, membership: str = "leave") -> None:
    """A member left, was kicked or banned (``by`` someone else), or an invite was revoked."""
    from accounts.models import User
    from federation.room_events import membership_of
    from rooms.models import Room

    room = Room.objects.filter(id=chat_room_id).first()
    mroom = portal_of(room) if room is not None else None
    user = User.objects.filter(id=user_id).first()
    by = User.objects.filter(id=by_id).first() if by_id else user
    if mroom is None or user is None or by is None or by.is_remote or not mroom.current_state:
        return
    target = mxid_of(user)
    if membership == "leave" and membership_of(mroom, target) in (None, "leave", "ban"):
        return
    extra = [server_name_of(target)] if user.is_remote else []
    _send(mroom.room_id, "m.room.member", mxid_of(by), {"membership": membership}, state_key=target,
          extra_destinations=extra)


def on_message(message_id: str) -> None:
    """A local user's message in a portal: ``m.room.message`` (markdown body + sanitized HTML)."""
    from federation.models import BridgedMessage
    from rooms.models import Message

    msg = Message.objects.filter(id=message_id).select_related("user", "room").first()
    if msg is None or msg.type or msg.user is None or msg.user.is_remote:
        return
    mroom = portal_of(msg.room)
    if mroom is None or not mroom.current_state:
        return
    content: dict[str, Any] = {"msgtype": "m.text", "body": msg.text}
    if msg.html:
        content["format"] = "org.matrix.custom.html"
        content["formatted_body"] = msg.html
    if msg.thread_root_id:
        root = BridgedMessage.objects.filter(message_id=msg.thread_root_id).first()
        if root is not None:
            content["m.relates_to"] = {"rel_type": "m.thread", "event_id": root.event_id}
    event = _send(mroom.room_id, "m.room.message", mxid_of(msg.user), content)
    if event is not None:
        BridgedMessage.objects.get_or_create(event_id=event.event_id, defaults={"message_id": msg.id})


def on_message_deleted(message_id: str, by_id: str) -> None:
    """A bridged message was deleted: ``m.room.redaction``."""
    from accounts.models import User
    from federation.models import BridgedMessage
    from rooms.models import Message

    link = BridgedMessage.objects.filter(message_id=message_id).first()
    msg = Message.objects.filter(id=message_id).select_related("room").first()
    by = User.objects.filter(id=by_id, is_remote=False).first()
    if link is None or msg is None or by is None:
        return
    mroom = portal_of(msg.room)
    if mroom is not None and mroom.current_state:
        _send(mroom.room_id, "m.room.redaction", mxid_of(by), {}, redacts=link.event_id)


def on_room_setting(chat_room_id: str, field: str, by_id: str) -> None:
    """Name, topic or type changed by a local user: ``m.room.name`` / ``m.room.topic`` / join rules."""
    from accounts.models import User
    from rooms.models import Room

    room = Room.objects.filter(id=chat_room_id).first()
    by = User.objects.filter(id=by_id, is_remote=False).first()
    mroom = portal_of(room) if room is not None else None
    if mroom is None or by is None or not mroom.current_state:
        return
    if field == "name":
        _send(mroom.room_id, "m.room.name", mxid_of(by), {"name": room.fname or room.name}, state_key="")
    elif field == "topic":
        _send(mroom.room_id, "m.room.topic", mxid_of(by), {"topic": room.topic}, state_key="")
    elif field == "type":
        _send(mroom.room_id, "m.room.join_rules", mxid_of(by),
              {"join_rule": "public" if room.type == Room.CHANNEL else "invite"}, state_key="")


def on_room_role(chat_room_id: str, user_id: str, by_id: str) -> None:
    """Owner -> power 100, moderator -> 50, neither -> removed from ``users``."""
    from accounts.models import User
    from rooms.models import Membership, Room

    room = Room.objects.filter(id=chat_room_id).first()
    mroom = portal_of(room) if room is not None else None
    sub = Membership.objects.filter(room_id=chat_room_id, user_id=user_id).select_related("user").first()
    by = User.objects.filter(id=by_id, is_remote=False).first()
    if mroom is None or sub is None or by is None or not mroom.current_state:
        return
    level = 100 if "owner" in sub.roles else 50 if "moderator" in sub.roles else 0
    _update_power_levels(mroom, mxid_of(by), {mxid_of(sub.user): level})


# --- Matrix -> chat ----------------------------------------------------------------------------


def apply_remote_event(room_id: str, event: Event) -> None:
    """Mirror an accepted event of another server in the linked chat room (no-op without a portal).

    Events sent by our own users are skipped: they started here.
    """
    from federation.models import MatrixRoom

    if server_name_of(event.sender) == me():
        return
    mroom = MatrixRoom.objects.filter(room_id=room_id).select_related("chat_room").first()
    if mroom is None or mroom.chat_room is None:
        return
    try:
        with applying_remote():
            _apply(mroom, mroom.chat_room, event)
    except Exception:  # one odd event must not stop the room's processing
        log.exception("could not mirror %s in chat room %s", event.event_id, mroom.chat_room_id)


def _apply(mroom: MatrixRoom, room: Room, event: Event) -> None:
    from chat.api_errors import ApiError
    from federation.models import BridgedMessage
    from rooms.actions.memberships import (
        do_add_member,
        do_ban,
        do_decline_invite,
        do_invite,
        do_kick,
        do_leave,
    )
    from rooms.actions.messages import do_delete_message, do_send_message
    from rooms.actions.rooms import do_change_room_setting
    from rooms.models import Membership, Message
    from rooms.models import Room as ChatRoom

    sender = user_for_mxid(event.sender, fetch_profile=False)
    content = event.content
    if event.type == "m.room.member" and event.state_key:
        displayname = content.get("displayname") if isinstance(content.get("displayname"), str) else None
        target = (puppet_for(event.state_key, fetch_profile=displayname is None, displayname=displayname)
                  if server_name_of(event.state_key) != me() else local_user_for(event.state_key))
        if target is None:
            return
        sub = Membership.objects.filter(room=room, user=target).first()
        m = event.membership
        if m == "join":
            if sub is None or sub.state != Membership.JOINED:
                do_add_member(room, target, system_message=room.type != ChatRoom.DIRECT)
        elif m == "invite":
            if not target.is_remote and (sub is None or sub.state == Membership.LEFT):
                do_invite(room, target, by=sender)
        elif m in ("leave", "ban"):
            if m == "ban":
                if sub is None or not sub.banned:
                    do_ban(room, target, by=sender)
                return
            if sub is None or sub.state == Membership.LEFT:
                return
            if sub.state == Membership.INVITED:
                do_decline_invite(sub)
            elif event.sender == event.state_key:
                try:
                    do_leave(room, target)
                except ApiError:
                    _force_leave(sub)
            else:
                try:
                    do_kick(room, target, by=sender)
                except ApiError:
                    _force_leave(sub)
    elif event.type == "m.room.message" and isinstance(content.get("body"), str):
        if BridgedMessage.objects.filter(event_id=event.event_id).exists():
            return
        text = _text_of(content, sender)
        if not text.strip():
            return
        thread_root_id = None
        rel = content.get("m.relates_to")
        if isinstance(rel, dict) and rel.get("rel_type") == "m.replace":
            return  # edits: the original stays (edits are not mirrored yet)
        if isinstance(rel, dict) and rel.get("rel_type") == "m.thread":
            root = BridgedMessage.objects.filter(event_id=rel.get("event_id")).first()
            thread_root_id = root.message_id if root is not None else None
        when = datetime.fromtimestamp(event.origin_server_ts / 1000, UTC)
        msg = do_send_message(sender, room, text[:20000], thread_root_id=thread_root_id, skip_post_check=True,
                              created_at=min(when, datetime.now(UTC)))
        BridgedMessage.objects.get_or_create(event_id=event.event_id, defaults={"message_id": msg.id})
    elif event.type == "m.room.redaction":
        target_id = event.redacts or content.get("redacts")
        link = BridgedMessage.objects.filter(event_id=target_id).first()
        msg = Message.objects.filter(id=link.message_id).first() if link is not None else None
        if msg is not None and not msg.deleted_at:
            with contextlib.suppress(ApiError):
                do_delete_message(sender, msg)
    elif event.type == "m.room.name" and event.state_key == "" and room.type != ChatRoom.DIRECT:
        name = content.get("name")
        if isinstance(name, str) and name.strip() and name != room.fname:
            do_change_room_setting(room, "name", _portal_name(name, mroom.room_id), by=sender)
            ChatRoom.objects.filter(id=room.id).update(fname=name[:255])
    elif event.type == "m.room.topic" and event.state_key == "":
        topic = content.get("topic")
        if isinstance(topic, str) and topic != room.topic:
            do_change_room_setting(room, "topic", topic[:10000], by=sender)


def _force_leave(sub: Any) -> None:
    from rooms.actions.memberships import do_decline_invite
    from rooms.models import Membership

    # The chat's "last owner" rule does not bind Matrix: mark the member as gone.
    Membership.objects.filter(pk=sub.pk).update(state=Membership.INVITED)
    sub.refresh_from_db()
    do_decline_invite(sub)


def _text_of(content: Mapping[str, Any], sender: User) -> str:
    body = str(content.get("body", "")).replace("\x00", "")
    msgtype = content.get("msgtype")
    if msgtype == "m.emote":
        return f"_{sender.display_name} {body}_"
    if msgtype in ("m.image", "m.file", "m.video", "m.audio"):
        url = content.get("url")
        return f"{body} ({url})" if isinstance(url, str) else body
    return body
