"""channels.* through the unmodified rocketchat-api client against the live server."""

from __future__ import annotations

import json

import requests

from tests.rooms.room_helpers import api_error, membership, post


def test_create_info_list_and_membership_rows(live_url, make_user, rc_client):
    alice, bob = make_user("alice"), make_user("bob")
    make_user("carol")
    rc = rc_client("alice")
    created = rc.channels_create("general", members=["bob"], readOnly=False)
    assert created["success"] is True
    channel = created["channel"]
    assert channel["t"] == "c" and channel["name"] == "general" and channel["u"]["username"] == "alice"
    rid = channel["_id"]
    assert membership(rid, "alice").state == "joined" and membership(rid, "alice").roles == ["owner"]
    assert membership(rid, "bob").state == "joined" and membership(rid, "bob").roles == []
    assert membership(rid, "carol") is None

    by_id = rc.channels_info(room_id=rid)["channel"]
    by_name = rc.channels_info(channel="general")["channel"]
    assert by_id["_id"] == by_name["_id"] == rid
    assert by_id["usersCount"] == 2

    carol = rc_client("carol")
    assert [c["name"] for c in carol.channels_list()] == ["general"]
    assert list(carol.channels_list_joined()) == []
    assert [c["_id"] for c in rc_client("bob").channels_list_joined()] == [rid]
    raw = carol.call_api_get("channels.list", count=10)
    assert raw["total"] == 1 and raw["count"] == 1 and raw["offset"] == 0

    roles = rc.channels_roles(room_id=rid)["roles"]
    assert roles == [{"_id": membership(rid, "alice").id, "rid": rid,
                      "u": {"_id": alice.id, "username": "alice", "name": "Alice"}, "roles": ["owner"]}]
    members = rc.call_api_get("channels.members", roomId=rid)
    assert members["total"] == 2
    assert [m["username"] for m in members["members"]] == ["alice", "bob"]
    assert "status" in members["members"][0]
    assert bob.id in {m["_id"] for m in members["members"]}


def test_join_leave_invite_kick(live_url, make_user, rc_client):
    make_user("alice"), make_user("bob"), make_user("carol")
    owner, bob, carol = rc_client("alice"), rc_client("bob"), rc_client("carol")
    rid = owner.channels_create("lobby")["channel"]["_id"]

    assert bob.channels_join(rid, None)["channel"]["_id"] == rid
    assert membership(rid, "bob").state == "joined"
    # Joining twice is harmless.
    bob.channels_join(rid, None)

    # A plain member may not add or remove people.
    carol_id = membership_user_id("carol")
    status, body = api_error(bob.channels_invite, rid, carol_id)
    assert status == 400 and body["errorType"] == "error-not-allowed"
    status, _ = api_error(bob.channels_kick, rid, membership(rid, "alice").user_id)
    assert status == 400

    owner.channels_invite(rid, carol_id)
    assert membership(rid, "carol").state == "joined"
    owner.channels_kick(rid, carol_id)
    assert membership(rid, "carol").state == "left"
    # Kicked (not banned): may rejoin a public channel.
    carol.channels_join(rid, None)
    assert membership(rid, "carol").state == "joined"

    assert bob.channels_leave(rid)["success"] is True
    assert membership(rid, "bob").state == "left"
    _, body = api_error(bob.channels_leave, rid)
    assert body["errorType"] == "error-user-not-in-room"

    # The last owner must hand over before leaving.
    _, body = api_error(owner.channels_leave, rid)
    assert body["errorType"] == "error-you-are-last-owner"
    owner.channels_add_owner(rid, user_id=carol_id)
    owner.channels_leave(rid)
    assert membership(rid, "alice").state == "left"

    # System messages record what happened.
    kinds = [m.get("t") for m in carol.channels_history(rid)]
    assert {"uj", "au", "ru", "ul"} <= set(kinds)


def membership_user_id(username: str) -> str:
    from accounts.models import User

    return User.objects.get(username=username).id


def test_history_order_bounds_threads_and_tombstones(live_url, make_user, rc_client):
    make_user("alice"), make_user("bob")
    rc = rc_client("alice")
    rid = rc.channels_create("talk", members=["bob"])["channel"]["_id"]
    first = post("alice", rid, "one")
    second = post("bob", rid, "two")
    post("alice", rid, "hidden reply", thread_root_id=first.id)
    post("alice", rid, "shown reply", thread_root_id=first.id, show_in_room=True)
    doomed = post("bob", rid, "to be deleted")
    from accounts.models import User
    from rooms.actions.messages import do_delete_message

    do_delete_message(User.objects.get(username="bob"), doomed)
    last = post("alice", rid, "three")

    messages = rc.call_api_get("channels.history", roomId=rid, count=100)["messages"]
    texts = [m["msg"] for m in messages if not m.get("t")]
    # Newest first; the thread reply not sent to the room is left out; the deleted one is a tombstone.
    assert texts == ["three", "", "shown reply", "two", "one"]
    tomb = next(m for m in messages if m["_id"] == doomed.id)
    assert tomb["deleted"] is True and tomb["msg"] == ""
    with_threads = rc.call_api_get("channels.history", roomId=rid, count=100, showThreadMessages="true")
    assert "hidden reply" in [m["msg"] for m in with_threads["messages"]]

    # count / offset, and the client's paginated iterator walks every page.
    page = rc.call_api_get("channels.history", roomId=rid, count=2, offset=1)["messages"]
    assert [m["_id"] for m in page] == [m["_id"] for m in messages[1:3]]
    assert [m["_id"] for m in rc.channels_history(rid, count=2)] == [m["_id"] for m in messages]

    # latest / oldest are exclusive unless inclusive.
    between = rc.call_api_get("channels.history", roomId=rid, latest=_iso(last.created_at),
                              oldest=_iso(second.created_at), count=100)["messages"]
    ids = [m["_id"] for m in between]
    assert last.id not in ids and second.id not in ids and doomed.id in ids
    inclusive = rc.call_api_get("channels.history", roomId=rid, latest=_iso(last.created_at),
                                oldest=_iso(second.created_at), inclusive="true", count=100)["messages"]
    assert {last.id, second.id} <= {m["_id"] for m in inclusive}

    # unreads: bob has not read alice's last messages.
    bob_view = rc_client("bob").call_api_get("channels.history", roomId=rid, count=1, unreads="true")
    assert bob_view["firstUnread"]["_id"] == last.id
    assert bob_view["unreadNotLoaded"] == 0

    status, body = api_error(rc.call_api_get, "channels.history", roomId=rid, latest="not-a-date")
    assert status == 400 and body["errorType"] == "error-invalid-params"


def _iso(dt) -> str:
    return dt.isoformat(timespec="microseconds").replace("+00:00", "Z")


def test_settings_archive_and_delete(live_url, make_user, rc_client):
    make_user("alice"), make_user("bob")
    owner, bob = rc_client("alice"), rc_client("bob")
    rid = owner.channels_create("settings", members=["bob"])["channel"]["_id"]

    assert owner.channels_set_topic(rid, "Topic!")["topic"] == "Topic!"
    assert owner.channels_set_description(rid, "About")["description"] == "About"
    assert owner.channels_set_announcement(rid, "News")["announcement"] == "News"
    assert owner.channels_set_topic(rid, "")["topic"] == ""
    renamed = owner.channels_rename(rid, "renamed")["channel"]
    assert renamed["name"] == "renamed"
    assert owner.channels_info(channel="renamed")["channel"]["description"] == "About"
    assert owner.channels_set_read_only(rid, True)["channel"]["ro"] is True
    _, body = api_error(owner.channels_set_read_only, rid, True)
    assert body["errorType"] == "error-invalid-params"

    # A plain member may change none of it.
    for call, args in [(bob.channels_set_topic, (rid, "x")), (bob.channels_rename, (rid, "mine")),
                       (bob.channels_set_read_only, (rid, False)), (bob.channels_archive, (rid,)),
                       (bob.channels_delete, (rid,)), (bob.channels_set_type, (rid, "p"))]:
        status, body = api_error(call, *args)
        assert status == 400 and body["errorType"] == "error-not-allowed"

    # Read-only: the plain member cannot post, the owner can.
    from chat.api_errors import NotAllowed

    try:
        post("bob", rid, "hello")
        raise AssertionError("posting into a read-only room must fail")
    except NotAllowed as exc:
        assert exc.error_type == "error-room-read-only"
    post("alice", rid, "owners may")
    _, body = api_error(bob.chat_post_message, "hello", room_id=rid)
    assert body["errorType"] == "error-room-read-only"
    assert owner.chat_post_message("owners may, through the API", room_id=rid)["success"] is True

    assert owner.channels_archive(rid)["success"] is True
    assert owner.channels_info(room_id=rid)["channel"]["archived"] is True
    _, body = api_error(owner.channels_archive, rid)
    assert body["errorType"] == "error-room-archived"
    owner.channels_unarchive(rid)
    assert owner.channels_info(room_id=rid)["channel"]["archived"] is False

    # setType: the channel becomes a private group and is no longer a "channel".
    assert owner.channels_set_type(rid, "p")["channel"]["t"] == "p"
    api_error(owner.channels_info, room_id=rid)
    assert owner.groups_info(room_id=rid)["group"]["t"] == "p"
    owner.groups_set_type(rid, "c")

    assert owner.channels_delete(room_id=rid)["success"] is True
    from rooms.models import Membership, Room

    assert not Room.objects.filter(id=rid).exists()
    assert not Membership.objects.filter(room_id=rid).exists()
    _, body = api_error(owner.channels_info, room_id=rid)
    assert body["errorType"] == "error-room-not-found"


def test_room_roles(live_url, make_user, rc_client):
    make_user("alice"), make_user("bob"), make_user("carol")
    owner, bob = rc_client("alice"), rc_client("bob")
    rid = owner.channels_create("roles", members=["bob"])["channel"]["_id"]
    bob_id, carol_id = membership_user_id("bob"), membership_user_id("carol")

    assert owner.channels_add_moderator(rid, bob_id)["success"] is True
    assert membership(rid, "bob").roles == ["moderator"]
    assert [m["username"] for m in owner.channels_moderators(room_id=rid)["moderators"]] == ["bob"]
    # A moderator may edit the room but may not make owners.
    bob.channels_set_topic(rid, "by a moderator")
    status, _ = api_error(bob.channels_add_owner, rid, user_id=bob_id)
    assert status == 400
    owner.channels_add_leader(rid, bob_id)
    owner.channels_add_owner(rid, user_id=bob_id)
    assert set(membership(rid, "bob").roles) == {"moderator", "leader", "owner"}
    roles = {r["u"]["username"]: set(r["roles"]) for r in owner.channels_roles(room_id=rid)["roles"]}
    assert roles == {"alice": {"owner"}, "bob": {"moderator", "leader", "owner"}}

    owner.channels_remove_moderator(rid, bob_id)
    owner.channels_remove_leader(rid, bob_id)
    owner.channels_remove_owner(rid, bob_id)
    assert membership(rid, "bob").roles == []
    _, body = api_error(owner.channels_remove_owner, rid, bob_id)
    assert body["errorType"] == "error-user-not-owner"
    _, body = api_error(owner.channels_remove_owner, rid, membership_user_id("alice"))
    assert body["errorType"] == "error-remove-last-owner"
    _, body = api_error(owner.channels_add_moderator, rid, carol_id)
    assert body["errorType"] == "error-user-not-in-room"


def test_counters_open_close_and_messages(live_url, make_user, rc_client):
    make_user("alice"), make_user("bob")
    owner, bob = rc_client("alice"), rc_client("bob")
    rid = owner.channels_create("count", members=["bob"])["channel"]["_id"]
    post("alice", rid, "hi @bob")
    post("alice", rid, "again")
    counters = bob.channels_counters(room_id=rid)
    assert counters["joined"] is True and counters["members"] == 2
    # msgs counts the system message too ("au": bob was added), as Rocket.Chat's room counter
    # does; unreads counts only what members wrote.
    assert counters["unreads"] == 2 and counters["userMentions"] == 1 and counters["msgs"] == 3

    assert bob.channels_close(rid)["success"] is True
    assert membership(rid, "bob").open is False
    _, body = api_error(bob.channels_close, rid)
    assert body["errorType"] == "error-room-already-closed"
    bob.channels_open(rid)
    assert membership(rid, "bob").open is True

    msgs = bob.call_api_get("channels.messages", roomId=rid)
    # System messages ("au": bob was added) are messages too, as in Rocket.Chat.
    assert msgs["total"] == 3 and [m["msg"] for m in msgs["messages"]] == ["again", "hi @bob", "bob"]
    assert msgs["messages"][2]["t"] == "au"
    oldest_first = bob.call_api_get("channels.messages", roomId=rid, sort='{"ts":1}', count=2)
    assert [m["msg"] for m in oldest_first["messages"]] == ["bob", "hi @bob"]
    assert oldest_first["total"] == 3 and oldest_first["count"] == 2
    mentions = bob.call_api_get("channels.messages", roomId=rid,
                                query=json.dumps({"mentions._id": membership_user_id("bob")}))
    assert [m["msg"] for m in mentions["messages"]] == ["hi @bob"]
    api_error(bob.call_api_get, "channels.messages", roomId=rid, query='{"$where":"1"}')


def test_bad_input_is_a_rocketchat_error(live_url, make_user, rc_client):
    make_user("alice"), make_user("bob")
    rc = rc_client("alice")
    rid = rc.channels_create("taken")["channel"]["_id"]
    _, body = api_error(rc.channels_create, "taken")
    assert body["errorType"] == "error-duplicate-channel-name"
    _, body = api_error(rc.channels_create, "bad name!")
    assert body["errorType"] == "error-invalid-room-name"
    _, body = api_error(rc.channels_create, "x", members=["nobody-here"])
    assert body["errorType"] == "error-invalid-user"
    _, body = api_error(rc.channels_info, room_id="no-such-room")
    assert body["errorType"] == "error-room-not-found"
    _, body = api_error(rc.channels_invite, rid, "no-such-user")
    assert body["errorType"] == "error-invalid-user"
    _, body = api_error(rc.channels_rename, rid, "taken")
    assert body["errorType"] == "error-invalid-room-name"
    api_error(rc.channels_set_type, rid, "d")
    api_error(rc.call_api_get, "channels.history", roomId=rid, count="many")
    # Missing and wrongly typed parameters, raw.
    headers = {**rc.headers, "Content-Type": "application/json"}
    for call, payload in [("channels.create", {}), ("channels.create", {"name": ["list"]}),
                          ("channels.setTopic", {"roomId": rid}), ("channels.setReadOnly", {"roomId": rid}),
                          ("channels.setReadOnly", {"roomId": rid, "readOnly": "maybe"}),
                          ("channels.invite", {"roomId": rid}), ("channels.kick", {}),
                          ("channels.create", {"name": "ok", "extraData": "nope"}),
                          ("channels.create", {"name": "y" * 500})]:
        r = requests.post(f"{live_url}/api/v1/{call}", json=payload, headers=headers)
        assert 400 <= r.status_code < 500, (call, payload, r.status_code, r.text)
        assert r.json()["success"] is False
    r = requests.get(f"{live_url}/api/v1/channels.info")
    assert r.status_code == 401


def test_files(live_url, make_user, rc_client):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from accounts.models import User
    from rooms.actions.messages import do_delete_message
    from rooms.actions.uploads import do_confirm_upload, do_upload
    from rooms.models import Room

    alice = make_user("alice")
    rc = rc_client("alice")
    rid = rc.channels_create("shared")["channel"]["_id"]
    room = Room.objects.get(id=rid)
    kept = do_upload(alice, room, SimpleUploadedFile("notes.txt", b"hello", content_type="text/plain"))
    do_confirm_upload(alice, kept)
    gone = do_upload(alice, room, SimpleUploadedFile("gone.txt", b"bye", content_type="text/plain"))
    do_delete_message(User.objects.get(id=alice.id), do_confirm_upload(alice, gone))
    do_upload(alice, room, SimpleUploadedFile("draft.txt", b"unsent", content_type="text/plain"))
    files = rc.call_api_get("channels.files", roomId=rid)
    assert files["total"] == 1 and [f["name"] for f in files["files"]] == ["notes.txt"]
    assert files["files"][0]["user"]["username"] == "alice"


def test_no_call_answers_500(live_url, make_user, rc_client):
    """Every room-level route, with missing, mistyped and absurd input, answers JSON 4xx (or 200)."""
    from rooms.api.urls_rooms import urlpatterns

    make_user("alice")
    rc = rc_client("alice")
    rid = rc.channels_create("fuzz")["channel"]["_id"]
    headers = {**rc.headers, "Content-Type": "application/json"}
    bodies = [{}, {"roomId": {"a": 1}, "userId": [1], "name": 5, "members": "x", "usernames": {"a": 1}},
              {"roomId": rid, "userId": "nobody", "userIds": {"x": 1}, "topic": ["t"], "readOnly": 3,
               "type": "zz", "name": "", "extraData": [], "username": 7, "roomName": "x" * 20000},
              {"roomId": rid, "userId": "a\x00b", "name": "n\x00", "topic": "t\x00", "members": ["\x00"]}]
    queries = ["", f"roomId={rid}&count=-1&offset=x", f"roomId={rid}&latest=2024-13-45T00:00:00Z&query={{bad",
               f"roomId={rid}&sort={{\"msg\":1}}&status[]=online", "roomName=%00&username=nobody"]
    session = requests.Session()
    # Deleting routes last, so that the others meet an existing room.
    routes = [p for p in urlpatterns if not str(p.pattern).startswith("im.")]  # im.* are dm.*'s views
    for pattern in sorted(routes, key=lambda p: str(p.pattern).endswith(".delete")):
        url = f"{live_url}/api/v1/{pattern.pattern}"
        for body in bodies:
            r = session.post(url, json=body, headers=headers)
            assert r.status_code < 500 and "success" in r.json(), (url, body, r.status_code, r.text[:300])
        for query in queries:
            r = session.get(f"{url}?{query}", headers=rc.headers)
            assert r.status_code < 500 and "success" in r.json(), (url, query, r.status_code, r.text[:300])


def test_offset_beyond_the_database_limit_is_a_rocketchat_error(live_url, make_user, rc_client):
    """An offset past 64 bits used to reach the database and answer 500 ("datatype mismatch")."""
    from chat.api import MAX_OFFSET

    make_user("alice")
    rc = rc_client("alice")
    rid = rc.channels_create("paged")["channel"]["_id"]
    post("alice", rid, "hello")
    huge = "9" * 30
    for call, params in [("channels.history", {"roomId": rid}), ("channels.messages", {"roomId": rid}),
                         ("channels.list", {}), ("groups.list", {}),
                         ("chat.search", {"roomId": rid, "searchText": "h"}),
                         ("chat.getDeletedMessages", {"roomId": rid, "since": "2020-01-01T00:00:00Z"})]:
        _, body = api_error(rc.call_api_get, call, offset=huge, **params)
        assert body["errorType"] == "error-invalid-params", (call, body)
        api_error(rc.call_api_get, call, offset=MAX_OFFSET + 1, **params)
        page = rc.call_api_get(call, offset=MAX_OFFSET, **params)
        assert page["success"] is True and page.get("offset", MAX_OFFSET) == MAX_OFFSET, (call, page)
        assert not any(isinstance(v, list) and v for v in page.values()), (call, page)  # past the end: empty
