"""REST API authentication: Rocket.Chat's ``X-Auth-Token`` + ``X-User-Id`` headers, or the web session.

Every token-authenticated request looks its token up in the database (one indexed query, written
as fixed SQL: see :class:`chat.api.HotSelect`), so a logout or a deactivation takes effect on the
very next request in every process. Caching users by token in-process would save that query but
would accept revoked tokens for the cache's lifetime in the other worker processes, and shared
cached ``User`` objects could be saved back stale; neither is worth about 0.15 ms.
"""

from __future__ import annotations

from typing import Any

from rest_framework import authentication, exceptions
from rest_framework.request import Request

from accounts.models import AuthToken, User
from chat.hot_select import HotSelect

_USER_BY_TOKEN = HotSelect(
    [(User, "u")],
    "SELECT {columns} FROM accounts_user u JOIN accounts_authtoken t ON t.user_id = u.id WHERE t.digest = %s",
)


def user_for_token(user_id: str | None, token: str | None) -> User | None:
    """The active user owning ``token`` (and matching ``user_id`` when given), else None."""
    if not token:
        return None
    found = _USER_BY_TOKEN.first([AuthToken.hash(token)])
    if found is None:
        return None
    user = found[0]
    assert isinstance(user, User)
    if not user.is_active or (user_id and user.id != user_id):
        return None
    return user


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
