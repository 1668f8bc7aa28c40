"""Permission checks by role: global roles of the user plus room roles of their membership."""

from __future__ import annotations

from typing import TYPE_CHECKING

from accounts.models import Permission

if TYPE_CHECKING:
    from accounts.models import User
    from rooms.models import Room


def user_role_names(user: User, room: Room | None = None) -> set[str]:
    """The user's global roles, plus their room roles when ``room`` is given."""
    names = set(user.role_names())
    if room is not None:
        from rooms.models import Membership

        roles = Membership.objects.filter(room=room, user=user).values_list("roles", flat=True).first()
        names.update(roles or [])
    return names


def has_permission(user: User, permission: str, room: Room | None = None) -> bool:
    """Whether ``user`` holds ``permission`` globally or through a room role in ``room``."""
    if not user.is_authenticated or not user.is_active:
        return False
    if user.is_superuser:
        return True
    roles = user_role_names(user, room)
    return Permission.objects.filter(id=permission, roles__id__in=roles).exists()
