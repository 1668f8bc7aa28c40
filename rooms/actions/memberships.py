"""Joining, leaving, inviting, kicking, banning, muting and room roles."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from accounts.actions import do_delete_account
from accounts.permissions import has_permission
from chat.api_errors import ApiError, NotAllowed
from federation import hooks as federation_hooks
from rooms.events import LiveEvent, send_to_room, send_to_user
from rooms.models import Membership, Message, Room
from rooms.serialization import message_json, subscription_json, user_brief

if TYPE_CHECKING:
    from collections.abc import Iterable

    from accounts.models import User

ROOM_ROLES = ("owner", "moderator", "leader")


def _membership_event(sub: Membership) -> None:
    send_to_room(sub.room_id, LiveEvent("membership", sub.room_id, {
        "user": user_brief(sub.user), "state": sub.state, "roles": list(sub.roles),
        "muted": sub.muted, "banned": sub.banned,
    }))


def notify_subscription(sub: Membership) -> None:
    """Tell the member's own clients about their subscription (joined/invited) or its removal."""
    if sub.state == Membership.LEFT:
        send_to_user(sub.user_id, LiveEvent("subscription.removed", sub.room_id, {"rid": sub.room_id}))
    else:
        sub_json = subscription_json(sub)
        send_to_user(sub.user_id, LiveEvent("subscription", sub.room_id, sub_json))


def add_system_message(room: Room, user: User | None, kind: str, text: str = "") -> Message:
    """A system message (``uj``, ``ul``, ``au``, ``ru``, ``ub``...) recorded in the room's history.
    It counts in the room's ``msgs`` as Rocket.Chat counts it (not in members' unread counts)."""
    msg = Message.objects.create(room=room, user=user, type=kind, text=text)
    Room.objects.filter(id=room.id).update(last_message_at=msg.created_at, message_count=F("message_count") + 1)
    room.message_count += 1  # the caller's instance says it too (answers built from it stay right)
    room.last_message_at = msg.created_at
    send_to_room(room.id, LiveEvent("message.new", room.id, message_json(msg)))
    return msg


@transaction.atomic
def do_add_member(room: Room, user: User, *, by: User | None = None, roles: list[str] | None = None,
                  system_message: bool = True) -> Membership:
    """Make ``user`` a joined member of ``room``. Refuses a banned user. Idempotent for members.

    The new member has read the room up to now: counters at 0, markers at the room's counters.
    """
    sub = Membership.objects.select_for_update().filter(room=room, user=user).first()
    if sub is not None and sub.banned:
        raise NotAllowed(f"User {user.username} is banned from this room", "error-user-banned")
    if sub is not None and sub.state == Membership.JOINED:
        return sub
    if sub is None:
        sub = Membership(room=room, user=user)
    if sub.state != Membership.INVITED:  # an accepted invitation keeps its time (history visibility)
        sub.invited_at = None
    sub.state = Membership.JOINED
    sub.joined_since = timezone.now()
    sub.invited_by = by if by is not None and by != user else None
    sub.roles = list(roles or sub.roles or [])
    sub.settle_read(*Room.counters_of(room.id))
    sub.open_flag = True
    sub.last_read_at = timezone.now()
    sub.save()
    if system_message and room.type != Room.DIRECT:
        if by is not None and by != user:
            add_system_message(room, by, "au", user.username)
        else:
            add_system_message(room, user, "uj", user.username)
    _membership_event(sub)
    notify_subscription(sub)
    federation_hooks.member_joined(sub)
    return sub


@transaction.atomic
def do_add_members(room: Room, users: Iterable[User]) -> list[Membership]:
    """Many users join ``room`` at once, without system messages (a remote room's members mirrored
    when our server joins it). Returns the memberships that became joined.

    Guarantees, per user, the outcome of ``do_add_member(room, user, system_message=False)``: the
    same row state (joined, read up to now, open, counters settled at the room's), the same
    ``membership`` live events to the room and the same federation hook; except that a banned
    user is skipped (left out of the answer) instead of failing the whole call, the
    ``subscription`` notice goes to local users only (a remote user's puppet cannot sign in, so
    nothing listens on its user group), and the membership events are not published when no
    local user is joined (only joined local users' sockets are in the room's group). New rows
    are written with one bulk insert per thousand.
    """
    wanted = {u.id: u for u in users}
    existing = {m.user_id: m for m in Membership.objects.select_for_update().filter(room=room,
                                                                                    user_id__in=list(wanted))}
    shown, group = Room.counters_of(room.id)
    now = timezone.now()
    new: list[Membership] = []
    changed: list[Membership] = []
    for user_id, user in wanted.items():
        sub = existing.get(user_id)
        if sub is not None and (sub.banned or sub.state == Membership.JOINED):
            continue
        if sub is None:
            sub = Membership(room=room, user=user)
            new.append(sub)
        else:
            changed.append(sub)
        if sub.state != Membership.INVITED:
            sub.invited_at = None
        sub.state = Membership.JOINED
        sub.joined_since = now
        sub.invited_by = None
        sub.roles = list(sub.roles or [])
        sub.settle_read(shown, group)
        sub.open_flag = True
        sub.last_read_at = now
    Membership.objects.bulk_create(new, batch_size=1000)
    for sub in changed:
        sub.save()
    joined = [*new, *changed]
    # Only local members' sockets are in a room's live group (they join it when their own
    # membership becomes joined): with none, nobody would receive the membership events.
    watched = Membership.objects.filter(room=room, state=Membership.JOINED, user__is_remote=False).exists()
    for sub in joined:
        sub.user = wanted[sub.user_id]
        if watched:
            _membership_event(sub)
        if not sub.user.is_remote:
            notify_subscription(sub)
        federation_hooks.member_joined(sub)
    return joined


@transaction.atomic
def do_join_default_rooms(user: User) -> None:
    """A new local user joins every default room (``Room.default``, not archived), as Rocket.Chat
    does at registration; remote users (puppets) never do."""
    if user.is_remote:
        return
    for room in Room.objects.filter(default=True, archived=False, type__in=(Room.CHANNEL, Room.GROUP)):
        if not Membership.objects.filter(room=room, user=user, banned=True).exists():
            do_add_member(room, user)


@transaction.atomic
def do_join(room: Room, user: User, join_code: str | None = None) -> Membership:
    """``user`` joins ``room`` by themselves (Rocket.Chat's ``channels.join``).

    Guarantees: only a public channel can be joined this way (a private group or a DM needs an
    invitation or to be added by a member); an archived room cannot be joined; a banned user is
    refused until unbanned; a channel with a join code needs it (or ``join-without-join-code``).
    Joining a room one is already in is a no-op.
    """
    if room.type != Room.CHANNEL:
        raise NotAllowed("Only public channels can be joined", "error-not-allowed")
    if room.archived:
        raise NotAllowed("This room is archived", "error-room-archived")
    if room.join_code and join_code != room.join_code and not has_permission(user, "join-without-join-code"):
        raise ApiError("Invalid Room Password", "error-code-invalid")
    return do_add_member(room, user)


@transaction.atomic
def do_set_open(room: Room, user: User, is_open: bool) -> Membership:
    """Show (``open``) or hide (``close``) a room in the member's own room list.

    Raises if the member is not in the room or the subscription is already in that state, like
    Rocket.Chat's ``channels.open``/``channels.close``.
    """
    sub = Membership.objects.select_for_update().filter(room=room, user=user, state=Membership.JOINED).first()
    if sub is None:
        raise ApiError(f"The user/callee is not in the room \"{room.display_name or room.id}\".",
                       "error-user-not-in-room")
    sub.settle(*Room.counters_of(room.id))  # closed: hidden until a message shows after this
    if sub.open_flag == is_open:
        state = "open" if is_open else "closed"
        raise ApiError(f"The room, {room.display_name or room.id}, is already {state} to the sender",
                       f"error-room-already-{state}")
    sub.open_flag = is_open
    sub.save(update_fields=[*Membership.SETTLED_FIELDS, "updated_at"])
    notify_subscription(sub)
    return sub


@transaction.atomic
def do_invite(room: Room, user: User, *, by: User) -> Membership:
    """Leave a pending invitation that ``user`` may accept or decline (used for federated invites)."""
    sub = Membership.objects.select_for_update().filter(room=room, user=user).first()
    if sub is not None and sub.banned:
        raise NotAllowed(f"User {user.username} is banned from this room", "error-user-banned")
    if sub is not None and sub.state == Membership.JOINED:
        raise ApiError(f"User {user.username} is already in this room", "error-user-already-in-room")
    if sub is None:
        sub = Membership(room=room, user=user)
    sub.state = Membership.INVITED
    sub.invited_at = timezone.now()
    sub.invited_by = by
    sub.save()
    _membership_event(sub)
    notify_subscription(sub)
    return sub


@transaction.atomic
def do_accept_invite(sub: Membership) -> Membership:
    if sub.state != Membership.INVITED:
        raise ApiError("There is no pending invitation", "error-no-invitation")
    return do_add_member(sub.room, sub.user, by=None)


@transaction.atomic
def do_decline_invite(sub: Membership, *, by: User | None = None) -> None:
    """Decline a pending invitation (or, ``by`` someone else, revoke it)."""
    if sub.state != Membership.INVITED:
        raise ApiError("There is no pending invitation", "error-no-invitation")
    sub.state = Membership.LEFT
    sub.save(update_fields=["state", "updated_at"])
    _membership_event(sub)
    notify_subscription(sub)
    federation_hooks.member_left(sub.room, sub.user, by)


def _ensure_not_last_owner(room: Room, user: User, *, removed_by_other: bool = False) -> None:
    """Refuse to take the last owner out of a room that still has other members."""
    sub = Membership.objects.filter(room=room, user=user, state=Membership.JOINED).first()
    if sub is None or "owner" not in sub.roles or room.type == Room.DIRECT:
        return
    owners = [m for m in Membership.objects.filter(room=room, state=Membership.JOINED) if "owner" in m.roles]
    others = Membership.objects.filter(room=room, state=Membership.JOINED).exclude(user=user).exists()
    if len(owners) == 1 and others:
        if removed_by_other:
            raise ApiError("This is the last owner. Please set a new owner before removing this one.",
                           "error-you-are-last-owner")
        raise ApiError("You are the last owner. Please set new owner before leaving the room.",
                       "error-you-are-last-owner")


@transaction.atomic
def do_leave(room: Room, user: User, *, enforce_last_owner: bool = True) -> None:
    """Leave a room. ``enforce_last_owner=False`` is for a leave that already happened elsewhere
    (on another Matrix server, which has no "last owner" rule): it cannot be refused here."""
    sub = Membership.objects.select_for_update().filter(room=room, user=user).first()
    if sub is None or sub.state != Membership.JOINED:
        raise ApiError("You are not in this room", "error-user-not-in-room")
    if enforce_last_owner:
        _ensure_not_last_owner(room, user)
    sub.settle(*Room.counters_of(room.id))  # a former member's counters stay as they were
    sub.state = Membership.LEFT
    sub.roles = []
    sub.save(update_fields=["state", "roles", *Membership.SETTLED_FIELDS, "updated_at"])
    if room.type != Room.DIRECT:
        add_system_message(room, user, "ul", user.username)
    _membership_event(sub)
    notify_subscription(sub)
    federation_hooks.member_left(room, user)


@transaction.atomic
def do_kick(room: Room, user: User, *, by: User, enforce_last_owner: bool = True) -> None:
    """Remove a member (they may rejoin a public channel). The last owner cannot be kicked, unless
    the kick already happened on another Matrix server (``enforce_last_owner=False``)."""
    sub = Membership.objects.select_for_update().filter(room=room, user=user).first()
    if sub is None or sub.state != Membership.JOINED:
        raise ApiError(f"User {user.username} is not in this room", "error-user-not-in-room")
    if enforce_last_owner:
        _ensure_not_last_owner(room, user, removed_by_other=True)
    sub.settle(*Room.counters_of(room.id))  # a former member's counters stay as they were
    sub.state = Membership.LEFT
    sub.roles = []
    sub.save(update_fields=["state", "roles", *Membership.SETTLED_FIELDS, "updated_at"])
    add_system_message(room, by, "ru", user.username)
    _membership_event(sub)
    notify_subscription(sub)
    federation_hooks.member_left(room, user, by)


@transaction.atomic
def do_ban(room: Room, user: User, *, by: User) -> None:
    """Remove ``user`` and keep them out until :func:`do_unban`."""
    if user == by:
        raise ApiError("You cannot ban yourself", "error-invalid-params")
    if Membership.objects.filter(room=room, user=user, banned=True).exists():
        raise ApiError(f"User {user.username} is already banned", "error-user-already-banned")
    _ensure_not_last_owner(room, user, removed_by_other=True)
    sub, _ = Membership.objects.select_for_update().get_or_create(room=room, user=user,
                                                                  defaults={"state": Membership.LEFT})
    sub.settle(*Room.counters_of(room.id))  # a former member's counters stay as they were
    sub.state = Membership.LEFT
    sub.banned = True
    sub.roles = []
    sub.save()
    add_system_message(room, by, "user-banned", user.username)
    _membership_event(sub)
    notify_subscription(sub)
    federation_hooks.member_left(room, user, by, "ban")


@transaction.atomic
def do_unban(room: Room, user: User, *, by: User) -> None:
    sub = Membership.objects.select_for_update().filter(room=room, user=user, banned=True).first()
    if sub is None:
        raise ApiError(f"User {user.username} is not banned", "error-user-not-banned")
    sub.banned = False
    sub.save(update_fields=["banned", "updated_at"])
    add_system_message(room, by, "user-unbanned", user.username)
    _membership_event(sub)
    federation_hooks.member_unbanned(room, user, by)


@transaction.atomic
def do_set_muted(room: Room, user: User, muted: bool, *, by: User) -> None:
    sub = Membership.objects.select_for_update().filter(room=room, user=user, state=Membership.JOINED).first()
    if sub is None:
        raise ApiError(f"User {user.username} is not in this room", "error-user-not-in-room")
    if sub.muted == muted:
        return
    sub.muted = muted
    sub.save(update_fields=["muted", "updated_at"])
    add_system_message(room, by, "user-muted" if muted else "user-unmuted", user.username)
    _membership_event(sub)
    notify_subscription(sub)
    federation_hooks.member_muted(room, user, by)


@transaction.atomic
def do_set_room_role(room: Room, user: User, role: str, granted: bool, *, by: User) -> None:
    """Grant or revoke ``owner``/``moderator``/``leader`` for a member. Keeps at least one owner."""
    if role not in ROOM_ROLES:
        raise ApiError(f"Unknown room role {role}", "error-invalid-role")
    sub = Membership.objects.select_for_update().filter(room=room, user=user, state=Membership.JOINED).first()
    if sub is None:
        raise ApiError(f"User {user.username} is not in this room", "error-user-not-in-room")
    roles = list(sub.roles)
    if granted:
        if role in roles:
            raise ApiError(f"User is already {role}", f"error-user-already-{role}")
        roles.append(role)
    else:
        if role not in roles:
            raise ApiError(f"User is not {role}", f"error-user-not-{role}")
        if role == "owner":
            owners = [m for m in Membership.objects.filter(room=room, state=Membership.JOINED) if "owner" in m.roles]
            if len(owners) <= 1:
                raise ApiError("This is the last owner. Please set a new owner before removing this one.",
                               "error-remove-last-owner")
        roles.remove(role)
    sub.roles = roles
    sub.save(update_fields=["roles", "updated_at"])
    add_system_message(room, by, "subscription-role-added" if granted else "subscription-role-removed",
                       f"{user.username}:{role}")
    _membership_event(sub)
    notify_subscription(sub)
    federation_hooks.room_role_changed(room, user, by)


@transaction.atomic
def do_set_favorite(sub: Membership, favorite: bool) -> Membership:
    """Mark a room as a favorite in the member's own room list (Rocket.Chat's ``f``)."""
    sub = Membership.objects.select_for_update().get(id=sub.id)
    if sub.favorite != favorite:
        sub.favorite = favorite
        sub.save(update_fields=["favorite", "updated_at"])
        notify_subscription(sub)
    return sub


class LastOwnerError(ApiError):
    """Deleting the user would leave rooms without an owner (Rocket.Chat's ``user-last-owner``)."""

    def __init__(self, rooms: list[Room]) -> None:
        super().__init__("[user-last-owner]", "user-last-owner",
                         details=[{"rid": r.id, "name": r.name or r.id} for r in rooms])


def _rooms_owned_alone(user: User) -> list[tuple[Room, Membership | None]]:
    """The rooms where ``user`` is the only owner, each with the member who would take over (the
    longest-standing other joined member; None when nobody else is there)."""
    out = []
    for sub in Membership.objects.filter(user=user, state=Membership.JOINED).select_related("room"):
        if "owner" not in sub.roles or sub.room.type == Room.DIRECT:
            continue
        others = Membership.objects.filter(room=sub.room, state=Membership.JOINED).exclude(user=user)
        if any("owner" in m.roles for m in others):
            continue
        out.append((sub.room, others.order_by("joined_since", "joined_at").select_related("user").first()))
    return out


def do_delete_user(user: User, *, by: User, confirm_relinquish: bool = False) -> None:
    """Delete a local user, as Rocket.Chat does: rooms they own alone pass to their longest-standing
    other member (only with ``confirm_relinquish``, else :class:`LastOwnerError`), they leave every
    room (federated rooms hear a Matrix leave), then the account goes; their messages stay, no
    longer linked to them.

    Two steps: the leaves commit first (so their federation hooks still find the user), then the
    account is deleted; a crash between leaves a user in no room, and deleting again finishes.
    """
    if user.is_remote:
        raise ApiError("Remote users are not deleted here: they belong to their own server", "error-invalid-user")
    owned = _rooms_owned_alone(user)
    if owned and not confirm_relinquish:
        raise LastOwnerError([room for room, _ in owned])
    with transaction.atomic():
        for room, heir in owned:
            if heir is not None:
                do_set_room_role(room, heir.user, "owner", True, by=by)
        for sub in Membership.objects.filter(user=user, state=Membership.JOINED).select_related("room"):
            do_leave(sub.room, user, enforce_last_owner=False)
        Membership.objects.filter(user=user, state=Membership.INVITED).update(state=Membership.LEFT)
    with transaction.atomic():
        do_delete_account(user)


@transaction.atomic
def do_set_ignored(sub: Membership, other: User, ignore: bool) -> Membership:
    """Hide (or show again) ``other``'s messages in the member's own view of the room."""
    sub = Membership.objects.select_for_update().get(id=sub.id)
    ids = [i for i in (sub.ignored or []) if i != other.id]
    if ignore:
        ids.append(other.id)
    if ids != list(sub.ignored or []):
        sub.ignored = ids
        sub.save(update_fields=["ignored", "updated_at"])
        notify_subscription(sub)
    return sub
