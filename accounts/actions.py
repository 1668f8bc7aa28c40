"""The only code that changes users, tokens, roles and permissions."""

from __future__ import annotations

import hashlib
import re
import secrets
from typing import TYPE_CHECKING

from django.contrib.auth import password_validation
from django.contrib.auth.hashers import UNUSABLE_PASSWORD_PREFIX
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.core.validators import validate_email
from django.db import transaction

from accounts import server_settings
from accounts.models import AuthToken, Permission, Role, ServerSetting, User
from accounts.user_events import user_created
from chat.api_errors import ApiError, NotAllowed
from federation import hooks as federation_hooks

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

USERNAME_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
AVATAR_MAX_BYTES = 5 * 1024 * 1024


def check_username(username: object) -> str:
    if not isinstance(username, str) or not USERNAME_RE.match(username):
        raise ApiError("Username must be 1-64 letters, digits, '.', '_' or '-'", "error-invalid-username")
    if username.lower() in ("all", "here"):
        raise ApiError(f"The username {username} is reserved", "error-invalid-username")
    if User.objects.filter(username__iexact=username).exists():
        raise ApiError(f"{username} is already in use :(", "error-field-unavailable", field="username")
    return username


def check_email(email: object) -> str:
    if not isinstance(email, str):
        raise ApiError("Invalid email", "error-invalid-email")
    try:
        validate_email(email)
    except ValidationError as exc:
        raise ApiError(f"Invalid email {email}", "error-invalid-email") from exc
    if User.objects.filter(email__iexact=email).exists():
        raise ApiError(f"{email} is already in use :(", "error-field-unavailable", field="email")
    return email


@transaction.atomic
def do_create_user(username: object, email: object, password: object, name: object = "", *,
                   roles: Iterable[str] = ("user",), active: bool = True, is_bot: bool = False) -> User:
    """Create a local user with hashed password and the given global roles; then the listeners of
    :mod:`accounts.user_events` run in the same transaction (a failing one undoes it all)."""
    username = check_username(username)
    email = check_email(email)
    if not isinstance(password, str) or not password:
        raise ApiError("The password is required", "error-invalid-password")
    try:
        password_validation.validate_password(password)
    except ValidationError as exc:
        raise ApiError(" ".join(exc.messages), "error-invalid-password") from exc
    if not isinstance(name, str) or len(name) > 255:
        raise ApiError("Invalid name", "error-invalid-name")
    role_ids = list(roles)
    if is_bot and "bot" not in role_ids:
        role_ids.append("bot")
    found = set(Role.objects.filter(id__in=role_ids, scope="Users").values_list("id", flat=True))
    missing = set(role_ids) - found
    if missing:
        raise ApiError(f"Unknown roles: {', '.join(sorted(missing))}", "error-invalid-role")
    user = User(username=username, email=email, name=name or username, is_active=active,
                type="bot" if is_bot else "user", is_superuser=False)
    user.set_password(password)
    user.save()
    user.roles.set(found)
    if "admin" in found:
        User.objects.filter(id=user.id).update(is_staff=True)
    user_created(user)
    return user


def do_get_or_create_puppet(mxid: str, name: str) -> User:
    """The local stand-in of a remote Matrix user (``is_remote``, no password, role ``user``),
    created on first use; a concurrent creation of the same puppet is tolerated (the winner's row)."""
    if not mxid.startswith("@") or ":" not in mxid:
        raise ValueError(f"{mxid!r} is not a Matrix user ID")
    user = User.objects.filter(username=mxid).first()
    if user is not None:
        if not user.is_remote:
            raise ValueError(f"{mxid!r} names a local user")
        return user
    try:
        with transaction.atomic():
            user = User(username=mxid, name=name[:255], is_remote=True, email="")
            user.set_unusable_password()
            user.save()
            user.roles.set(Role.objects.filter(id="user"))
    except Exception:  # a concurrent creation won: use it
        user = User.objects.get(username=mxid)
    return user


def do_get_or_create_puppets(profiles: Mapping[str, str | None]) -> dict[str, User]:
    """Many puppets at once: ``{mxid: display name or None}`` -> ``{mxid: puppet}``.

    Guarantees, for each ID as :func:`do_get_or_create_puppet` would: an existing puppet is
    returned (its display name set to the given one when a name is given and differs); a missing
    one is created (``is_remote``, no usable password, role ``user``, named by the given name or
    its localpart). IDs that are not Matrix user IDs or name a local user are left out of the
    answer. Rows are read and written in a few queries per thousand IDs (one bulk insert of users
    and one of their role links), in one transaction; a concurrent creation of the same puppet
    is tolerated (``ignore_conflicts``, then the winner's row is read).
    """
    wanted = {m: n for m, n in profiles.items() if m.startswith("@") and ":" in m}
    out: dict[str, User] = {}
    taken: set[str] = set()  # local users' usernames (never puppets)
    ids = list(wanted)
    with transaction.atomic():
        for i in range(0, len(ids), 2000):
            for user in User.objects.filter(username__in=ids[i:i + 2000]):
                if user.is_remote:
                    out[user.username] = user
                else:
                    taken.add(user.username)
        renamed: list[User] = []
        for mxid, user in out.items():
            name = wanted[mxid]
            if name and name[:255] != user.name:
                user.name = name[:255]
                renamed.append(user)
        User.objects.bulk_update(renamed, ["name"], batch_size=1000)
        # What set_unusable_password() stores (the prefix, then random characters), from one call
        # to the OS's random source instead of forty.
        new = [User(username=m, name=(wanted[m] or m[1:].split(":", 1)[0])[:255], is_remote=True, email="",
                    password=UNUSABLE_PASSWORD_PREFIX + secrets.token_urlsafe(30))
               for m in ids if m not in out and m not in taken]
        User.objects.bulk_create(new, batch_size=1000, ignore_conflicts=True)
        if new:
            stored = dict(User.objects.filter(username__in=[u.username for u in new]).values_list("username", "id"))
            mine = [u for u in new if stored.get(u.username) == u.id]
            lost = [u.username for u in new if stored.get(u.username) != u.id]  # created concurrently
            out.update((u.username, u) for u in mine)
            out.update((u.username, u) for u in User.objects.filter(username__in=lost, is_remote=True))
            links = User.roles.through
            role = Role.objects.filter(id="user").first()
            if role is not None:
                links.objects.bulk_create([links(user_id=u.id, role_id=role.id) for u in mine], batch_size=2000,
                                          ignore_conflicts=True)
    return out


def do_set_remote_profile(user: User, *, name: str | None = None, status: str | None = None) -> None:
    """Update what a remote server says about its user (display name, presence status); puppets only."""
    if not user.is_remote:
        return
    fields: dict[str, str] = {}
    if name is not None and name[:255] != user.name:
        fields["name"] = user.name = name[:255]
    if status is not None and status != user.status:
        fields["status"] = user.status = status
    if fields:
        User.objects.filter(id=user.id).update(**fields)


def do_login(user: User, name: str = "") -> str:
    """Issue a new API token for ``user``; only its hash is stored."""
    token = secrets.token_urlsafe(32)
    AuthToken.objects.create(user=user, digest=AuthToken.hash(token), name=name[:64])
    return token


def do_logout(token: str) -> None:
    AuthToken.objects.filter(digest=AuthToken.hash(token)).delete()


def do_set_avatar(user: User, uploaded: UploadedFile) -> None:
    """Store a new avatar after checking it is a real image (re-encoded to PNG, at most 512 px)."""
    import io

    from django.core.files.base import ContentFile
    from PIL import Image, UnidentifiedImageError

    if uploaded.size is None or uploaded.size > AVATAR_MAX_BYTES:
        raise ApiError("The avatar must be an image of at most 5 MB", "error-invalid-avatar")
    try:
        with Image.open(uploaded) as original:
            original.load()
            img = original.convert("RGBA")
            img.thumbnail((512, 512))
            out = io.BytesIO()
            img.save(out, format="PNG")
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise ApiError("The avatar is not an image we can read", "error-invalid-avatar") from exc
    data = out.getvalue()
    if user.avatar:
        user.avatar.delete(save=False)
    user.avatar.save(f"{user.id}.png", ContentFile(data), save=False)
    user.avatar_etag = hashlib.sha256(data).hexdigest()[:16]
    user.save(update_fields=["avatar", "avatar_etag", "updated_at"])


def do_reset_avatar(user: User) -> None:
    if user.avatar:
        user.avatar.delete(save=False)
    user.avatar = ""
    user.avatar_etag = ""
    user.save(update_fields=["avatar", "avatar_etag", "updated_at"])


@transaction.atomic
def do_update_profile(user: User, *, name: str | None = None, email: str | None = None,
                      status: str | None = None, status_text: str | None = None) -> User:
    if name is not None:
        if not isinstance(name, str) or len(name) > 255:
            raise ApiError("Invalid name", "error-invalid-name")
        user.name = name
    if email is not None and email != user.email:
        user.email = check_email(email)
    before = (user.status, user.status_text)
    if status is not None:
        if status not in dict(User.STATUS_CHOICES):
            raise ApiError("Invalid status", "error-invalid-status")
        user.status = status
    if status_text is not None:
        user.status_text = str(status_text)[:255]
    user.save()
    if (user.status, user.status_text) != before and not user.is_remote:
        federation_hooks.presence_changed(user)
    return user


@transaction.atomic
def do_set_permission_roles(updates: list[dict[str, object]]) -> list[Permission]:
    """Set the roles of each ``{"_id": permission, "roles": [...]}``; all-or-nothing."""
    changed: list[Permission] = []
    for item in updates:
        valid = isinstance(item, dict) and isinstance(item.get("_id"), str) and isinstance(item.get("roles"), list)
        if not valid:
            raise ApiError("Invalid permissions: each item needs _id and roles", "error-invalid-permissions")
        perm = Permission.objects.filter(id=item["_id"]).first()
        if perm is None:
            raise ApiError(f"Unknown permission {item['_id']}", "error-invalid-permissions")
        role_ids = item["roles"]
        assert isinstance(role_ids, list)
        if not all(isinstance(role, str) for role in role_ids):
            raise ApiError("Invalid permissions: roles must be a list of role names", "error-invalid-permissions")
        found = set(Role.objects.filter(id__in=role_ids).values_list("id", flat=True))
        if found != set(role_ids):
            raise ApiError("Unknown roles: " + ", ".join(sorted(set(map(str, role_ids)) - found)),
                           "error-invalid-role")
        perm.roles.set(found)
        perm.save()
        changed.append(perm)
    return changed


@transaction.atomic
def do_add_global_role(user: User, role: Role) -> None:
    user.roles.add(role)
    if role.id == "admin":
        User.objects.filter(id=user.id).update(is_staff=True)


@transaction.atomic
def do_remove_global_role(user: User, role: Role) -> None:
    if role.id == "admin":
        admins = User.objects.filter(roles__id="admin", is_active=True).distinct().count()
        if admins <= 1 and user.roles.filter(id="admin").exists():
            raise ApiError("The last admin cannot be removed", "error-action-not-allowed")
        User.objects.filter(id=user.id).update(is_staff=False)
    user.roles.remove(role)


@transaction.atomic
def do_set_preferences(user: User, data: dict[str, object]) -> User:
    """Merge validated preferences (:func:`accounts.preferences.validated`) into the user's."""
    from accounts.preferences import validated  # small module, read only here and in the API

    user = User.objects.select_for_update().get(id=user.id)
    user.preferences = {**(user.preferences or {}), **validated(data)}
    user.save(update_fields=["preferences", "updated_at"])
    return user


PERSONAL_TOKEN_NAME_MAX = 64


def _check_token_name(name: object) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ApiError("The 'tokenName' param is required", "error-invalid-params")
    if len(name) > PERSONAL_TOKEN_NAME_MAX:
        raise ApiError(f"A token name is at most {PERSONAL_TOKEN_NAME_MAX} characters", "error-invalid-params")
    return name.strip()


@transaction.atomic
def do_generate_personal_token(user: User, name: object, *, bypass_two_factor: bool = False) -> str:
    """A named personal access token (returned once; only its hash is kept)."""
    name = _check_token_name(name)
    if AuthToken.objects.filter(user=user, personal=True, name=name).exists():
        raise ApiError("A token with this name already exists", "error-token-already-exists")
    token = secrets.token_urlsafe(32)
    AuthToken.objects.create(user=user, digest=AuthToken.hash(token), name=name, personal=True,
                             last_part=token[-6:], bypass_two_factor=bool(bypass_two_factor))
    return token


@transaction.atomic
def do_regenerate_personal_token(user: User, name: object) -> str:
    """Replace a personal access token with a new secret (same name and two-factor choice)."""
    name = _check_token_name(name)
    old = AuthToken.objects.select_for_update().filter(user=user, personal=True, name=name).first()
    if old is None:
        raise ApiError("Invalid token", "error-token-does-not-exists")
    bypass = old.bypass_two_factor
    old.delete()
    return do_generate_personal_token(user, name, bypass_two_factor=bypass)


def do_remove_personal_token(user: User, name: object) -> None:
    name = _check_token_name(name)
    deleted, _ = AuthToken.objects.filter(user=user, personal=True, name=name).delete()
    if not deleted:
        raise ApiError("Invalid token", "error-token-does-not-exists")


def do_logout_other_clients(user: User, keep_token: str) -> int:
    """End every login of ``user`` but the one of ``keep_token`` (personal access tokens stay).
    Returns how many were ended."""
    deleted, _ = AuthToken.objects.filter(user=user, personal=False).exclude(
        digest=AuthToken.hash(keep_token)).delete()
    return deleted


def do_delete_puppet(user: User) -> None:
    """Remove a remote user's stand-in (callers check that nothing refers to it any more)."""
    if not user.is_remote:
        raise ValueError(f"{user.username} is a local user")
    user.delete()


def do_delete_account(user: User) -> None:
    """Remove a local account and what only it owns (tokens, stars, reactions); callers first take
    it out of its rooms (:func:`rooms.actions.memberships.do_delete_user`)."""
    if user.is_remote:
        raise ValueError(f"{user.username} is a remote user")
    user.delete()


@transaction.atomic
def do_update_own_info(user: User, data: dict[str, object]) -> User:
    """``users.updateOwnBasicInfo`` with Rocket.Chat's rules: only while the server setting
    ``Accounts_AllowUserProfileChange`` is on (else ``error-not-allowed``); ``currentPassword`` is required to
    change the e-mail or the password (``newPassword``, checked by the password validators); a
    name cannot be blank; a new ``username`` must be valid and free, and cannot change while the
    user takes part in federated rooms (it is their Matrix ID there)."""
    if not server_settings.flag("Accounts_AllowUserProfileChange"):
        raise NotAllowed("Not allowed", "error-not-allowed")
    user = User.objects.select_for_update().get(id=user.id)
    current = data.get("currentPassword")
    email, new_password = data.get("email"), data.get("newPassword")
    if (email is not None and email != user.email) or new_password:
        if not isinstance(current, str) or not current or not user.check_password(current):
            raise ApiError("Invalid password", "error-invalid-password")
    name = data.get("name")
    if name is not None and (not isinstance(name, str) or not name.strip()):
        raise ApiError("The name cannot be empty", "error-invalid-name")
    username = data.get("username")
    if username is not None and username != user.username:
        username = check_username(username)
        if User.objects.filter(username__iexact=username).exclude(id=user.id).exists():
            raise ApiError(f"{username} is already in use :(", "error-field-unavailable", field="username")
        if user.memberships.filter(state="joined", room__matrix_room__isnull=False).exists():
            raise ApiError("Your username is your Matrix ID in federated rooms: it cannot change",
                           "error-not-allowed")
        user.username = username
    if new_password:
        if not isinstance(new_password, str):
            raise ApiError("The password must be a string", "error-invalid-password")
        try:
            password_validation.validate_password(new_password, user)
        except ValidationError as exc:
            raise ApiError(" ".join(exc.messages), "error-invalid-password") from exc
        user.set_password(new_password)
    user.save()
    status_text = data.get("statusText")
    return do_update_profile(user, name=name.strip() if isinstance(name, str) else None,
                             email=email if isinstance(email, str) else None,
                             status_text=status_text if isinstance(status_text, str) else None)


@transaction.atomic
def do_set_server_setting(setting_id: object, value: object, *, by: User | None = None) -> object:
    """Store an admin's value of a run-time server setting (:mod:`accounts.server_settings`).

    Guarantees: only a setting Concord honours (else ``error-invalid-setting``) with a value of its
    type (else ``error-invalid-setting-value``) is stored; after commit the shared cache holds the
    new table, so every process enforces the new value from its next read. Returns the value stored.
    """
    setting = server_settings.definition(setting_id)
    value = server_settings.check_value(setting, value)
    ServerSetting.objects.update_or_create(id=setting.id, defaults={"value": value, "updated_by": by})
    transaction.on_commit(server_settings.publish_stored)
    return value


@transaction.atomic
def do_reset_server_setting(setting_id: object) -> None:
    """Forget a stored setting: it has its default (from the environment) again, everywhere after commit."""
    setting = server_settings.definition(setting_id)
    ServerSetting.objects.filter(id=setting.id).delete()
    transaction.on_commit(server_settings.publish_stored)
