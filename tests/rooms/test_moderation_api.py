"""Muting and banning: rooms.muteUser/unmuteUser and rooms.banUser/unbanUser (Rocket.Chat's calls,
which the client has no method for, so they go through ``call_api_post``)."""

from __future__ import annotations

import pytest

from chat.api_errors import NotAllowed
from tests.rooms.room_helpers import api_error, membership, post


def _uid(username: str) -> str:
    from accounts.models import User

    return User.objects.get(username=username).id


def test_muted_member_cannot_post_until_unmuted(live_url, make_user, rc_client):
    make_user("alice"), make_user("bob"), make_user("carol")
    owner, bob = rc_client("alice"), rc_client("bob")
    rid = owner.channels_create("quiet", members=["bob", "carol"])["channel"]["_id"]

    # A plain member may not mute.
    status, body = api_error(bob.call_api_post, "rooms.muteUser", roomId=rid, userId=_uid("carol"))
    assert status == 400 and body["errorType"] == "error-not-allowed"

    assert owner.call_api_post("rooms.muteUser", roomId=rid, username="bob")["success"] is True
    assert membership(rid, "bob").muted is True
    with pytest.raises(NotAllowed) as err:
        post("bob", rid, "can you hear me?")
    assert err.value.error_type == "error-user-muted"
    status, body = api_error(bob.chat_post_message, "through the API", room_id=rid)
    assert status == 400 and body["errorType"] == "error-user-muted"
    # Still reads.
    assert bob.channels_info(room_id=rid)["channel"]["_id"] == rid
    assert list(bob.channels_history(rid))

    # A moderator holds mute-user in the room.
    owner.channels_add_moderator(rid, _uid("carol"))
    rc_client("carol").call_api_post("rooms.unmuteUser", roomId=rid, userId=_uid("bob"))
    assert membership(rid, "bob").muted is False
    assert post("bob", rid, "back").text == "back"
    assert bob.chat_post_message("and through the API", room_id=rid)["success"] is True

    _, body = api_error(owner.call_api_post, "rooms.muteUser", roomId=rid, userId="no-such-user")
    assert body["errorType"] == "error-invalid-user"


def test_banned_user_cannot_rejoin_until_unbanned(live_url, make_user, rc_client):
    make_user("alice"), make_user("bob"), make_user("carol")
    owner, bob, carol = rc_client("alice"), rc_client("bob"), rc_client("carol")
    rid = owner.channels_create("strict", members=["bob", "carol"])["channel"]["_id"]

    status, _ = api_error(carol.call_api_post, "rooms.banUser", roomId=rid, userId=_uid("bob"))
    assert status == 400
    assert owner.call_api_post("rooms.banUser", roomId=rid, userId=_uid("bob"))["success"] is True
    sub = membership(rid, "bob")
    assert sub.banned is True and sub.state == "left"
    _, body = api_error(owner.call_api_post, "rooms.banUser", roomId=rid, userId=_uid("bob"))
    assert body["errorType"] == "error-user-already-banned"

    # Cannot rejoin, cannot be added back, cannot read the channel.
    status, body = api_error(bob.channels_join, rid, None)
    assert status == 400 and body["errorType"] == "error-user-banned"
    _, body = api_error(owner.channels_invite, rid, _uid("bob"))
    assert body["errorType"] == "error-user-banned"
    api_error(bob.channels_history, rid)
    with pytest.raises(NotAllowed):
        post("bob", rid, "let me in")
    api_error(bob.chat_post_message, "let me in", room_id=rid)
    assert membership(rid, "bob").state == "left"

    assert owner.call_api_post("rooms.unbanUser", roomId=rid, username="bob")["success"] is True
    assert membership(rid, "bob").banned is False
    _, body = api_error(owner.call_api_post, "rooms.unbanUser", roomId=rid, username="bob")
    assert body["errorType"] == "error-user-not-banned"
    bob.channels_join(rid, None)
    assert membership(rid, "bob").state == "joined"


def test_ban_in_private_group_and_last_owner(live_url, make_user, rc_client):
    make_user("alice"), make_user("bob")
    owner = rc_client("alice")
    rid = owner.groups_create("closed", members=["bob"])["group"]["_id"]
    owner.call_api_post("rooms.banUser", roomId=rid, userId=_uid("bob"))
    bob = rc_client("bob")
    _, body = api_error(bob.groups_info, room_id=rid)
    assert body["errorType"] == "error-room-not-found"
    _, body = api_error(owner.groups_invite, rid, _uid("bob"))
    assert body["errorType"] == "error-user-banned"
    owner.call_api_post("rooms.unbanUser", roomId=rid, userId=_uid("bob"))
    owner.groups_invite(rid, _uid("bob"))
    assert membership(rid, "bob").state == "joined"

    # The last owner can be neither banned nor kicked (by an admin, who holds the permissions).
    from accounts.actions import do_create_user

    do_create_user("root", "root@example.test", "password123", "Root", roles=["admin", "user"])
    admin = rc_client("root")
    _, body = api_error(admin.call_api_post, "rooms.banUser", roomId=rid, userId=_uid("alice"))
    assert body["errorType"] == "error-you-are-last-owner"
    _, body = api_error(admin.groups_kick, rid, _uid("alice"))
    assert body["errorType"] == "error-you-are-last-owner"
    _, body = api_error(owner.call_api_post, "rooms.banUser", roomId=rid, userId=_uid("alice"))
    assert body["errorType"] == "error-invalid-params"  # cannot ban yourself
