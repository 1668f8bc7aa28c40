"""teams.* over the live server (unmodified rocketchat_API client, plain requests where it has no method)."""

from __future__ import annotations

import requests

from tests.rooms.room_helpers import api_error, membership


def _get(live_url: str, rc, call: str, **params) -> requests.Response:
    return requests.get(f"{live_url}/api/v1/{call}", params=params, headers=rc.headers)


def test_create_info_list_and_main_room(live_url, make_user, rc_client):
    alice, bob = make_user("alice"), make_user("bob")
    make_user("carol")
    rc = rc_client("alice")
    made = rc.teams_create("crew", 0, members=["bob", bob.id, "ghost"])
    assert made["success"] is True
    team = made["team"]
    assert team["name"] == "crew" and team["type"] == 0
    assert team["createdBy"] == {"_id": alice.id, "username": "alice"} and team["createdAt"]
    room = rc.channels_info(room_id=team["roomId"])["channel"]
    assert room["t"] == "c" and room["name"] == "crew" and room["teamMain"] is True and room["teamId"] == team["_id"]
    assert membership(team["roomId"], "alice").roles == ["owner"]
    assert membership(team["roomId"], "bob").state == "joined"
    assert membership(team["roomId"], "carol") is None

    info = rc.teams_info(team_id=team["_id"])
    assert info["teamInfo"]["_id"] == team["_id"] and info["teamInfo"]["roomId"] == team["roomId"]
    assert rc_client("carol").teams_info(team_name="crew")["teamInfo"]["_id"] == team["_id"]  # public team
    r = _get(live_url, rc, "teams.info", teamName="nope")
    assert r.status_code == 400 and r.json()["error"] == "Team not found"

    private = rc.teams_create("insiders", 1)["team"]
    assert rc.groups_info(room_id=private["roomId"])["group"]["teamMain"] is True
    status, body = api_error(rc_client("carol").teams_info, team_id=private["_id"])
    assert status == 403 and body["error"] == "unauthorized"

    listed = _get(live_url, rc, "teams.list").json()
    assert listed["total"] == 2 and listed["count"] == 2 and listed["offset"] == 0
    crew = next(t for t in listed["teams"] if t["name"] == "crew")
    assert crew["numberOfUsers"] == 2 and crew["rooms"] == 1
    assert [t["name"] for t in _get(live_url, rc_client("bob"), "teams.list").json()["teams"]] == ["crew"]
    assert _get(live_url, rc_client("carol"), "teams.list").json()["teams"] == []

    # A taken name, a name of a room, a bad type, no permission.
    _, body = api_error(rc.teams_create, "crew", 0)
    assert body["error"] == "team-name-already-exists"
    rc.channels_create("plain")
    _, body = api_error(rc.teams_create, "plain", 0)
    assert body["error"] == "room-name-already-exists"
    _, body = api_error(rc.teams_create, "other", 7)
    assert body["errorType"] == "error-invalid-params"
    from accounts.models import Permission

    Permission.objects.get(id="create-team").roles.remove("user")
    status, body = api_error(rc_client("carol").teams_create, "mine", 0)
    assert status == 403 and body["error"] == "unauthorized"


def test_list_all_needs_view_all_teams(live_url, make_user, rc_client):
    make_user("alice")
    make_user("admin", roles=("admin", "user"))
    rc_client("alice").teams_create("one", 1)
    status, body = api_error(rc_client("alice").teams_list_all)
    assert status == 403 and body["error"] == "unauthorized"
    everything = _get(live_url, rc_client("admin"), "teams.listAll").json()
    assert [t["name"] for t in everything["teams"]] == ["one"] and everything["total"] == 1


def test_members_add_update_remove_leave(live_url, make_user, rc_client):
    bob, carol = make_user("bob"), make_user("carol")
    make_user("alice")
    make_user("dave")
    rc = rc_client("alice")
    team = rc.teams_create("squad", 1)["team"]
    tid, main = team["_id"], team["roomId"]

    # A plain outsider may not add members.
    status, body = api_error(rc_client("dave").teams_add_members, team_id=tid, members=[{"userId": carol.id}])
    assert status == 403 and body["error"] == "unauthorized"
    assert rc.teams_add_members(team_id=tid, members=[{"userId": bob.id, "roles": ["moderator"]},
                                                      {"userId": carol.id}])["success"] is True
    assert membership(main, "bob").roles == ["moderator"] and membership(main, "carol").state == "joined"
    _, body = api_error(rc.teams_add_members, team_id=tid, members=[{"userId": "no-such-user"}])
    assert body["error"] == "invalid-user"
    _, body = api_error(rc.teams_add_members, team_id="no-such-team", members=[{"userId": bob.id}])
    assert body["error"] == "team-does-not-exist" and body["success"] is False

    members = list(rc.teams_members(team_id=tid))
    assert [m["user"]["username"] for m in members] == ["alice", "bob", "carol"]
    assert members[1]["roles"] == ["moderator"] and members[1]["createdBy"]["username"] == "alice"
    assert [m["user"]["username"] for m in rc.teams_members(team_id=tid, username="car")] == ["carol"]
    # Not a member of a private team, no view-all-teams: nothing to see.
    assert list(rc_client("dave").teams_members(team_id=tid)) == []

    # Roles: a moderator (edit-team-member through the main room's role) makes carol an owner.
    rc_client("bob").teams_update_member(team_id=tid, member={"userId": carol.id, "roles": ["owner"]})
    assert membership(main, "carol").roles == ["owner"]
    rc.teams_update_member(team_id=tid, member={"userId": bob.id, "roles": []})
    assert membership(main, "bob").roles == []
    _, body = api_error(rc.teams_update_member, team_id=tid, member={"userId": bob.id, "roles": ["king"]})
    assert body["errorType"] == "error-invalid-role"
    status, body = api_error(rc_client("bob").teams_update_member, team_id=tid,
                             member={"userId": bob.id, "roles": ["owner"]})
    assert status == 403

    # Removing: a member goes; a non-member is an error.
    rc.teams_remove_member(team_id=tid, user_id=bob.id)
    assert membership(main, "bob").state == "left"
    _, body = api_error(rc.teams_remove_member, team_id=tid, user_id=bob.id)
    assert body["error"] == "member-does-not-exist"

    # Leaving: carol may (alice still owns it); then alice, the only owner, may not.
    r = requests.post(f"{live_url}/api/v1/teams.leave", json={"teamName": "squad"}, headers=rc_client("carol").headers)
    assert r.status_code == 200 and r.json()["success"] is True
    assert membership(main, "carol").state == "left"
    r = requests.post(f"{live_url}/api/v1/teams.leave", json={"teamId": tid}, headers=rc.headers)
    assert r.status_code == 400 and r.json()["error"] == "last-owner-can-not-be-removed"
    assert membership(main, "alice").state == "joined"


def test_team_rooms(live_url, make_user, rc_client):
    make_user("alice"), make_user("bob")
    carol = make_user("carol")
    rc = rc_client("alice")
    team = rc.teams_create("guild", 0, members=["bob"])["team"]
    tid = team["_id"]
    pub = rc.channels_create("guild-news")["channel"]
    priv = rc.groups_create("guild-council")["group"]
    bobs = rc_client("bob").channels_create("bobs-corner")["channel"]

    added = rc.teams_add_rooms(team_id=tid, rooms=[pub["_id"], priv["_id"]])
    assert sorted(r["_id"] for r in added["rooms"]) == sorted([pub["_id"], priv["_id"]])
    assert all(r["teamId"] == tid for r in added["rooms"])
    assert rc.channels_info(room_id=pub["_id"])["channel"]["teamId"] == tid
    notices = [m for m in rc.channels_history(team["roomId"]) if m.get("t") == "user-added-room-to-team"]
    assert [m["msg"] for m in notices] == ["guild-news"]  # public rooms only, as Rocket.Chat

    _, body = api_error(rc.teams_add_rooms, team_id=tid, rooms=[pub["_id"]])
    assert body["error"] == "room-already-on-team"
    _, body = api_error(rc.teams_add_rooms, team_id=tid, rooms=[bobs["_id"]])  # alice does not own it
    assert body["error"] == "error-no-owner-channel"
    _, body = api_error(rc.teams_add_rooms, team_id=tid, rooms=["no-such-room"])
    assert body["error"] == "invalid-room"
    status, body = api_error(rc_client("bob").teams_add_rooms, team_id=tid, rooms=[bobs["_id"]])
    assert status == 403 and body["error"] == "error-no-permission-team-channel"

    # Listing: alice (owner: view-all-team-channels) sees both; bob sees the public one only.
    assert sorted(r["name"] for r in rc.teams_list_rooms(team_id=tid)) == ["guild-council", "guild-news"]
    assert [r["name"] for r in rc_client("bob").teams_list_rooms(team_id=tid)] == ["guild-news"]
    assert [r["name"] for r in rc.teams_list_rooms(team_id=tid, name="council")] == ["guild-council"]

    # A default room takes every member in, and later members too.
    updated = rc.teams_update_room(priv["_id"], True)["room"]
    assert updated["teamDefault"] is True
    assert membership(priv["_id"], "bob").state == "joined"
    assert [r["name"] for r in rc.teams_list_rooms(team_id=tid, room_type="autoJoin")] == ["guild-council"]
    rc.teams_add_members(team_id=tid, members=[{"userId": carol.id}])
    assert membership(priv["_id"], "carol").state == "joined"
    _, body = api_error(rc.teams_update_room, bobs["_id"], True)
    assert body["error"] == "room-not-on-team"

    # Removing a room: it stays, out of the team; the main room cannot be removed.
    removed = rc.teams_remove_room(team_id=tid, room_id=pub["_id"])["room"]
    assert removed["_id"] == pub["_id"] and "teamId" not in removed
    _, body = api_error(rc.teams_remove_room, team_id=tid, room_id=pub["_id"])
    assert body["error"] == "room-not-on-that-team"
    _, body = api_error(rc.teams_remove_room, team_id=tid, room_id=team["roomId"])
    assert body["error"] == "room-not-on-that-team"

    # Autocomplete finds the team by its main room's name.
    found = rc_client("carol").teams_autocomplete("gui")["teams"]
    assert [(t["name"], t["teamId"]) for t in found] == [("guild", tid)]


def test_delete_team(live_url, make_user, rc_client):
    from rooms.models import Room, Team

    make_user("alice"), make_user("bob")
    rc = rc_client("alice")
    team = rc.teams_create("band", 0, members=["bob"])["team"]
    keep = rc.channels_create("band-keep")["channel"]
    drop = rc.channels_create("band-drop")["channel"]
    rc.teams_add_rooms(team_id=team["_id"], rooms=[keep["_id"], drop["_id"]])

    status, body = api_error(rc_client("bob").teams_delete, team_id=team["_id"])
    assert status == 403 and body["error"] == "unauthorized"
    assert rc.teams_delete(team_id=team["_id"], roomsToRemove=[drop["_id"]])["success"] is True
    assert not Team.objects.filter(id=team["_id"]).exists()
    assert not Room.objects.filter(id__in=[team["roomId"], drop["_id"]]).exists()
    kept = Room.objects.get(id=keep["_id"])
    assert kept.team_id is None
    _, body = api_error(rc.teams_info, team_id=team["_id"])
    assert body["error"] == "Team not found"


def test_a_federated_room_may_join_a_team(live_url, make_user, rc_client):
    from federation.models import MatrixRoom

    make_user("alice")
    rc = rc_client("alice")
    team = rc.teams_create("mixed", 0)["team"]
    bridged = rc.channels_create("bridged-room")["channel"]
    MatrixRoom.objects.create(room_id="!bridged:remote.example", room_version="11", chat_room_id=bridged["_id"])
    added = rc.teams_add_rooms(team_id=team["_id"], rooms=[bridged["_id"]])["rooms"]
    assert added[0]["federated"] is True and added[0]["teamId"] == team["_id"]
