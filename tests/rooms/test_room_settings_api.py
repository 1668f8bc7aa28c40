"""rooms.saveRoomSettings, rooms.bannedUsers and the room's muted list, through the unmodified client."""

from __future__ import annotations

from tests.rooms.room_helpers import api_error


def test_save_room_settings_changes_everything_at_once(live_url, make_user, rc_client):
    make_user("olga")
    make_user("pete")
    olga = rc_client("olga")
    rid = olga.channels_create("plans", members=["pete"])["channel"]["_id"]
    answer = olga.call_api_post("rooms.saveRoomSettings", rid=rid, roomName="plans-2026", roomTopic="Roadmap",
                                roomDescription="Where we plan", roomAnnouncement="Review Friday",
                                readOnly=True, broadcast=True)
    assert answer["success"] is True
    assert set(answer["changed"]) == {"roomName", "roomTopic", "roomDescription", "roomAnnouncement",
                                      "readOnly", "broadcast"}
    info = olga.channels_info(room_id=rid)["channel"]
    assert (info["name"], info["topic"], info["description"], info["announcement"]) == (
        "plans-2026", "Roadmap", "Where we plan", "Review Friday")
    assert info["ro"] is True and info["broadcast"] is True
    # Each change left its system message in the history, as the single-setting calls do.
    kinds = {m.get("t") for m in olga.channels_history(rid)}
    assert {"r", "room_changed_topic", "room_changed_description", "room_changed_announcement"} <= kinds
    # Turning it into a private group.
    olga.call_api_post("rooms.saveRoomSettings", rid=rid, roomType="p")
    assert olga.groups_info(room_id=rid)["group"]["t"] == "p"


def test_save_room_settings_refusals(live_url, make_user, rc_client):
    make_user("quin")
    make_user("rosa")
    quin = rc_client("quin")
    rid = quin.channels_create("quins", members=["rosa"])["channel"]["_id"]
    status, body = api_error(rc_client("rosa").call_api_post, "rooms.saveRoomSettings", rid=rid, roomTopic="mine")
    assert status == 400 and body["errorType"] == "error-not-allowed"
    status, body = api_error(quin.call_api_post, "rooms.saveRoomSettings", rid=rid, roomType="d")
    assert body["errorType"] == "error-invalid-room-type"
    status, body = api_error(quin.call_api_post, "rooms.saveRoomSettings", rid=rid, readOnly="maybe")
    assert body["errorType"] == "error-invalid-params"
    status, body = api_error(quin.call_api_post, "rooms.saveRoomSettings", rid=rid, roomName="bad name!")
    assert body["errorType"] == "error-invalid-room-name"


def test_banned_users_list_and_muted_usernames(live_url, make_user, rc_client):
    make_user("sara")
    make_user("tomas")
    make_user("uma")
    sara = rc_client("sara")
    rid = sara.channels_create("strict", members=["tomas", "uma"])["channel"]["_id"]
    sara.call_api_post("rooms.muteUser", roomId=rid, username="tomas")
    assert sara.channels_info(room_id=rid)["channel"]["muted"] == ["tomas"]
    sara.call_api_post("rooms.banUser", roomId=rid, username="uma")
    banned = sara.call_api_get("rooms.bannedUsers", roomId=rid)
    assert [u["username"] for u in banned["users"]] == ["uma"] and banned["total"] == 1
    # Only those who may ban see the list.
    status, _ = api_error(rc_client("tomas").call_api_get, "rooms.bannedUsers", roomId=rid)
    assert status == 400
    sara.call_api_post("rooms.unbanUser", roomId=rid, username="uma")
    sara.call_api_post("rooms.unmuteUser", roomId=rid, username="tomas")
    assert sara.call_api_get("rooms.bannedUsers", roomId=rid)["users"] == []
    assert sara.channels_info(room_id=rid)["channel"]["muted"] == []


def _texts(client, rid):
    history = client.call_api_get("channels.history", roomId=rid, count=100)
    return [m["msg"] for m in reversed(history["messages"]) if not m.get("t")]


def test_history_visibility_decides_what_newcomers_read(live_url, make_user, rc_client):
    for name in ("vera", "walt", "xena", "yuri"):
        make_user(name)
    vera = rc_client("vera")
    rid = vera.channels_create("visible")["channel"]["_id"]
    vera.chat_post_message("said while shared", room_id=rid)
    answer = vera.call_api_post("rooms.saveRoomSettings", rid=rid, historyVisibility="joined")
    assert answer["changed"] == ["historyVisibility"] and answer["room"]["historyVisibility"] == "joined"
    assert vera.channels_info(room_id=rid)["channel"]["historyVisibility"] == "joined"
    vera.chat_post_message("said while joined-only", room_id=rid)
    vera.call_api_post("channels.invite", roomId=rid, username="walt")
    vera.chat_post_message("after walt joined", room_id=rid)
    walt = rc_client("walt")
    # Walt joined after the second message: he reads the shared one and what came after him.
    assert _texts(walt, rid) == ["said while shared", "after walt joined"]
    assert [m["msg"] for m in walt.call_api_get("channels.messages", roomId=rid)["messages"] if not m.get("t")] == [
        "after walt joined", "said while shared"]
    assert _texts(vera, rid) == ["said while shared", "said while joined-only", "after walt joined"]
    # Back to shared: messages from then on reach every later member; those of the joined-only
    # period stay hidden from anyone who joined after them.
    vera.call_api_post("rooms.saveRoomSettings", rid=rid, historyVisibility="shared")
    vera.chat_post_message("shared again", room_id=rid)
    vera.call_api_post("channels.invite", roomId=rid, username="xena")
    assert _texts(rc_client("xena"), rid) == ["said while shared", "shared again"]
    assert _texts(walt, rid) == ["said while shared", "after walt joined", "shared again"]
    # The change is announced in the room.
    kinds = [m.get("t") for m in vera.call_api_get("channels.history", roomId=rid, count=100)["messages"]]
    assert kinds.count("room_changed_history_visibility") == 2
    # Bad values and callers without edit-room are refused.
    status, body = api_error(vera.call_api_post, "rooms.saveRoomSettings", rid=rid, historyVisibility="everyone")
    assert status == 400 and body["errorType"] == "error-invalid-params"
    status, body = api_error(rc_client("walt").call_api_post, "rooms.saveRoomSettings", rid=rid,
                             historyVisibility="joined")
    assert status == 400
    # Nothing in the change breaks a room that never used it.
    assert _texts(rc_client("yuri"), vera.channels_create("plain")["channel"]["_id"]) == []


def test_system_messages_count_in_msgs_as_in_rocket_chat(live_url, make_user, rc_client):
    make_user("mona")
    mona = rc_client("mona")
    rid = mona.channels_create("counting")["channel"]["_id"]
    before = mona.channels_info(room_id=rid)["channel"]["msgs"]
    mona.chat_post_message("one", room_id=rid)
    assert mona.channels_set_read_only(rid, True)["channel"]["msgs"] == before + 2  # a message, a system message
    assert mona.channels_info(room_id=rid)["channel"]["msgs"] == before + 2
