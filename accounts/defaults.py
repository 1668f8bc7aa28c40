"""Built-in roles and permissions, created on ``migrate`` when absent (never overwriting admin edits)."""

from __future__ import annotations

from typing import Any

ROLES: dict[str, tuple[str, str]] = {
    "admin": ("Users", "Administrator"),
    "user": ("Users", "Normal user"),
    "bot": ("Users", "Bot"),
    "guest": ("Users", "Guest"),
    "app": ("Users", "App"),
    "anonymous": ("Users", "Anonymous"),
    "owner": ("Subscriptions", "Room owner"),
    "moderator": ("Subscriptions", "Room moderator"),
    "leader": ("Subscriptions", "Room leader"),
}

PERMISSIONS: dict[str, list[str]] = {
    "create-c": ["admin", "user", "bot"],
    "create-p": ["admin", "user", "bot"],
    "create-d": ["admin", "user", "bot"],
    "start-discussion": ["admin", "user", "owner", "moderator"],
    "start-discussion-other-user": ["admin", "user", "owner"],
    "create-team": ["admin", "user"],
    "delete-team": ["admin", "owner"],
    "edit-team": ["admin", "owner"],
    "add-team-member": ["admin", "owner", "moderator"],
    "edit-team-member": ["admin", "owner", "moderator"],
    "add-team-channel": ["admin", "owner", "moderator"],
    "edit-team-channel": ["admin", "owner", "moderator"],
    "remove-team-channel": ["admin", "owner", "moderator"],
    "view-all-team-channels": ["admin", "owner"],
    "view-all-teams": ["admin"],
    "view-c-room": ["admin", "user", "bot"],
    "view-joined-room": ["admin", "user", "bot", "guest"],
    "view-other-user-channels": ["admin"],
    "add-user-to-joined-room": ["admin", "owner", "moderator"],
    "add-user-to-any-c-room": ["admin"],
    "add-user-to-any-p-room": ["admin"],
    "remove-user": ["admin", "owner", "moderator"],
    "ban-user": ["admin", "owner", "moderator"],
    "mute-user": ["admin", "owner", "moderator"],
    "set-owner": ["admin", "owner"],
    "set-moderator": ["admin", "owner"],
    "set-leader": ["admin", "owner"],
    "edit-room": ["admin", "owner", "moderator"],
    "archive-room": ["admin", "owner"],
    "unarchive-room": ["admin", "owner"],
    "delete-c": ["admin", "owner"],
    "delete-p": ["admin", "owner"],
    "delete-d": ["admin"],
    "edit-message": ["admin", "owner", "moderator"],
    "delete-message": ["admin", "owner", "moderator"],
    "delete-own-message": ["admin", "user", "bot", "owner", "moderator"],
    "pin-message": ["admin", "owner", "moderator"],
    "post-readonly": ["admin", "owner", "moderator"],
    "mention-all": ["admin", "owner", "moderator", "user", "bot"],
    "mention-here": ["admin", "owner", "moderator", "user", "bot"],
    "view-room-administration": ["admin"],
    "view-user-administration": ["admin"],
    "view-full-other-user-info": ["admin"],
    "view-d-room": ["admin", "user", "bot"],
    "create-user": ["admin"],
    "edit-other-user-info": ["admin"],
    "edit-other-user-avatar": ["admin"],
    "delete-user": ["admin"],
    "access-permissions": ["admin"],
    "assign-roles": ["admin"],
    "view-privileged-setting": ["admin"],
    "edit-privileged-setting": ["admin"],
    "bypass-time-limit-edit-and-delete": ["bot", "app"],
    "force-delete-message": ["admin", "owner"],
    "access-federation": ["admin", "user"],
    "manage-federation": ["admin"],
    "join-without-join-code": ["admin", "bot"],
    "message-impersonate": ["bot", "app"],
    "add-all-to-room": ["admin"],
    "api-bypass-rate-limit": ["admin", "bot"],
    "create-personal-access-tokens": ["admin", "user", "bot"],
    "manage-incoming-integrations": ["admin"],
    "manage-own-incoming-integrations": ["admin"],
    "manage-outgoing-integrations": ["admin"],
    "manage-own-outgoing-integrations": ["admin"],
}


def ensure_default_roles_and_permissions(sender: Any = None, **kwargs: Any) -> None:
    """Create missing built-in roles and permissions. Existing rows are left as admins set them."""
    from accounts.models import Permission, Role

    for role_id, (scope, description) in ROLES.items():
        Role.objects.get_or_create(id=role_id, defaults={"scope": scope, "description": description,
                                                         "protected": True})
    for perm_id, role_ids in PERMISSIONS.items():
        perm, created = Permission.objects.get_or_create(id=perm_id)
        if created:
            perm.roles.set(role_ids)
