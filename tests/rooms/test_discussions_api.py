"""rooms.createDiscussion / rooms.getDiscussions over the live server (unmodified rocketchat_API client)."""

from __future__ import annotations

import json

import requests

from tests.rooms.room_helpers import api_error, membership, post


def _parent_notice(parent_id: str, discussion_id: str) -> dict:
    from rooms.models import Message
    from rooms.serialization import message_json, message_queryset

    msg = message_queryset().get(room_id=parent_id, type="discussion-created", discussion_id=discussion_id)
    assert isinstance(msg, Message)
    return message_json(msg)


def test_create_discussion_of_a_channel(live_url, make_user, rc_client):
    make_user("alice"), make_user("bob"), make_user("carol")
    alice = rc_client("alice")
    parent = alice.channels_create("town", members=["bob", "carol"])["channel"]
    before = alice.channels_info(room_id=parent["_id"])["channel"]["msgs"]

    made = alice.rooms_create_discussion(parent["_id"], "Budget 2025", users=["bob", "nobody-like-this"],
                                         reply="first words")
    assert made["success"] is True
    disc = made["discussion"]
    assert disc["rid"] == disc["_id"] and disc["prid"] == parent["_id"]
    assert disc["t"] == "c" and disc["fname"] == "Budget 2025" and disc["name"] != "Budget 2025"
    assert disc["u"]["username"] == "alice" and disc["topic"] == "town"
    # Members: the creator (owner) and the users named; the unknown name is left out; carol is not in.
    assert membership(disc["_id"], "alice").roles == ["owner"]
    assert membership(disc["_id"], "bob").state == "joined"
    assert membership(disc["_id"], "carol") is None
    # The reply is the discussion's first message.
    history = list(alice.channels_history(disc["_id"]))
    assert [m["msg"] for m in history if not m.get("t")] == ["first words"]

    # The parent got one system message pointing at the discussion, and counts it.
    parent_after = alice.channels_info(room_id=parent["_id"])["channel"]
    assert parent_after["msgs"] == before + 1
    notices = [m for m in list(alice.channels_history(parent["_id"])) if m.get("t") == "discussion-created"]
    assert len(notices) == 1
    assert notices[0]["drid"] == disc["_id"] and notices[0]["msg"] == "Budget 2025"
    assert notices[0]["dcount"] == 1 and notices[0]["dlm"] is not None

    # A post in the discussion moves the parent's dcount (read from the discussion, nothing stale).
    post("bob", disc["_id"], "second")
    assert _parent_notice(parent["_id"], disc["_id"])["dcount"] == 2

    # Bob's room list shows the discussion as a room he is in, with prid and fname.
    subs = requests.get(f"{live_url}/api/v1/subscriptions.get", headers=rc_client("bob").headers).json()["update"]
    sub = next(s for s in subs if s["rid"] == disc["_id"])
    assert sub["prid"] == parent["_id"] and sub["fname"] == "Budget 2025"
    info = rc_client("bob").rooms_info(room_id=disc["_id"])["room"]
    assert info["prid"] == parent["_id"]


def test_discussion_of_a_private_group_is_private_and_of_a_message(live_url, make_user, rc_client):
    make_user("alice"), make_user("bob")
    alice = rc_client("alice")
    group = alice.groups_create("secret", members=["bob"])["group"]
    msg = post("bob", group["_id"], "shall we talk about **this**?")

    disc = alice.rooms_create_discussion(group["_id"], "About this", pmid=msg.id)["discussion"]
    assert disc["t"] == "p" and disc["prid"] == group["_id"]
    assert disc["description"] == "shall we talk about **this**?"
    # The quoted message's author is invited.
    assert membership(disc["_id"], "bob").state == "joined"
    notice = _parent_notice(group["_id"], disc["_id"])
    assert notice["attachments"][0]["text"] == "shall we talk about **this**?"
    assert notice["attachments"][0]["author_name"] == "bob"
    # The discussion opens with the message it is about.
    opening = [m for m in list(alice.groups_history(disc["_id"])) if m["attachments"]]
    assert opening and opening[0]["attachments"][0]["text"] == "shall we talk about **this**?"

    # A message of another room does not match the parent.
    other = alice.channels_create("elsewhere")["channel"]
    stray = post("alice", other["_id"], "hi")
    _, body = api_error(alice.rooms_create_discussion, group["_id"], "x", pmid=stray.id)
    assert body["errorType"] == "error-invalid-arguments"
    _, body = api_error(alice.rooms_create_discussion, group["_id"], "x", pmid="no-such-message")
    assert body["errorType"] == "error-invalid-message"


def test_create_discussion_refusals(live_url, make_user, rc_client):
    from accounts.models import Permission

    make_user("alice"), make_user("bob"), make_user("eve")
    alice = rc_client("alice")
    parent = alice.channels_create("plaza", members=["bob"])["channel"]
    group = alice.groups_create("inner")["group"]
    headers = alice.headers

    r = requests.post(f"{live_url}/api/v1/rooms.createDiscussion", json={"t_name": "x"}, headers=headers)
    assert r.status_code == 400 and r.json()["error"] == 'Body parameter "prid" is required.'
    r = requests.post(f"{live_url}/api/v1/rooms.createDiscussion", json={"prid": parent["_id"]}, headers=headers)
    assert r.status_code == 400 and r.json()["error"] == 'Body parameter "t_name" is required.'
    r = requests.post(f"{live_url}/api/v1/rooms.createDiscussion",
                      json={"prid": parent["_id"], "t_name": "x", "users": "bob"}, headers=headers)
    assert r.status_code == 400 and r.json()["error"] == 'Body parameter "users" must be an array.'

    _, body = api_error(alice.rooms_create_discussion, "no-such-room", "x")
    assert body["errorType"] == "error-room-not-found"
    # Eve cannot post in (nor see) the private group.
    _, body = api_error(rc_client("eve").rooms_create_discussion, group["_id"], "x")
    assert body["errorType"] == "error-room-not-found"
    # Eve is not in the public channel: she may not post there, so she may not start a discussion.
    _, body = api_error(rc_client("eve").rooms_create_discussion, parent["_id"], "x")
    assert body["errorType"] == "error-not-allowed", body

    # No nested discussions.
    disc = alice.rooms_create_discussion(parent["_id"], "level one")["discussion"]
    _, body = api_error(alice.rooms_create_discussion, disc["_id"], "level two")
    assert body["errorType"] == "error-nested-discussion"

    # Without start-discussion (nor start-discussion-other-user) for any of her roles.
    for perm in ("start-discussion", "start-discussion-other-user"):
        Permission.objects.get(id=perm).roles.remove("user")
    _, body = api_error(rc_client("bob").rooms_create_discussion, parent["_id"], "x")
    assert body["errorType"] == "error-action-not-allowed"
    assert body["error"] == "You are not allowed to create a discussion"
    # The channel's owner still may, through the room role.
    assert alice.rooms_create_discussion(parent["_id"], "owners only")["success"] is True

    from rooms.models import Room

    assert sorted(Room.objects.filter(parent_id=parent["_id"]).values_list("fname", flat=True)) == [
        "level one", "owners only"]


def test_no_discussion_in_a_federated_room(live_url, make_user, rc_client):
    from federation.models import MatrixRoom
    from rooms.models import Message, Room

    make_user("alice")
    alice = rc_client("alice")
    parent = alice.channels_create("bridged")["channel"]
    MatrixRoom.objects.create(room_id="!bridged:remote.example", room_version="11", chat_room_id=parent["_id"])
    assert alice.channels_info(room_id=parent["_id"])["channel"]["federated"] is True

    status, body = api_error(alice.rooms_create_discussion, parent["_id"], "not here")
    assert status == 400 and body["errorType"] == "error-action-not-allowed"
    assert "federated" in body["error"]
    assert not Room.objects.filter(parent_id=parent["_id"]).exists()
    assert not Message.objects.filter(room_id=parent["_id"], type="discussion-created").exists()


def test_get_discussions(live_url, make_user, rc_client):
    make_user("alice"), make_user("bob"), make_user("eve")
    alice = rc_client("alice")
    parent = alice.channels_create("forum", members=["bob"])["channel"]
    ids = {name: alice.rooms_create_discussion(parent["_id"], name)["discussion"]["_id"]
           for name in ("zebra talk", "apple talk", "mango")}
    alice.channels_create("unrelated")

    r = requests.get(f"{live_url}/api/v1/rooms.getDiscussions", params={"roomId": parent["_id"]},
                     headers=rc_client("bob").headers).json()
    assert r["success"] is True and r["total"] == 3 and r["count"] == 3 and r["offset"] == 0
    assert [d["fname"] for d in r["discussions"]] == ["apple talk", "mango", "zebra talk"]
    assert all(d["prid"] == parent["_id"] for d in r["discussions"])

    r = requests.get(f"{live_url}/api/v1/rooms.getDiscussions",
                     params={"roomId": parent["_id"], "text": "TALK", "count": 1, "offset": 1,
                             "sort": json.dumps({"fname": -1})}, headers=alice.headers).json()
    assert r["total"] == 2 and [d["_id"] for d in r["discussions"]] == [ids["apple talk"]]

    # A private parent's discussions are for those who may read it.
    group = alice.groups_create("hidden")["group"]
    alice.rooms_create_discussion(group["_id"], "inside")
    r = requests.get(f"{live_url}/api/v1/rooms.getDiscussions", params={"roomId": group["_id"]},
                     headers=rc_client("eve").headers)
    assert r.status_code == 400 and r.json()["errorType"] == "error-room-not-found"
    r = requests.get(f"{live_url}/api/v1/rooms.getDiscussions", params={}, headers=alice.headers)
    assert r.status_code == 400 and r.json()["success"] is False
