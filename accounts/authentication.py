"""REST API authentication: Rocket.Chat's ``X-Auth-Token`` + ``X-User-Id`` headers, or the web session."""

from __future__ import annotations

from typing import Any

from rest_framework import authentication, exceptions
from rest_framework.request import Request

from accounts.models import AuthToken, User


def user_for_token(user_id: str | None, token: str | None) -> User | None:
    """The active user owning ``token`` (and matching ``user_id`` when given), else None."""
    if not token:
        return None
    row = AuthToken.objects.select_related("user").filter(digest=AuthToken.hash(token)).first()
    if row is None or not row.user.is_active:
        return None
    if user_id and row.user_id != user_id:
        return None
    return row.user


class RocketChatTokenAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[User, str] | None:
        token = request.META.get("HTTP_X_AUTH_TOKEN")
        user_id = request.META.get("HTTP_X_USER_ID")
        if not token and not user_id:
            return None
        user = user_for_token(user_id, token)
        if user is None:
            raise exceptions.AuthenticationFailed("You must be logged in to do this.")
        return user, token or ""

    def authenticate_header(self, request: Request) -> str:
        return "X-Auth-Token"


class CsrfExemptSessionAuthentication(authentication.SessionAuthentication):
    """Session auth for the web client, which sends the CSRF token header on unsafe requests."""

    def authenticate(self, request: Request) -> Any:
        return super().authenticate(request)
