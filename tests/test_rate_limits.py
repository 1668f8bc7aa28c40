"""Rate limits (chat/rate_limits.py) over a live server: failed logins per account and per address
(REST and the web form), REST calls per user, messages per user and room, invitations per user;
and the counter itself (windows, parsing). The suite runs with the limits off; these tests turn
them on with small limits."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import requests
from django.test import override_settings

from chat import rate_limits

pytestmark = pytest.mark.django_db(transaction=True)


def _name(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:6]}"


def _login(live_url: str, user: str, password: str) -> requests.Response:
    return requests.post(f"{live_url}/api/v1/login", json={"user": user, "password": password}, timeout=10)


def test_counter_windows_and_parsing() -> None:
    key = _name("k")
    with override_settings(CONCORD_RATE_LIMITS=True, CONCORD_RATE_LIMIT_MESSAGES="2/10"):
        assert rate_limits.hit("messages", key, now=1000.0) is None
        assert rate_limits.hit("messages", key, now=1001.0) is None
        # The third in 1000-1010: wait for the window's end plus a third of the next (3 -> 1 weighted).
        assert rate_limits.hit("messages", key, now=1002.0) == pytest.approx(8.0 + 10 * (1 - 1 / 3))
        assert rate_limits.blocked_for("messages", key, now=1003.0) == pytest.approx(7.0 + 10 * (1 - 1 / 3))
        # A new fixed window does not reset a limit just reached: the previous one still counts.
        assert rate_limits.blocked_for("messages", key, now=1010.5) is not None
        assert rate_limits.used("messages", key, now=1015.0) == pytest.approx(1.5)
        assert rate_limits.blocked_for("messages", key, now=1017.0) is None
        assert rate_limits.hit("messages", key, now=1017.0) is None
        assert rate_limits.used("messages", key, now=1017.0) == pytest.approx(1 + 3 * 0.3)
    other = _name("k")
    with override_settings(CONCORD_RATE_LIMITS=True, CONCORD_RATE_LIMIT_MESSAGES="4/10"):
        # A burst at a boundary is not doubled: 4 at the end of one window still count early in
        # the next (1 + 4 * 0.8 = 4.2 > 4), and fit again once most of them have slid out.
        assert all(rate_limits.hit("messages", other, now=2009.0 + i / 10) is None for i in range(4))
        assert rate_limits.hit("messages", other, now=2012.0) is not None
        assert rate_limits.hit("messages", other, now=2019.0) is None  # 2 + 4 * 0.1 = 2.4
    with override_settings(CONCORD_RATE_LIMITS=False):
        assert all(rate_limits.hit("messages", key, now=1010.0) is None for _ in range(5))
    for bad in ("x", "0/10", "5/0", "5"):
        with pytest.raises(ValueError):
            rate_limits.Limit.parse("messages", bad)
    assert rate_limits.RateLimited(0.2).retry_after == 1


def test_failed_logins_are_limited_per_account_and_per_address(live_url: str, make_user: Any) -> None:
    alice, bob = _name("rla"), _name("rlb")
    make_user(alice)
    make_user(bob)
    with override_settings(CONCORD_RATE_LIMITS=True, CONCORD_RATE_LIMIT_LOGIN_ACCOUNT="3/300",
                           CONCORD_RATE_LIMIT_LOGIN_ADDRESS="5/300"):
        for _ in range(3):
            assert _login(live_url, alice, "wrong").status_code == 401
        r = _login(live_url, alice, "password123")  # even the right password waits now
        assert r.status_code == 429, r.text
        body = r.json()
        assert body["success"] is False and body["errorType"] == "error-too-many-requests"
        assert "You must wait" in body["error"] and 1 <= int(r.headers["Retry-After"]) <= 600  # two windows at most
        assert _login(live_url, bob, "password123").status_code == 200  # another account is not blocked
        # The address: two more failures (five in all) and every account waits.
        for _ in range(2):
            assert _login(live_url, bob, "wrong").status_code == 401
        assert _login(live_url, bob, "password123").status_code == 429
        # The web form says it in words.
        s = requests.Session()
        s.get(f"{live_url}/login", timeout=10)
        r = s.post(f"{live_url}/login", data={"username": bob, "password": "password123",
                                               "csrfmiddlewaretoken": s.cookies["csrftoken"]},
                   headers={"Referer": f"{live_url}/login"}, timeout=10)
        assert r.status_code == 429 and "Too many failed sign-ins" in r.text
    assert _login(live_url, alice, "password123").status_code == 200  # limits off: through again


def test_rest_calls_messages_and_invites_per_user(live_url: str, make_user: Any, rc_client: Any,
                                                  admin_user: Any) -> None:
    from tests.rooms.room_helpers import api_error

    carol, dave, erin, fay = _name("rlc"), _name("rld"), _name("rle"), _name("rlf")
    for name in (carol, dave, erin, fay):
        make_user(name)
    c = rc_client(carol)
    rid = c.channels_create(_name("flood"))["channel"]["_id"]
    other = c.channels_create(_name("calm"))["channel"]["_id"]
    with override_settings(CONCORD_RATE_LIMITS=True, CONCORD_RATE_LIMIT_MESSAGES="3/300"):
        for i in range(3):
            assert c.chat_post_message(f"m{i}", room_id=rid)["success"]
        status, body = api_error(c.chat_post_message, "one too many", room_id=rid)
        assert status == 429 and body["errorType"] == "error-too-many-requests"
        assert c.chat_post_message("elsewhere", room_id=other)["success"]  # per room
    with override_settings(CONCORD_RATE_LIMITS=True, CONCORD_RATE_LIMIT_INVITES="2/3600"):
        assert c.channels_invite(other, _user_id(c, dave))["success"]
        assert c.channels_invite(other, _user_id(c, erin))["success"]
        status, body = api_error(c.channels_invite, other, _user_id(c, fay))
        assert status == 429 and body["errorType"] == "error-too-many-requests"
    d = rc_client(dave)
    with override_settings(CONCORD_RATE_LIMITS=True, CONCORD_RATE_LIMIT_REST="4/300"):
        for _ in range(4):
            d.me()
        status, body = api_error(d.channels_info, room_id=other)
        assert status == 429 and "You must wait" in body["error"]
        admin = rc_client(admin_user.username)  # api-bypass-rate-limit
        for _ in range(6):
            assert admin.me()["success"]


def _user_id(client: Any, username: str) -> str:
    return str(client.users_info(username=username)["user"]["_id"])
