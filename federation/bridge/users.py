"""Users on both sides: our users' Matrix IDs, and puppets (local stand-ins for remote Matrix users).

A **puppet** is a :class:`~accounts.models.User` with ``is_remote`` set, whose ``username`` is the
Matrix ID and whose display name and avatar come from the user's profile (fetched over
federation, cached for :data:`PROFILE_TTL`, refreshed whenever a member event carries them; the
avatar image itself is fetched as federated media, see :mod:`federation.bridge.remote_media`). Puppets are created and
updated through ``accounts.actions`` only.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.cache import cache

from accounts.actions import do_delete_puppet, do_get_or_create_puppet, do_set_remote_profile
from accounts.models import User
from accounts.permissions import has_permission
from federation import config
from federation.bridge.remote_media import queue_avatar
from federation.protocol.errors import InvalidIdentifier
from federation.protocol.ids import UserId, server_name_of
from federation.transport.client import FederationClient, FederationError
from federation.transport.errors import MatrixError
from rooms.models import Membership, Message

log = logging.getLogger(__name__)

PROFILE_TTL = 3600


def looks_like_matrix_id(value: str) -> bool:
    """``@local:server`` (what the REST API treats as a Matrix user rather than a username)."""
    return value.startswith("@") and ":" in value[1:]


def mxid_of(user: User) -> str:
    """The Matrix ID of a chat user (a puppet's username is its Matrix ID)."""
    return user.username if user.is_remote else f"@{user.username}:{config.server_name()}"


def is_ours(mxid: str) -> bool:
    """Whether a Matrix ID (or any ``x:server`` identifier) belongs to our server."""
    try:
        return server_name_of(mxid) == config.server_name()
    except InvalidIdentifier:
        return False


def local_user_for(mxid: str) -> User | None:
    """The local user with that Matrix ID, if it is ours."""
    try:
        uid = UserId.parse(mxid)
    except InvalidIdentifier:
        return None
    if str(uid.server_name) != config.server_name():
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
    if str(uid.server_name) == config.server_name():
        user = local_user_for(mxid)
        if user is None:
            raise ValueError(f"no user {mxid} on this server")
        return user
    return puppet_for(str(uid), fetch_profile=fetch_profile)


def puppet_for(mxid: str, *, fetch_profile: bool = True, displayname: str | None = None) -> User:
    """The puppet of a remote Matrix user, created on first use; its profile fetched and cached."""
    localpart = mxid[1:].split(":", 1)[0]
    user = do_get_or_create_puppet(mxid, displayname or localpart)
    if displayname:
        do_set_remote_profile(user, name=displayname)
        cache.set(f"fed:profile:{mxid}", 1, PROFILE_TTL)
    elif fetch_profile:
        refresh_profile(user)
    return user


def remember_profiles(mxids: list[str]) -> None:
    """The profiles of these puppets were just taken from their member events: do not fetch them
    for :data:`PROFILE_TTL` (what :func:`puppet_for` with a display name records, for many at once)."""
    if mxids:
        cache.set_many({f"fed:profile:{m}": 1 for m in mxids}, PROFILE_TTL)


def refresh_profile(user: User, *, force: bool = False) -> None:
    """Fetch a puppet's display name over federation, at most once per TTL (failures are logged)."""
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
    if isinstance(name, str) and name:
        do_set_remote_profile(user, name=name)
    queue_avatar(user, profile.get("avatar_url"))


def may_federate(user: User) -> bool:
    """``access-federation``: may this local user create, join or be invited to federated rooms."""
    return user.is_remote or has_permission(user, "access-federation")


def user_avatar_mxc(user: User) -> str | None:
    """The ``mxc://`` URI of a local user's avatar (None without one)."""
    if not user.avatar:
        return None
    return f"mxc://{config.server_name()}/avatar_{user.id}_{user.avatar_etag or 'x'}"


def profile_of(user_id: str, field: str | None) -> dict[str, Any]:
    """``query/profile`` of one of our users: display name and avatar (or the one ``field`` asked).

    Raises:
        MatrixError: 400 for a bad field or ID, 403 for another server's user, 404 for nobody.
    """
    if field not in (None, "displayname", "avatar_url"):
        raise MatrixError(400, "M_INVALID_PARAM", "field must be displayname or avatar_url")
    try:
        uid = UserId.parse(user_id)
    except InvalidIdentifier:
        raise MatrixError(400, "M_INVALID_PARAM", "invalid user_id")
    if str(uid.server_name) != config.server_name():
        raise MatrixError(403, "M_FORBIDDEN", "user is not on this server")
    user = User.objects.filter(username=uid.localpart, is_remote=False, is_active=True).first()
    if user is None:
        raise MatrixError(404, "M_NOT_FOUND", "no such user")
    out: dict[str, Any] = {}
    if field in (None, "displayname"):
        out["displayname"] = user.display_name
    avatar = user_avatar_mxc(user)
    if field in (None, "avatar_url") and avatar:
        out["avatar_url"] = avatar
    return out


def forget_unused_puppet(user: User) -> None:
    """Remove a puppet nothing refers to (no membership of any state, no message): what a
    mistyped Matrix ID in an invite left behind."""
    if not user.is_remote:
        return
    if Membership.objects.filter(user=user).exists() or Message.objects.filter(user=user).exists():
        return
    do_delete_puppet(user)
