"""Shared fixtures: a real ASGI server (uvicorn in a thread) on the test database, users, API clients.

Everything runs against the real database (SQLite or PostgreSQL, by ``DATABASE_URL``) and the real
Redis (``REDIS_URL``); nothing is mocked.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.servers import UvicornThread

# Per-run isolation (data directory, Redis prefix, no DB pool) is set in chat/settings_test.py,
# which pytest-django imports before any conftest runs.


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Any) -> None:
    """Django's real hasher costs ~0.3 s per user; tests check behaviour, not hashing strength."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(scope="session")
def _asgi_server() -> Iterator[UvicornThread]:
    thread = UvicornThread()
    thread.start_and_wait()
    yield thread
    thread.stop()


@pytest.fixture
def live_url(_asgi_server: UvicornThread, transactional_db: None) -> str:
    """Base URL of the running Concord (HTTP + WebSocket) on the test database."""
    return f"http://127.0.0.1:{_asgi_server.port}"


@pytest.fixture
def make_user(db: None) -> Callable[..., Any]:
    """Create a local user through the real action. Password defaults to ``password123``."""
    from accounts.actions import do_create_user

    counter = iter(range(1, 1_000_000))

    def make(username: str | None = None, *, roles: tuple[str, ...] = ("user",), password: str = "password123",
             name: str = "") -> Any:
        username = username or f"user{next(counter)}"
        return do_create_user(username, f"{username}@example.test", password, name or username.title(),
                              roles=roles)

    return make


@pytest.fixture
def admin_user(make_user: Callable[..., Any]) -> Any:
    return make_user("admin", roles=("admin", "user"))


@pytest.fixture
def rc_client(live_url: str) -> Callable[[str, str], Any]:
    """A logged-in, unmodified ``rocketchat_API`` client for the given username and password."""
    from rocketchat_API.rocketchat import RocketChat

    def make(username: str, password: str = "password123") -> Any:
        return RocketChat(username, password, server_url=live_url)

    return make
