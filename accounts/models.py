"""Users, roles, permissions and API tokens.

Global roles (``admin``, ``user``, ``bot``, ...) are rows of :class:`Role` with scope ``Users`` and are
linked to users; room roles (``owner``, ``moderator``) have scope ``Subscriptions`` and are held on the
room membership. A :class:`Permission` lists the roles that hold it, as Rocket.Chat does.
"""

from __future__ import annotations

import hashlib
from typing import Any

from django.contrib.auth.models import AbstractUser, UserManager
from django.db import models, transaction

from accounts.user_events import user_created
from chat.ids import random_id


class ConcordUserManager(UserManager["User"]):
    """Django's manager; users it creates (``createsuperuser``) are announced like the actions' ones."""

    def create_user(self, username: str, email: str | None = None, password: str | None = None,
                    **extra_fields: Any) -> User:
        with transaction.atomic():
            user = super().create_user(username, email, password, **extra_fields)
            user_created(user)
        return user

    def create_superuser(self, username: str, email: str | None = None, password: str | None = None,
                         **extra_fields: Any) -> User:
        with transaction.atomic():
            user = super().create_superuser(username, email, password, **extra_fields)
            user_created(user)
        return user


class User(AbstractUser):
    """A person or bot with an account on this server.

    Remote (federated) users are also rows here, later, with ``is_remote`` set; their username is their
    Matrix ID.
    """

    STATUS_CHOICES = [("online", "online"), ("away", "away"), ("busy", "busy"), ("offline", "offline")]
    TYPE_CHOICES = [("user", "user"), ("bot", "bot")]

    id = models.CharField(primary_key=True, max_length=32, default=random_id, editable=False)
    username = models.CharField(max_length=255, unique=True)
    name = models.CharField("display name", max_length=255, blank=True)
    avatar = models.ImageField(upload_to="avatars/", blank=True)
    avatar_etag = models.CharField(max_length=32, blank=True)
    status = models.CharField(max_length=16, choices=STATUS_CHOICES, default="offline")
    status_text = models.CharField(max_length=255, blank=True)
    type = models.CharField(max_length=8, choices=TYPE_CHOICES, default="user")
    roles = models.ManyToManyField("Role", related_name="users", blank=True)
    utc_offset = models.IntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)
    is_remote = models.BooleanField(default=False)
    # Rocket.Chat's user preferences (``users.setPreferences``): only keys of
    # accounts.preferences.PREFERENCES, each of its type.
    preferences = models.JSONField(default=dict, blank=True)

    objects = ConcordUserManager()

    REQUIRED_FIELDS = ["email"]

    def __str__(self) -> str:
        return self.username

    @property
    def display_name(self) -> str:
        return self.name or self.username

    def _is_concord_admin(self) -> bool:
        """Holds the global ``admin`` role (then Django admin is theirs too, as for a superuser)."""
        cached = getattr(self, "_concord_admin", None)
        if cached is None:
            cached = self.is_active and self.is_staff and not self.is_remote and "admin" in self.role_names()
            self._concord_admin = cached
        return bool(cached)

    def has_perm(self, perm: str, obj: Any = None) -> bool:
        return self._is_concord_admin() or super().has_perm(perm, obj)

    def has_module_perms(self, app_label: str) -> bool:
        return self._is_concord_admin() or super().has_module_perms(app_label)

    def role_names(self) -> list[str]:
        names = [r.id for r in self.roles.all()]
        if self.is_superuser and "admin" not in names:
            names.append("admin")
        return names


class Role(models.Model):
    """A named role; ``scope`` is ``Users`` (global) or ``Subscriptions`` (per room)."""

    SCOPES = [("Users", "Users"), ("Subscriptions", "Subscriptions")]

    id = models.CharField(primary_key=True, max_length=64)
    scope = models.CharField(max_length=16, choices=SCOPES, default="Users")
    description = models.CharField(max_length=255, blank=True)
    protected = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    @property
    def name(self) -> str:
        return self.id

    def __str__(self) -> str:
        return self.id


class Permission(models.Model):
    """A capability (``create-c``, ``access-federation``...) and the roles that hold it."""

    id = models.CharField(primary_key=True, max_length=64)
    roles = models.ManyToManyField(Role, related_name="permissions", blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.id


class AuthToken(models.Model):
    """A login token for the REST API and the WebSocket. Only its SHA-256 is stored."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="auth_tokens")
    digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    name = models.CharField(max_length=64, blank=True)
    # A personal access token (``users.generatePersonalAccessToken``): named, listed by its last
    # characters, never ended by "log out other clients".
    personal = models.BooleanField(default=False)
    last_part = models.CharField(max_length=8, blank=True)
    bypass_two_factor = models.BooleanField(default=False)

    @staticmethod
    def hash(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()


class ServerSetting(models.Model):
    """A server setting an admin changed at run time (Rocket.Chat's ``settings/:_id``).

    Only settings :mod:`accounts.server_settings` defines are stored; a setting without a row has
    its default (from the environment). Read them through :func:`accounts.server_settings.value`,
    never from this table directly (the reader caches in Redis, shared by every process).
    """

    id = models.CharField(primary_key=True, max_length=100)
    value = models.JSONField()
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    def __str__(self) -> str:
        return self.id
