"""Rocket.Chat-shaped JSON of users, roles and permissions."""

from __future__ import annotations

from typing import Any

from accounts.models import Permission, Role, User
from rooms.serialization import iso


def avatar_url(user: User) -> str:
    suffix = f"?etag={user.avatar_etag}" if user.avatar_etag else ""
    return f"/avatar/{user.username}{suffix}"


def user_json(user: User, *, private: bool = False) -> dict[str, Any]:
    """A user as Rocket.Chat shows it; ``private`` adds email and settings (self or admin only)."""
    data: dict[str, Any] = {
        "_id": user.id,
        "username": user.username,
        "name": user.display_name,
        "status": user.status,
        "statusText": user.status_text,
        "active": user.is_active,
        "type": user.type,
        "roles": user.role_names(),
        "utcOffset": user.utc_offset,
        "avatarETag": user.avatar_etag or None,
        "avatarUrl": avatar_url(user),
        "createdAt": iso(user.date_joined),
        "_updatedAt": iso(user.updated_at),
        "lastLogin": iso(user.last_login),
        "federated": user.is_remote,
    }
    if private:
        data["emails"] = [{"address": user.email, "verified": False}] if user.email else []
        data["email"] = user.email
    return data


def role_json(role: Role) -> dict[str, Any]:
    return {"_id": role.id, "name": role.id, "scope": role.scope, "description": role.description,
            "protected": role.protected, "mandatory2fa": False, "_updatedAt": iso(role.updated_at)}


def permission_json(perm: Permission) -> dict[str, Any]:
    return {"_id": perm.id, "roles": sorted(r.id for r in perm.roles.all()), "_updatedAt": iso(perm.updated_at)}
