"""Starred messages, favorite rooms, purpose, online members, name checks and deleting a DM,
through the unmodified client (Rocket.Chat's shapes and errors)."""

from __future__ import annotations

from typing import Any

from tests.rooms.room_helpers import api_error


def test_stars_are_private_and_favorites_show_in_subscriptions(live_url: str, make_user: Any,
                                                                rc_client: Any) -> None:
    make_user("stella")
    make_user("sid")
    make_user("outsider")
    stella, sid = rc_client("stella"), rc_client("sid")
    rid = stella.groups_create("starry", members=["sid"])["group"]["_id"]
    first = stella.chat_post_message("remember this", room_id=rid)["message"]["_id"]
    stella.chat_post_message("not this", room_id=rid)
    assert stella.chat_star_message(first)["success"]
    assert stella.chat_star_message(first)["success"]  # twice: still one star
    starred = stella.call_api_get("chat.getStarredMessages", roomId=rid)
    assert [m["msg"] for m in starred["messages"]] == ["remember this"] and starred["total"] == 1
    assert starred["messages"][0]["starred"] == [{"_id": stella.me()["_id"]}]
    assert sid.call_api_get("chat.getStarredMessages", roomId=rid)["messages"] == []  # stars are one's own
    status, body = api_error(rc_client("outsider").chat_star_message, first)
    assert status in (400, 403)
    assert stella.chat_unstar_message(first)["success"]
    assert stella.call_api_get("chat.getStarredMessages", roomId=rid)["total"] == 0

    assert stella.rooms_favorite(room_id=rid, favorite=True)["success"]
    sub = stella.call_api_get("subscriptions.getOne", roomId=rid)["subscription"]
    assert sub["f"] is True
    assert sid.call_api_get("subscriptions.getOne", roomId=rid)["subscription"]["f"] is False
    assert stella.rooms_favorite(room_id=rid, favorite=False)["success"]
    assert stella.call_api_get("subscriptions.getOne", roomId=rid)["subscription"]["f"] is False
    status, body = api_error(stella.call_api_post, "rooms.favorite", roomId=rid)
    assert status == 400 and body["errorType"] == "error-invalid-params"


def test_purpose_online_name_exists_and_dm_delete(live_url: str, make_user: Any, rc_client: Any,
                                                  admin_user: Any) -> None:
    make_user("pia")
    make_user("pat")
    pia = rc_client("pia")
    rid = pia.channels_create("purposeful", members=["pat"])["channel"]["_id"]
    assert pia.call_api_post("channels.setPurpose", roomId=rid, purpose="Ship it")["purpose"] == "Ship it"
    assert pia.channels_info(room_id=rid)["channel"]["description"] == "Ship it"
    pia.users_set_status("here", status="online")
    rc_client("pat").users_set_status("gone", status="offline")
    assert [u["username"] for u in pia.channels_online(rid)["online"]] == ["pia"]
    assert pia.call_api_get("rooms.nameExists", roomName="purposeful")["exists"] is True
    assert pia.call_api_get("rooms.nameExists", roomName="nothing-here")["exists"] is False
    status, body = api_error(pia.call_api_get, "rooms.nameExists")
    assert status == 400

    dm = pia.call_api_post("dm.create", username="pat")["room"]["_id"]
    status, body = api_error(pia.call_api_post, "im.delete", roomId=dm)
    assert status == 400  # delete-d: admins only, as in Rocket.Chat
    admin = rc_client(admin_user.username)
    assert admin.call_api_post("im.delete", roomId=dm)["success"]
    status, body = api_error(pia.call_api_get, "im.history", roomId=dm)
    assert status in (400, 404)


def test_report_and_ignore(live_url: str, make_user: Any, rc_client: Any) -> None:
    from rooms.models import MessageReport

    make_user("rita")
    make_user("troll")
    rita, troll = rc_client("rita"), rc_client("troll")
    rid = rita.channels_create("reports", members=["troll"])["channel"]["_id"]
    bad = troll.chat_post_message("spam spam", room_id=rid)["message"]["_id"]
    assert rita.call_api_post("chat.reportMessage", messageId=bad, description="spam")["success"]
    report = MessageReport.objects.get()
    assert (report.message_id, report.reporter.username, report.description) == (bad, "rita", "spam")
    status, body = api_error(rita.call_api_post, "chat.reportMessage", messageId=bad)
    assert status == 400
    troll_id = troll.me()["_id"]
    assert rita.call_api_get("chat.ignoreUser", rid=rid, userId=troll_id, ignore="true")["success"]
    assert rita.call_api_get("subscriptions.getOne", roomId=rid)["subscription"]["ignored"] == [troll_id]
    assert rita.call_api_get("chat.ignoreUser", rid=rid, userId=troll_id, ignore="false")["success"]
    assert rita.call_api_get("subscriptions.getOne", roomId=rid)["subscription"]["ignored"] == []
    make_user("nobody")
    status, body = api_error(rc_client("nobody").call_api_get, "chat.ignoreUser", rid=rid, userId=troll_id)
    assert body["errorType"] == "error-invalid-subscription"


def test_rooms_delete_and_autocomplete(live_url: str, make_user: Any, rc_client: Any) -> None:
    from rooms.models import Room

    make_user("dora")
    make_user("dan")
    dora, dan = rc_client("dora"), rc_client("dan")
    keep = dora.channels_create("plans-keep", members=["dan"])["channel"]["_id"]
    gone = dora.groups_create("plans-gone", members=["dan"])["group"]["_id"]
    dora.channels_create("other-room")
    items = dora.call_api_get("rooms.autocomplete.channelAndPrivate", selector='{"name": "plans"}')["items"]
    assert [(i["name"], i["t"]) for i in items] == [("plans-gone", "p"), ("plans-keep", "c")]
    assert [i["name"] for i in dan.call_api_get("rooms.autocomplete.channelAndPrivate",
                                                selector='{"name": "oth"}')["items"]] == []  # not his
    status, body = api_error(dora.call_api_get, "rooms.autocomplete.channelAndPrivate")
    assert status == 400
    status, body = api_error(dan.call_api_post, "rooms.delete", roomId=gone)
    assert status == 400  # delete-p: owners
    assert dora.call_api_post("rooms.delete", roomId=gone)["success"]
    assert not Room.objects.filter(id=gone).exists() and Room.objects.filter(id=keep).exists()
    status, body = api_error(dora.call_api_post, "rooms.delete", roomId=gone)
    assert body["errorType"] == "error-room-not-found"


def test_join_codes_and_add_all(live_url: str, make_user: Any, rc_client: Any, admin_user: Any) -> None:
    make_user("keeper")
    make_user("visitor")
    make_user("everyone1")
    keeper, visitor = rc_client("keeper"), rc_client("visitor")
    rid = keeper.channels_create("locked")["channel"]["_id"]
    answer = keeper.call_api_post("channels.setJoinCode", roomId=rid, joinCode="s3cret")
    assert answer["channel"]["joinCodeRequired"] is True
    status, body = api_error(visitor.channels_join, rid, None)
    assert status == 400 and body["errorType"] == "error-code-invalid"
    status, body = api_error(visitor.channels_join, rid, "wrong")
    assert body["errorType"] == "error-code-invalid"
    assert visitor.channels_join(rid, "s3cret")["success"]
    status, body = api_error(visitor.call_api_post, "channels.setJoinCode", roomId=rid, joinCode="mine")
    assert status == 400
    assert keeper.call_api_post("channels.setJoinCode", roomId=rid, joinCode="")["channel"]["joinCodeRequired"] is False

    status, body = api_error(keeper.call_api_post, "channels.addAll", roomId=rid)
    assert status == 400
    admin = rc_client(admin_user.username)
    assert admin.call_api_post("channels.addAll", roomId=rid)["success"]
    members = {m["username"] for m in keeper.call_api_get("channels.members", roomId=rid, count=100)["members"]}
    assert {"keeper", "visitor", "everyone1", admin_user.username} <= members
