"""``subscriptions.*``, ``rooms.get`` and ``rooms.info`` through the unmodified ``rocketchat-api`` client."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
import requests

from rooms.actions.memberships import do_kick
from rooms.actions.rooms import do_change_room_setting, do_create_room
from tests.rooms.room_helpers import api_error


@pytest.fixture
def pair(live_url: str, make_user: Callable[..., Any], rc_client: Callable[..., Any]) -> dict[str, Any]:
    alice, bob = make_user("alice"), make_user("bob")
    general = do_create_room(alice, "c", "general", members=[bob])
    secret = do_create_room(alice, "p", "secret", members=[bob])
    return {"alice": alice, "bob": bob, "general": general, "secret": secret,
            "rc_alice": rc_client("alice"), "rc_bob": rc_client("bob")}


def _sub(rc: Any, rid: str) -> dict[str, Any]:
    return rc.subscriptions_get_one(rid)["subscription"]


def test_unread_counters_read_and_unread(pair: dict[str, Any]) -> None:
    rid, rc_bob = pair["general"].id, pair["rc_bob"]
    first = pair["rc_alice"].chat_post_message("one", room_id=rid)["message"]
    pair["rc_alice"].chat_post_message("two @bob", room_id=rid)
    pair["rc_alice"].chat_post_message("three @all", room_id=rid)
    sub = _sub(rc_bob, rid)
    assert (sub["unread"], sub["userMentions"], sub["groupMentions"], sub["alert"]) == (3, 1, 1, True)
    assert sub["rid"] == rid and sub["name"] == "general" and sub["t"] == "c"

    assert rc_bob.subscriptions_read(rid)["success"]
    sub = _sub(rc_bob, rid)
    assert (sub["unread"], sub["userMentions"], sub["groupMentions"]) == (0, 0, 0)

    assert rc_bob.subscriptions_unread(rid)["success"]
    assert _sub(rc_bob, rid)["unread"] == 1
    # From a message: everything from it on (not bob's own) counts again.
    rc_bob.subscriptions_read(rid)
    r = requests.post(f"{rc_bob.server_url}/api/v1/subscriptions.unread", headers=rc_bob.headers,
                      json={"firstUnreadMessage": {"_id": first["_id"]}}, timeout=10)
    assert r.json()["success"] is True
    assert _sub(rc_bob, rid)["unread"] == 3
    # roomId is accepted by subscriptions.read as well.
    r = requests.post(f"{rc_bob.server_url}/api/v1/subscriptions.read", headers=rc_bob.headers,
                      json={"roomId": rid}, timeout=10)
    assert r.json()["success"] is True and _sub(rc_bob, rid)["unread"] == 0


def test_subscriptions_get_and_updated_since(pair: dict[str, Any]) -> None:
    rc_bob = pair["rc_bob"]
    subs = rc_bob.subscriptions_get()
    assert subs["success"] and subs["remove"] == []
    assert {s["name"] for s in subs["update"]} == {"general", "secret"}

    time.sleep(0.01)
    since = datetime.now(UTC).isoformat()
    time.sleep(0.01)
    assert rc_bob.subscriptions_get(updatedSince=since)["update"] == []
    pair["rc_alice"].chat_post_message("news", room_id=pair["general"].id)
    changed = rc_bob.subscriptions_get(updatedSince=since)
    assert [(s["name"], s["unread"]) for s in changed["update"]] == [("general", 1)]
    do_kick(pair["secret"], pair["bob"], by=pair["alice"])
    changed = rc_bob.subscriptions_get(updatedSince=since)
    assert [r["rid"] for r in changed["remove"]] == [pair["secret"].id]
    assert "secret" not in [s["name"] for s in changed["update"]]
    api_error(rc_bob.subscriptions_get, updatedSince="last tuesday")


def test_subscriptions_get_one_unknown_and_errors(pair: dict[str, Any], make_user: Callable[..., Any],
                                                  rc_client: Callable[..., Any]) -> None:
    make_user("carol")
    rc_carol = rc_client("carol")
    assert rc_carol.subscriptions_get_one(pair["general"].id)["subscription"] is None
    api_error(rc_carol.subscriptions_read, pair["secret"].id)
    api_error(rc_carol.subscriptions_read, "no-such-room")
    api_error(rc_carol.subscriptions_unread, pair["secret"].id)
    api_error(rc_carol.subscriptions_unread, "", firstUnreadMessage={"_id": "nope"})
    api_error(rc_carol.subscriptions_unread, "", firstUnreadMessage="nope")
    r = requests.get(f"{rc_carol.server_url}/api/v1/subscriptions.getOne", headers=rc_carol.headers, timeout=10)
    assert r.status_code == 400 and r.json()["success"] is False


def test_rooms_get_and_info(pair: dict[str, Any], make_user: Callable[..., Any],
                            rc_client: Callable[..., Any]) -> None:
    rc_bob = pair["rc_bob"]
    rooms = rc_bob.rooms_get()
    assert {r["name"] for r in rooms["update"]} == {"general", "secret"} and rooms["remove"] == []

    time.sleep(0.01)
    since = datetime.now(UTC).isoformat()
    time.sleep(0.01)
    assert rc_bob.rooms_get(updatedSince=since)["update"] == []
    do_change_room_setting(pair["general"], "topic", "new topic", by=pair["alice"])
    updated = rc_bob.rooms_get(updatedSince=since)["update"]
    assert [(r["name"], r["topic"]) for r in updated] == [("general", "new topic")]
    pair["rc_alice"].chat_post_message("hi", room_id=pair["secret"].id)
    assert {r["name"] for r in rc_bob.rooms_get(updatedSince=since)["update"]} == {"general", "secret"}

    info = rc_bob.rooms_info(room_id=pair["secret"].id)["room"]
    assert info["name"] == "secret" and info["t"] == "p" and info["usersCount"] == 2
    assert rc_bob.rooms_info(room_name="general")["room"]["_id"] == pair["general"].id

    make_user("carol")
    rc_carol = rc_client("carol")
    assert rc_carol.rooms_info(room_id=pair["general"].id)["room"]["name"] == "general"
    code, body = api_error(rc_carol.rooms_info, room_id=pair["secret"].id)
    assert body["errorType"] == "error-room-not-found"
    api_error(rc_carol.rooms_info, room_name="secret")
    api_error(rc_carol.rooms_info, room_id="no-such-room")
    assert rc_carol.rooms_get()["update"] == []
