"""groups.* through the unmodified rocketchat-api client: private rooms never leak to non-members."""

from __future__ import annotations

from tests.rooms.room_helpers import api_error, membership, post


def _uid(username: str) -> str:
    from accounts.models import User

    return User.objects.get(username=username).id


def test_private_group_is_invisible_to_non_members(live_url, make_user, rc_client):
    make_user("alice"), make_user("bob"), make_user("eve")
    owner, eve = rc_client("alice"), rc_client("eve")
    created = owner.groups_create("secret", members=["bob"])
    assert created["success"] is True and created["group"]["t"] == "p"
    rid = created["group"]["_id"]
    post("alice", rid, "classified")

    for call, args, kwargs in [
        (eve.groups_info, (), {"room_id": rid}), (eve.groups_info, (), {"room_name": "secret"}),
        (eve.call_api_get, ("groups.history",), {"roomId": rid}), (eve.groups_members, (), {"room_id": rid}),
        (eve.groups_roles, (), {"room_id": rid}), (eve.call_api_get, ("groups.counters",), {"roomId": rid}),
        (eve.call_api_get, ("groups.messages",), {"roomId": rid}),
        (eve.groups_leave, (rid,), {}), (eve.groups_set_topic, (rid, "x"), {}),
        (eve.groups_invite, (rid, _uid("eve")), {}), (eve.groups_kick, (rid, _uid("bob")), {}),
        (eve.groups_archive, (rid,), {}), (eve.groups_delete, (), {"room_id": rid}),
        (eve.groups_add_owner, (rid, _uid("eve")), {}), (eve.groups_open, (rid,), {}),
        # Through the other families too.
        (eve.channels_info, (), {"room_id": rid}), (eve.call_api_get, ("channels.history",), {"roomId": rid}),
        (eve.channels_join, (rid, None), {}), (eve.call_api_get, ("dm.history",), {"roomId": rid}),
        (eve.call_api_post, ("rooms.muteUser",), {"roomId": rid, "userId": _uid("bob")}),
    ]:
        _status, body = api_error(call, *args, **kwargs)
        assert body["errorType"] == "error-room-not-found", (call, body)
        assert "classified" not in str(body)
    assert membership(rid, "eve") is None
    assert list(eve.groups_list()) == []

    # Members see it all.
    bob = rc_client("bob")
    assert bob.groups_info(room_id=rid)["group"]["name"] == "secret"
    assert "classified" in [m["msg"] for m in bob.groups_history(rid)]
    assert [g["_id"] for g in bob.groups_list()] == [rid]
    assert {m["username"] for m in bob.groups_members(room_id=rid)} == {"alice", "bob"}


def test_group_membership_and_list_all(live_url, make_user, admin_user, rc_client):
    make_user("alice"), make_user("bob"), make_user("carol")
    owner, bob, carol = rc_client("alice"), rc_client("bob"), rc_client("carol")
    rid = owner.groups_create("team")["group"]["_id"]
    other = bob.groups_create("bobs")["group"]["_id"]

    owner.groups_invite(rid, _uid("carol"))
    assert membership(rid, "carol").state == "joined"
    assert [m["msg"] for m in carol.groups_history(rid) if m.get("t") == "au"] == ["carol"]
    assert carol.groups_leave(rid)["success"] is True
    assert membership(rid, "carol").state == "left"
    # Once out, a private group is invisible again and cannot be re-entered alone.
    _, body = api_error(carol.groups_info, room_id=rid)
    assert body["errorType"] == "error-room-not-found"

    # groups.listAll needs view-room-administration.
    status, _ = api_error(owner.call_api_get, "groups.listAll")
    assert status == 400
    everything = rc_client("admin").call_api_get("groups.listAll")
    assert {g["_id"] for g in everything["groups"]} == {rid, other} and everything["total"] == 2
    # An admin may read any private group (Rocket.Chat's view-room-administration).
    assert rc_client("admin").groups_info(room_id=rid)["group"]["_id"] == rid

    owner.groups_add_moderator(rid, _uid("alice"))
    owner.groups_set_description(rid, "desc")
    owner.groups_set_announcement(rid, "ann")
    assert owner.groups_rename(rid, "team2")["group"]["name"] == "team2"
    assert owner.groups_set_read_only(rid, True)["group"]["ro"] is True
    assert owner.groups_archive(rid)["success"] is True
    owner.groups_unarchive(rid)
    assert owner.groups_set_type(rid, "c")["group"]["t"] == "c"
    assert owner.channels_info(room_id=rid)["channel"]["description"] == "desc"
    owner.channels_set_type(rid, "p")
    assert owner.groups_delete(room_id=rid)["success"] is True
    _, body = api_error(owner.groups_info, room_id=rid)
    assert body["errorType"] == "error-room-not-found"
