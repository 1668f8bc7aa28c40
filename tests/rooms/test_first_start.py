"""A fresh server's ``rocket.cat`` and default ``#general`` (``manage.py first_start``, run by the run
command), default rooms joined at registration (REST, web sign-up, createsuperuser), and
``channels.setDefault`` with Rocket.Chat's answers."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from django.core.management import call_command

from tests.rooms.room_helpers import api_error

pytestmark = pytest.mark.django_db(transaction=True)


def _joined(username: str, room_name: str) -> bool:
    from rooms.models import Membership

    return Membership.objects.filter(user__username=username, room__name=room_name, state="joined").exists()


def test_first_start_and_default_rooms(live_url: str, make_user: Any, rc_client: Any, monkeypatch: Any) -> None:
    from accounts.models import User
    from rooms.models import Room

    make_user("early")
    call_command("first_start")
    bot = User.objects.get(username="rocket.cat")
    assert bot.type == "bot" and not bot.has_usable_password() and "bot" in bot.role_names()
    general = Room.objects.get(name="general", type="c")
    assert general.default and general.creator == bot
    assert _joined("early", "general") and _joined("rocket.cat", "general")
    # A second start changes nothing, even after an admin undid the default.
    general.default = False
    general.save()
    call_command("first_start")
    assert not Room.objects.get(id=general.id).default and Room.objects.filter(name="general").count() == 1
    general.default = True
    general.save()
    # New users join the default rooms however they are created.
    make_user("later")
    r = requests.post(f"{live_url}/api/v1/users.register", json={"username": "selfmade", "email": "s@example.test",
                                                                 "pass": "password123", "name": "Self Made"})
    assert r.status_code == 200, r.text
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "password123")
    call_command("createsuperuser", "--noinput", username="boss", email="boss@example.test")
    assert all(_joined(u, "general") for u in ("later", "selfmade", "boss"))
    assert "general" in [c["name"] for c in rc_client("selfmade").call_api_get("channels.list.joined")["channels"]]


def test_set_default_as_rocket_chat_answers(live_url: str, make_user: Any, rc_client: Any, admin_user: Any) -> None:
    make_user("owner1")
    owner = rc_client("owner1")
    rid = owner.channels_create("townhall")["channel"]["_id"]
    status, body = api_error(owner.call_api_post, "channels.setDefault", roomId=rid, default=True)
    assert status == 400 and body["errorType"] == "error-not-allowed"  # room administration only
    admin = rc_client(admin_user.username)
    answer = admin.call_api_post("channels.setDefault", roomId=rid, default=True)
    assert answer["success"] and answer["channel"]["default"] is True
    status, body = api_error(admin.call_api_post, "channels.setDefault", roomId=rid, default="true")
    assert status == 400 and body["errorType"] == "error-channels-setdefault-missing-default-param"
    status, body = api_error(admin.call_api_post, "channels.setDefault", roomId=rid)
    assert status == 400 and body["errorType"] == "error-channels-setdefault-is-same"
    make_user("newcomer")
    assert _joined("newcomer", "townhall")
