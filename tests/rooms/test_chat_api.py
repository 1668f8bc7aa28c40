"""``chat.*`` through the unmodified ``rocketchat-api`` client against the live server.

Rooms are set up with the real actions; every call under test goes over HTTP. Bad input and
missing rights must answer Rocket.Chat JSON errors (4xx), never a 500.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from rocketchat_API.APIExceptions.RocketExceptions import RocketApiException

from rooms.actions.memberships import do_ban, do_set_muted
from rooms.actions.messages import MAX_MESSAGE_LENGTH
from rooms.actions.rooms import do_create_room
from rooms.models import Membership, Message


def api_error(call: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[int, dict[str, Any]]:
    """Run a client call expected to fail; return (status, JSON body). A 500 fails the test."""
    with pytest.raises(RocketApiException) as info:
        result = call(*args, **kwargs)
        if not isinstance(result, dict):  # a paginated generator: pull the first page
            list(result)
    exc = info.value
    assert 400 <= exc.status_code < 500, exc
    assert exc.response_json["success"] is False
    assert isinstance(exc.response_json["error"], str)
    return exc.status_code, exc.response_json


def raw(live_url: str, rc: Any, method: str, call: str, **kwargs: Any) -> requests.Response:
    return requests.request(method, f"{live_url}/api/v1/{call}", headers=rc.headers, timeout=10, **kwargs)


@pytest.fixture
def trio(live_url: str, make_user: Callable[..., Any], rc_client: Callable[..., Any]) -> dict[str, Any]:
    """alice (owner) and bob in #general and in the private group 'secret'; carol outside both."""
    alice, bob, carol = make_user("alice"), make_user("bob"), make_user("carol")
    general = do_create_room(alice, "c", "general", members=[bob])
    secret = do_create_room(alice, "p", "secret", members=[bob])
    return {"alice": alice, "bob": bob, "carol": carol, "general": general, "secret": secret,
            "rc_alice": rc_client("alice"), "rc_bob": rc_client("bob"), "rc_carol": rc_client("carol")}


def test_post_message_by_room_id_channel_name_and_dm(trio: dict[str, Any]) -> None:
    from accounts.actions import do_set_permission_roles

    rc = trio["rc_alice"]
    # Posting under another name needs message-impersonate (bots and apps by default), as in
    # Rocket.Chat; permissions.update decides who has it.
    status, body = api_error(rc.chat_post_message, "as someone", room_id=trio["general"].id, alias="Al")
    assert status == 400 and body["errorType"] == "error-not-allowed"
    do_set_permission_roles([{"_id": "message-impersonate", "roles": ["bot", "app", "user"]}])
    res = rc.chat_post_message("hello **world** @bob", room_id=trio["general"].id, alias="Al", emoji=":smile:")
    assert res["success"] is True
    assert res["channel"] == "general"
    assert isinstance(res["ts"], int)
    msg = res["message"]
    assert msg["msg"] == "hello **world** @bob"
    assert "<strong>world</strong>" in msg["html"]
    assert msg["u"]["username"] == "alice"
    assert msg["alias"] == "Al" and msg["emoji"] == ":smile:"
    assert [m["username"] for m in msg["mentions"]] == ["bob"]

    by_name = rc.chat_post_message("by name", channel="#general")
    assert by_name["message"]["rid"] == trio["general"].id
    dm = rc.chat_post_message("psst", channel="@carol")
    assert dm["message"]["rid"] != trio["general"].id
    assert trio["rc_carol"].chat_get_message(dm["message"]["_id"])["message"]["msg"] == "psst"

    sub = Membership.objects.get(room=trio["general"], user=trio["bob"])
    assert sub.unread == 2 and sub.user_mentions == 1


def test_send_message_with_id_thread_and_quote(trio: dict[str, Any]) -> None:
    rc, rid = trio["rc_alice"], trio["general"].id
    root = rc.chat_send_message({"_id": "client-chosen-id-1", "rid": rid, "msg": "root"})["message"]
    assert root["_id"] == "client-chosen-id-1"
    reply = trio["rc_bob"].chat_send_message({"rid": rid, "msg": "in thread", "tmid": root["_id"],
                                              "tshow": True})["message"]
    assert reply["tmid"] == root["_id"] and reply["tshow"] is True
    # Rocket.Chat's quote shape: an attachment with message_link.
    quoting = rc.chat_send_message({"rid": rid, "msg": "agreed", "attachments": [
        {"message_link": f"http://x/channel/general?msg={reply['_id']}", "text": "in thread"}]})["message"]
    assert quoting["quote"]["_id"] == reply["_id"]
    assert quoting["attachments"] == []
    # The web client's permalink prefix and our explicit field.
    prefixed = rc.chat_send_message({"rid": rid, "msg": f"[ ](http://x/channel/general?msg={root['_id']}) yes"})
    assert prefixed["message"]["quote"]["_id"] == root["_id"]
    assert prefixed["message"]["msg"] == "yes"
    explicit = rc.chat_send_message({"rid": rid, "msg": "me too", "quote": root["_id"]})["message"]
    assert explicit["quote"]["msg"] == "root"

    got = rc.chat_get_message(root["_id"])["message"]
    assert got["tcount"] == 1
    assert set(got["replies"]) == {trio["alice"].id, trio["bob"].id}

    code, body = api_error(rc.chat_send_message, {"rid": rid, "msg": "dup", "_id": "client-chosen-id-1"})
    assert body["errorType"] == "error-message-id-exists"
    api_error(rc.chat_send_message, {"rid": rid, "msg": "x", "_id": "bad id <script>"})
    api_error(rc.chat_send_message, {"rid": rid, "msg": "x", "tmid": "nope"})
    api_error(rc.chat_send_message, {"rid": rid, "msg": "x", "quote": "nope"})
    api_error(rc.chat_send_message, {"rid": rid, "msg": "x", "tshow": "yes"})


def test_update_delete_and_edit_history(trio: dict[str, Any], live_url: str) -> None:
    rc, rid = trio["rc_alice"], trio["general"].id
    msg = rc.chat_post_message("first", room_id=rid)["message"]
    updated = rc.chat_update(rid, msg["_id"], "second")["message"]
    assert updated["msg"] == "second" and updated["editedBy"]["username"] == "alice"
    rc.chat_update(rid, msg["_id"], "third")
    history = raw(live_url, rc, "GET", "chat.getMessageEditHistory", params={"msgId": msg["_id"]}).json()
    assert [h["text"] for h in history["history"]] == ["first", "second"]
    assert history["message"]["msg"] == "third"

    # Someone else's message: bob is a plain member.
    code, body = api_error(trio["rc_bob"].chat_update, rid, msg["_id"], "hijack")
    assert code == 400
    code, _ = api_error(trio["rc_bob"].chat_delete, rid, msg["_id"])
    assert code == 400
    # Wrong room for the message.
    api_error(rc.chat_update, trio["secret"].id, msg["_id"], "x")

    deleted = rc.chat_delete(rid, msg["_id"])
    assert deleted["_id"] == msg["_id"] and deleted["message"]["rid"] == rid
    tomb = rc.chat_get_message(msg["_id"])["message"]
    assert tomb["msg"] == "" and tomb["deleted"] is True
    api_error(rc.chat_update, rid, msg["_id"], "again")
    api_error(rc.chat_delete, rid, "no-such-message")


def test_react_toggle_and_should_react(trio: dict[str, Any]) -> None:
    rc, rid = trio["rc_bob"], trio["general"].id
    mid = trio["rc_alice"].chat_post_message("react to me", room_id=rid)["message"]["_id"]
    assert rc.chat_react(mid, "thumbsup")["success"]
    assert trio["rc_alice"].chat_get_message(mid)["message"]["reactions"][":thumbsup:"]["usernames"] == ["bob"]
    rc.chat_react(mid, ":thumbsup:")  # toggles off
    assert "reactions" not in rc.chat_get_message(mid)["message"]
    rc.chat_react(mid, "tada", shouldReact=True)
    rc.chat_react(mid, "tada", shouldReact=True)
    assert rc.chat_get_message(mid)["message"]["reactions"][":tada:"]["usernames"] == ["bob"]
    api_error(rc.chat_react, mid, "<img src=x onerror=alert(1)>")
    api_error(rc.chat_react, "nope", "smile")
    api_error(trio["rc_carol"].chat_react, mid, "smile")  # not a member


def test_threads_list_messages_follow_and_sync(trio: dict[str, Any]) -> None:
    rc, rid = trio["rc_alice"], trio["general"].id
    before = (datetime.now(UTC) - timedelta(seconds=5)).isoformat()
    root = rc.chat_post_message("thread root", room_id=rid)["message"]
    for i in range(3):
        trio["rc_bob"].chat_post_message(f"reply {i}", room_id=rid, tmid=root["_id"])
    rc.chat_post_message("not a thread", room_id=rid)

    replies = list(rc.chat_get_thread_messages(root["_id"], count=2))
    assert [r["msg"] for r in replies] == ["reply 0", "reply 1", "reply 2"]
    threads = list(rc.chat_get_threads_list(rid))
    assert [t["_id"] for t in threads] == [root["_id"]] and threads[0]["tcount"] == 3
    assert list(trio["rc_carol"].chat_get_threads_list(rid, type="following")) == []

    assert trio["rc_carol"].chat_follow_message(root["_id"])["success"]
    assert [t["_id"] for t in trio["rc_carol"].chat_get_threads_list(rid, type="following")] == [root["_id"]]
    assert trio["rc_carol"].chat_unfollow_message(root["_id"])["success"]
    assert list(trio["rc_carol"].chat_get_threads_list(rid, type="following")) == []

    synced = rc.chat_sync_thread_messages(root["_id"], before)["messages"]
    assert len(synced["update"]) == 3 and synced["remove"] == []
    trio["rc_bob"].chat_delete(rid, synced["update"][0]["_id"])
    synced = rc.chat_sync_thread_messages(root["_id"], before)["messages"]
    assert len(synced["update"]) == 2 and [r["_id"] for r in synced["remove"]] == [replies[0]["_id"]]
    assert rc.chat_sync_thread_list(rid, before)["threads"]["update"][0]["_id"] == root["_id"]

    api_error(rc.chat_get_thread_messages, "nope")
    api_error(rc.chat_get_threads_list, rid, type="bogus")
    api_error(rc.chat_sync_thread_messages, root["_id"], "not-a-date")


def test_pins_search_mentions_deleted_and_sync(trio: dict[str, Any]) -> None:
    rc, rid = trio["rc_alice"], trio["general"].id
    since = (datetime.now(UTC) - timedelta(seconds=5)).isoformat()
    m1 = rc.chat_post_message("the quick brown fox", room_id=rid)["message"]
    m2 = trio["rc_bob"].chat_post_message("hey @alice, lazy dog", room_id=rid)["message"]

    pinned = rc.chat_pin_message(m1["_id"])["message"]
    assert pinned["pinned"] is True and pinned["pinnedBy"]["username"] == "alice"
    assert [m["_id"] for m in rc.chat_get_pinned_messages(rid)] == [m1["_id"]]
    code, _ = api_error(trio["rc_bob"].chat_pin_message, m2["_id"])  # plain members may not pin
    assert code == 400
    rc.chat_unpin_message(m1["_id"])
    assert list(rc.chat_get_pinned_messages(rid)) == []

    assert [m["_id"] for m in rc.chat_search(rid, "BROWN fox")] == [m1["_id"]]
    assert list(rc.chat_search(rid, "nothing-like-this")) == []
    assert [m["_id"] for m in rc.chat_get_mentioned_messages(rid)] == [m2["_id"]]

    trio["rc_bob"].chat_delete(rid, m2["_id"])
    deleted = list(rc.chat_get_deleted_messages(rid, since))
    assert [d["_id"] for d in deleted] == [m2["_id"]]
    result = rc.chat_sync_messages(rid, since)["result"]
    assert m1["_id"] in [m["_id"] for m in result["updated"]]
    assert [d["_id"] for d in result["deleted"]] == [m2["_id"]]
    # Epoch milliseconds work too.
    ms = int((datetime.now(UTC) + timedelta(minutes=1)).timestamp() * 1000)
    assert rc.chat_sync_messages(rid, ms)["result"] == {"updated": [], "deleted": []}

    api_error(rc.chat_get_deleted_messages, rid, "yesterday")
    api_error(rc.chat_search, rid, "x" * 600)
    api_error(rc.chat_pin_message, "nope")


def test_read_receipts(trio: dict[str, Any]) -> None:
    rid = trio["general"].id
    mid = trio["rc_alice"].chat_post_message("did you read this?", room_id=rid)["message"]["_id"]
    assert trio["rc_alice"].chat_get_message_read_receipts(mid)["receipts"] == []
    trio["rc_bob"].subscriptions_read(rid)
    receipts = trio["rc_alice"].chat_get_message_read_receipts(mid)["receipts"]
    assert [r["user"]["username"] for r in receipts] == ["bob"]
    api_error(trio["rc_alice"].chat_get_message_read_receipts, "nope")


def test_private_room_is_invisible_to_non_members(trio: dict[str, Any]) -> None:
    rc_alice, carol = trio["rc_alice"], trio["rc_carol"]
    sid = trio["secret"].id
    mid = rc_alice.chat_post_message("classified", room_id=sid)["message"]["_id"]
    for call, args in [
        (carol.chat_get_message, (mid,)), (carol.chat_post_message, ("hi",)), (carol.chat_search, (sid, "c")),
        (carol.chat_get_pinned_messages, (sid,)), (carol.chat_get_thread_messages, (mid,)),
        (carol.chat_get_message_read_receipts, (mid,)), (carol.chat_react, (mid, "smile")),
        (carol.chat_sync_messages, (sid, "2020-01-01T00:00:00Z")),
    ]:
        kwargs = {"room_id": sid} if call == carol.chat_post_message else {}
        code, body = api_error(call, *args, **kwargs)
        assert "classified" not in str(body)
    api_error(carol.chat_post_message, "hi", channel="#secret")
    # A public channel's history is readable; posting needs joining.
    gid = trio["general"].id
    rc_alice.chat_post_message("public words", room_id=gid)
    assert [m["msg"] for m in carol.chat_search(gid, "public")] == ["public words"]
    code, body = api_error(carol.chat_post_message, "let me in", room_id=gid)
    assert code == 400


def test_muted_read_only_and_banned(trio: dict[str, Any], make_user: Callable[..., Any],
                                    rc_client: Callable[..., Any]) -> None:
    alice, bob, rid = trio["alice"], trio["bob"], trio["general"].id
    mid = trio["rc_bob"].chat_post_message("before mute", room_id=rid)["message"]["_id"]
    do_set_muted(trio["general"], bob, True, by=alice)
    code, body = api_error(trio["rc_bob"].chat_post_message, "muted", room_id=rid)
    assert code == 400 and body["errorType"] == "error-user-muted"
    api_error(trio["rc_bob"].chat_update, rid, mid, "edited while muted")
    api_error(trio["rc_bob"].chat_react, mid, "smile")

    dave = make_user("dave")
    news = do_create_room(alice, "c", "news", members=[dave], read_only=True)
    code, body = api_error(rc_client("dave").chat_post_message, "can I?", room_id=news.id)
    assert code == 400 and body["errorType"] == "error-room-read-only"
    assert trio["rc_alice"].chat_post_message("owners may", room_id=news.id)["success"]

    do_ban(trio["secret"], bob, by=alice)
    api_error(trio["rc_bob"].chat_post_message, "banned", room_id=trio["secret"].id)
    api_error(trio["rc_bob"].chat_search, trio["secret"].id, "x")


def test_bad_input_is_a_json_4xx(trio: dict[str, Any], live_url: str) -> None:
    rc, rid = trio["rc_alice"], trio["general"].id
    code, body = api_error(rc.chat_post_message, "x" * (MAX_MESSAGE_LENGTH + 1), room_id=rid)
    assert body["errorType"] == "error-message-size-exceeded"
    api_error(rc.chat_post_message, "   ", room_id=rid)
    api_error(rc.chat_post_message, "x", room_id="no-such-room")
    api_error(rc.chat_post_message, "x", channel="@nobody")
    api_error(rc.chat_post_message, "x", room_id=rid, attachments="not a list")
    api_error(rc.chat_post_message, "x", room_id=rid, attachments=[{"title_link": "javascript:alert(1)"}])
    api_error(rc.chat_post_message, "x", room_id=rid, attachments=[{"image_url": "data:text/html,<script>"}])
    api_error(rc.chat_post_message, "x", room_id=rid, tmid=["a"])
    api_error(rc.chat_send_message, {"rid": rid, "msg": 12})
    api_error(rc.chat_send_message, {"rid": ["x"], "msg": "hi"})
    api_error(rc.chat_update, rid, "nope", "x")
    api_error(rc.chat_get_message, "")
    for call, kwargs in [
        ("chat.postMessage", {"json": {"roomId": rid, "text": {"a": 1}}}),
        ("chat.postMessage", {"json": {"roomId": rid}}),
        ("chat.postMessage", {"json": {}}),
        ("chat.postMessage", {"json": {"roomId": 5, "text": "hi"}}),
        ("chat.sendMessage", {"json": {"message": "hi"}}),
        ("chat.sendMessage", {"json": {}}),
        ("chat.update", {"json": {"roomId": rid, "msgId": None, "text": "x"}}),
        ("chat.react", {"json": {"messageId": "x"}}),
        ("chat.postMessage", {"data": "[1, 2]", "headers": {**rc.headers, "Content-Type": "application/json"}}),
    ]:
        headers = kwargs.pop("headers", rc.headers)
        r = requests.post(f"{live_url}/api/v1/{call}", headers=headers, timeout=10, **kwargs)
        assert 400 <= r.status_code < 500, (call, kwargs, r.status_code, r.text)
        assert r.json()["success"] is False
    r = requests.get(f"{live_url}/api/v1/chat.getThreadsList", headers=rc.headers, params={"rid": rid,
                                                                                        "count": "many"})
    assert r.status_code == 400
    r = requests.post(f"{live_url}/api/v1/chat.postMessage", json={"roomId": rid, "text": "x"})
    assert r.status_code == 401
    assert Message.objects.filter(room_id=rid, text="x").count() == 0


def test_attachments_are_stored_when_safe(trio: dict[str, Any]) -> None:
    att = [{"title": "<b>doc</b>", "title_link": "https://example.org/doc", "text": "see",
            "attachments": [{"image_url": "/file-upload/x/y.png"}]}]
    msg = trio["rc_alice"].chat_post_message("", room_id=trio["general"].id, attachments=att)["message"]
    assert msg["attachments"] == att


def test_unusable_json_is_a_json_4xx_and_stores_nothing(trio: dict[str, Any], live_url: str) -> None:
    """JSON that parses but cannot be used used to answer 500: nesting past the recursion limit
    (RecursionError in the parser), a lone surrogate escape (UnicodeEncodeError when rendering or
    storing), a number too large for a float (``inf``, refused by the database's JSON check)."""
    rc, rid = trio["rc_alice"], trio["general"].id
    headers = {**rc.headers, "Content-Type": "application/json"}
    before = Message.objects.filter(room_id=rid).count()
    deep = "[" * 100_000 + "]" * 100_000
    for call, body in [
        ("chat.postMessage", deep),
        ("chat.postMessage", '{"roomId": "RID", "text": ' + '{"a":' * 50_000 + "1" + "}" * 50_000 + "}"),
        ("chat.postMessage", '{"roomId": "RID", "text": "x", "attachments": ' + "[" * 500 + "]" * 500 + "}"),
        ("chat.postMessage", '{"roomId": "RID", "text": "\\ud83d"}'),
        ("chat.update", '{"roomId": "RID", "msgId": "x", "text": "\\udfff"}'),
        ("chat.sendMessage", '{"message": {"rid": "RID", "msg": "a\\ud800b"}}'),
        ("subscriptions.read", '{"rid": "\\ud800"}'),
        ("chat.postMessage", '{"roomId": "RID", "text": "x", "attachments": [{"title": "t", "n": 1e400}]}'),
        ("channels.create", '{"name": "fine", "members": ["\\ud800"]}'),
    ]:
        data = body.replace("RID", rid).encode()
        r = requests.post(f"{live_url}/api/v1/{call}", data=data, headers=headers, timeout=30)
        assert r.status_code == 400, (call, body[:80], r.status_code, r.text[:300])
        assert r.json()["success"] is False and r.json()["errorType"] == "error-invalid-params"
    assert Message.objects.filter(room_id=rid).count() == before
    # The same in JSON query parameters and EJSON dates.
    for call, params in [("channels.messages", {"roomId": rid, "query": '{"msg": "\\ud800"}'}),
                         ("channels.messages", {"roomId": rid, "sort": "[" * 1500}),
                         ("users.list", {"query": '{"username": "\\udc00"}'}),
                         ("chat.syncMessages", {"roomId": rid, "lastUpdate": '{"$date":' + "[" * 1500})]:
        r = raw(live_url, rc, "GET", call, params=params)
        assert r.status_code == 400 and r.json()["errorType"] == "error-invalid-params", (call, r.text[:300])
    # Well-formed unicode (a real emoji, astral plane) still goes through.
    emoji = '{"roomId": "RID", "text": "\\ud83d\\udca5"}'.replace("RID", rid)
    r = requests.post(f"{live_url}/api/v1/chat.postMessage", data=emoji, headers=headers, timeout=10)
    assert r.status_code == 200 and r.json()["message"]["msg"] == "\U0001f4a5"


def test_attachments_refuse_non_finite_numbers() -> None:
    from chat.api_errors import ApiError
    from rooms.actions.messages import check_attachments

    for bad in (float("inf"), float("-inf"), float("nan")):
        with pytest.raises(ApiError):
            check_attachments([{"title": "t", "n": bad}])
