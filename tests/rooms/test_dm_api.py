"""dm.* and the im.* aliases through the unmodified rocketchat-api client."""

from __future__ import annotations

from tests.rooms.room_helpers import api_error, membership, post


def test_dm_create_is_idempotent_and_private(live_url, make_user, rc_client):
    alice, bob = make_user("alice"), make_user("bob")
    make_user("eve")
    rc = rc_client("alice")
    room = rc.dm_create("bob")["room"]
    assert room["t"] == "d" and room["rid"] == room["_id"]
    assert room["usernames"] == ["alice", "bob"]
    rid = room["_id"]
    # The same pair, from either side, finds the same room.
    assert rc.dm_create("bob")["room"]["_id"] == rid
    assert rc_client("bob").dm_create("alice")["room"]["_id"] == rid
    assert membership(rid, "alice").state == membership(rid, "bob").state == "joined"

    post("alice", rid, "psst")
    post("bob", rid, "yes?")
    assert [m["msg"] for m in rc.dm_history(rid)] == ["yes?", "psst"]
    assert [m["msg"] for m in rc.call_api_get("im.history", roomId=rid)["messages"]] == ["yes?", "psst"]
    members = rc.call_api_get("dm.members", roomId=rid)
    assert members["total"] == 2 and {m["_id"] for m in members["members"]} == {alice.id, bob.id}
    # dm.members and dm.messages also take the other user's name.
    assert {m["username"] for m in rc.call_api_get("dm.members", username="bob")["members"]} == {"alice", "bob"}
    assert [m["msg"] for m in rc.dm_messages(username="bob")] == ["yes?", "psst"]

    listed = rc.call_api_get("dm.list")
    assert listed["total"] == 1 and listed["ims"][0]["_id"] == rid
    assert [i["_id"] for i in rc.dm_list()] == [rid]
    assert rc.call_api_get("im.list")["ims"][0]["_id"] == rid

    eve = rc_client("eve")
    for call, args, kwargs in [(eve.call_api_get, ("dm.history",), {"roomId": rid}),
                               (eve.call_api_get, ("dm.members",), {"roomId": rid}),
                               (eve.call_api_get, ("dm.messages",), {"roomId": rid}),
                               (eve.call_api_get, ("im.history",), {"roomId": rid}),
                               (eve.dm_close, (rid,), {}), (eve.dm_set_topic, (rid, "mine"), {}),
                               (eve.channels_info, (), {"room_id": rid}), (eve.groups_info, (), {"room_id": rid}),
                               (eve.dm_messages, (), {"username": "bob"})]:
        _, body = api_error(call, *args, **kwargs)
        assert body["errorType"] == "error-room-not-found", (call, body)
    assert list(eve.dm_list()) == []
    status, _ = api_error(eve.call_api_get, "dm.list.everyone")
    assert status == 400


def test_multi_user_dm_close_open_and_counters(live_url, make_user, rc_client):
    make_user("alice"), make_user("bob"), make_user("carol")
    rc = rc_client("alice")
    room = rc.dm_create_multiple(["bob", "carol"])["room"]
    assert room["usernames"] == ["alice", "bob", "carol"]
    rid = room["_id"]
    assert rc.dm_create_multiple(["carol", "bob"])["room"]["_id"] == rid
    assert rc.dm_create("bob")["room"]["_id"] != rid

    post("bob", rid, "hello both")
    counters = rc.dm_counters(rid)
    assert counters["joined"] is True and counters["members"] == 3 and counters["unreads"] == 1

    assert rc.dm_close(rid)["success"] is True
    assert membership(rid, "alice").open is False
    # dm.create opens it again, as in Rocket.Chat.
    rc.dm_create_multiple(["bob", "carol"])
    assert membership(rid, "alice").open is True
    rc.dm_close(rid)
    rc.call_api_post("im.open", roomId=rid)
    assert membership(rid, "alice").open is True

    assert rc.dm_set_topic(rid, "planning")["topic"] == "planning"


def test_dm_bad_input(live_url, make_user, rc_client):
    make_user("alice")
    rc = rc_client("alice")
    _, body = api_error(rc.dm_create, "ghost")
    assert body["errorType"] == "error-invalid-user"
    _, body = api_error(rc.call_api_post, "dm.create")
    assert body["errorType"] == "error-invalid-params"
    _, body = api_error(rc.dm_create_multiple, ["ghost", "alice"])
    assert body["errorType"] == "error-invalid-user"
    _, body = api_error(rc.call_api_get, "dm.history", roomId="nope")
    assert body["errorType"] == "error-room-not-found"
    _, body = api_error(rc.call_api_get, "dm.members")
    assert body["errorType"] == "error-room-param-not-provided"
    # A DM with oneself is a notes-to-self room.
    assert rc.dm_create("alice")["room"]["usernames"] == ["alice"]
