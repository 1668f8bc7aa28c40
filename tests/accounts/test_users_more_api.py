"""More of Rocket.Chat's users.* through the unmodified client (plain HTTP where it has no call):
username availability, preferences, presence and status, listByStatus, ending other sessions,
personal access tokens; Rocket.Chat's shapes and error types."""

from __future__ import annotations

from typing import Any

import requests

from tests.rooms.room_helpers import api_error


def test_username_availability_preferences_and_status(live_url: str, make_user: Any, rc_client: Any,
                                                      admin_user: Any) -> None:
    make_user("pref")
    make_user("other")
    rc = rc_client("pref")
    check = lambda name: rc.call_api_get("users.checkUsernameAvailability", username=name)["result"]  # noqa: E731
    assert check("pref") is True and check("free.name") is True
    assert check("other") is False and check("OTHER") is False and check("bad name!") is False
    status, body = api_error(rc.call_api_get, "users.checkUsernameAvailability")
    assert status == 400 and body["errorType"] == "invalid-params"

    prefs = rc.users_get_preferences()["preferences"]
    assert prefs["sendOnEnter"] == "normal" and prefs["useEmojis"] is True
    me = rc.me()["_id"]
    answer = rc.users_set_preferences(me, {"useEmojis": False, "highlights": ["deploy"], "language": "fr"})
    assert answer["user"]["_id"] == me and answer["user"]["settings"]["preferences"]["useEmojis"] is False
    prefs = rc.users_get_preferences()["preferences"]
    assert (prefs["useEmojis"], prefs["highlights"], prefs["language"], prefs["sendOnEnter"]) == (
        False, ["deploy"], "fr", "normal")
    for bad in ({"noSuchPreference": 1}, {"useEmojis": "yes"}, {"idleTimeLimit": True}):
        status, body = api_error(rc.users_set_preferences, me, bad)
        assert status == 400 and body["errorType"] == "invalid-params", bad
    other_id = rc.users_info(username="other")["user"]["_id"]
    status, body = api_error(rc.users_set_preferences, other_id, {"useEmojis": False})
    assert status == 400 and body["errorType"] == "error-action-not-allowed"
    assert rc_client(admin_user.username).users_set_preferences(other_id, {"hideRoles": True})["success"]

    rc.users_set_status("Busy now", status="busy")
    st = rc.call_api_get("users.getStatus")
    assert (st["_id"], st["status"], st["message"], st["connectionStatus"]) == (me, "busy", "Busy now", "busy")
    assert rc_client("other").call_api_get("users.getStatus", username="pref")["status"] == "busy"
    presence = rc.call_api_get("users.presence")
    assert presence["full"] is True and "pref" in [u["username"] for u in presence["users"]]
    assert [u["username"] for u in rc.call_api_get("users.presence", ids=me)["users"]] == ["pref"]
    listed = rc.call_api_get("users.listByStatus", status="busy")
    assert [u["username"] for u in listed["users"]] == ["pref"] and listed["total"] == 1
    bots = rc.call_api_get("users.listByStatus", type="bot", searchTerm="zzz")
    assert bots["users"] == [] and bots["total"] == 0
    status, body = api_error(rc.call_api_get, "users.listByStatus", status="sleeping")
    assert status == 400


def test_other_sessions_and_personal_access_tokens(live_url: str, make_user: Any, rc_client: Any) -> None:
    make_user("tok")
    first, second = rc_client("tok"), rc_client("tok")
    pat = first.call_api_post("users.generatePersonalAccessToken", tokenName="ci-bot")["token"]
    uid = first.me()["_id"]
    with_pat = {"X-Auth-Token": pat, "X-User-Id": uid}
    assert requests.get(f"{live_url}/api/v1/me", headers=with_pat, timeout=10).json()["username"] == "tok"
    status, body = api_error(first.call_api_post, "users.generatePersonalAccessToken", tokenName="ci-bot")
    assert body["errorType"] == "error-token-already-exists"
    listed = first.call_api_get("users.getPersonalAccessTokens")["tokens"]
    assert [(t["name"], t["lastTokenPart"], t["bypassTwoFactor"]) for t in listed] == [("ci-bot", pat[-6:], False)]
    assert pat not in str(listed)

    # Logging out the other clients ends the second session, keeps this one and the token.
    answer = first.call_api_post("users.logoutOtherClients")
    assert answer["token"] == first.headers["X-Auth-Token"]
    assert requests.get(f"{live_url}/api/v1/me", headers=dict(second.headers), timeout=10).status_code == 401
    assert first.me()["success"]
    assert requests.get(f"{live_url}/api/v1/me", headers=with_pat, timeout=10).status_code == 200

    renewed = first.call_api_post("users.regeneratePersonalAccessToken", tokenName="ci-bot")["token"]
    assert renewed != pat
    assert requests.get(f"{live_url}/api/v1/me", headers=with_pat, timeout=10).status_code == 401
    assert first.call_api_post("users.removePersonalAccessToken", tokenName="ci-bot")["success"]
    assert requests.get(f"{live_url}/api/v1/me", headers={**with_pat, "X-Auth-Token": renewed},
                        timeout=10).status_code == 401
    status, body = api_error(first.call_api_post, "users.removePersonalAccessToken", tokenName="ci-bot")
    assert body["errorType"] == "error-token-does-not-exists"
    status, body = api_error(first.call_api_post, "users.generatePersonalAccessToken")
    assert status == 400
    third = rc_client("tok")
    assert third.call_api_post("users.removeOtherTokens")["success"]
    assert requests.get(f"{live_url}/api/v1/me", headers=dict(first.headers), timeout=10).status_code == 401


def test_deleting_users_as_rocket_chat_does(live_url: str, make_user: Any, rc_client: Any, admin_user: Any,
                                            settings: Any) -> None:
    from accounts.models import User
    from rooms.models import Membership, Message

    make_user("leaver")
    make_user("heir")
    leaver, heir = rc_client("leaver"), rc_client("heir")
    rid = leaver.channels_create("inherited", members=["heir"])["channel"]["_id"]
    leaver.chat_post_message("my last words", room_id=rid)
    leaver_id = leaver.me()["_id"]
    admin = rc_client(admin_user.username)
    status, body = api_error(heir.users_delete, leaver_id)
    assert status == 403 and body["errorType"] == "error-unauthorized"  # permissionsRequired: delete-user
    status, body = api_error(admin.users_delete, leaver_id)  # sole owner of a room with others
    assert status == 400 and body["errorType"] == "user-last-owner" and body["details"][0]["rid"] == rid
    assert admin.users_delete(leaver_id, confirmRelinquish=True)["success"]
    assert not User.objects.filter(id=leaver_id).exists()
    assert "owner" in Membership.objects.get(room_id=rid, user__username="heir").roles  # ownership passed on
    kept = Message.objects.get(room_id=rid, text="my last words")
    assert kept.user_id is None  # the message stays, unlinked
    status, body = api_error(admin.users_delete, "no-such-id")
    assert status == 400

    # Deleting one's own account: off unless the server allows it; the password is checked.
    make_user("selfdel")
    me = rc_client("selfdel")
    # (a raw body: the client renames a "password" keyword to "pass")
    status, body = api_error(me.call_api_post, "users.deleteOwnAccount", body={"password": "password123"})
    assert status == 400 and body["errorType"] == "error-not-allowed"
    settings.CONCORD_ALLOW_DELETE_OWN_ACCOUNT = True
    for wrong in ({"password": "wrong"}, {}):
        status, body = api_error(me.call_api_post, "users.deleteOwnAccount", body=wrong)
        assert body["errorType"] == "error-invalid-password"
    assert me.call_api_post("users.deleteOwnAccount", body={"password": "password123"})["success"]
    assert not User.objects.filter(username="selfdel").exists()


def test_update_own_basic_info_validates_like_rocket_chat(live_url: str, make_user: Any, rc_client: Any) -> None:
    make_user("basic")
    make_user("taken")
    rc = rc_client("basic")

    def update(**data: Any) -> dict[str, Any]:
        return dict(rc.call_api_post("users.updateOwnBasicInfo", body={"data": data}))

    for data, error_type in (({"email": "new@example.test"}, "error-invalid-password"),
                             ({"email": "new@example.test", "currentPassword": "wrong"}, "error-invalid-password"),
                             ({"newPassword": "Another-pass-1"}, "error-invalid-password"),
                             ({"name": "   "}, "error-invalid-name"),
                             ({"username": "taken"}, "error-field-unavailable"),
                             ({"username": "bad name!"}, "error-invalid-username")):
        status, body = api_error(rc.call_api_post, "users.updateOwnBasicInfo", body={"data": data})
        assert status == 400 and body["errorType"] == error_type, (data, body)
    answer = update(email="new@example.test", currentPassword="password123", name="Basic Person",
                    username="basic2")
    assert answer["user"]["email"] == "new@example.test" and answer["user"]["username"] == "basic2"
    assert update(newPassword="Another-pass-1", currentPassword="password123")["success"]
    assert rc_client("basic2", "Another-pass-1").me()["name"] == "Basic Person"
