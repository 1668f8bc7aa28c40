"""Login, logout, me, info and users.* through the unmodified rocketchat-api client."""

from __future__ import annotations

import pytest
import requests
from rocketchat_API.APIExceptions.RocketExceptions import RocketApiException, RocketAuthenticationException
from rocketchat_API.rocketchat import RocketChat


def test_login_me_logout(live_url, make_user, rc_client):
    alice = make_user("alice", name="Alice Liddell")
    rc = rc_client("alice")
    me = rc.me()
    assert me["success"] is True
    assert me["_id"] == alice.id
    assert me["username"] == "alice"
    assert me["name"] == "Alice Liddell"
    assert me["emails"][0]["address"] == "alice@example.test"
    token = rc.headers["X-Auth-Token"]
    assert rc.logout()["status"] == "success"
    # The token is revoked: the same headers no longer authenticate.
    r = requests.get(f"{live_url}/api/v1/me", headers={"X-Auth-Token": token, "X-User-Id": alice.id})
    assert r.status_code == 401
    assert r.json()["success"] is False


def test_login_wrong_password(live_url, make_user):
    make_user("bob")
    with pytest.raises(RocketAuthenticationException):
        RocketChat("bob", "not-the-password", server_url=live_url)


def test_login_by_email(live_url, make_user):
    make_user("carol")
    rc = RocketChat("carol@example.test", "password123", server_url=live_url)
    assert rc.me()["username"] == "carol"


def test_info_is_public(live_url):
    r = requests.get(f"{live_url}/api/info")
    assert r.status_code == 200
    assert r.json()["success"] is True
    assert "version" in r.json()


def test_unknown_endpoint_is_json_404_whatever_the_method(live_url, make_user, rc_client):
    make_user("unknowncaller")
    rc = rc_client("unknowncaller")
    s = requests.Session()
    s.get(f"{live_url}/login")  # a browser's cookies (CSRF, session) must not turn it into a 403
    for method in ("GET", "POST", "PUT", "DELETE", "PATCH"):
        for headers in ({}, dict(rc.headers)):
            r = s.request(method, f"{live_url}/api/v1/no.such.call", json={"x": 1}, headers=headers)
            assert r.status_code == 404, (method, r.text[:200])
            assert r.json() == {"success": False, "error": "Unknown API endpoint: /api/v1/no.such.call",
                                "errorType": "error-not-found"}


def test_malformed_json_is_400(live_url, make_user, rc_client):
    make_user("dave")
    rc = rc_client("dave")
    r = requests.post(f"{live_url}/api/v1/users.setStatus", data="{not json",
                      headers={**rc.headers, "Content-Type": "application/json"})
    assert r.status_code == 400
    assert r.json()["success"] is False


def test_users_create_requires_admin(live_url, make_user, admin_user, rc_client):
    make_user("erin")
    with pytest.raises(RocketApiException) as err:
        rc_client("erin").users_create("x@example.test", "X", "password123", "xavier")
    assert err.value.status_code == 400
    admin = rc_client("admin")
    created = admin.users_create("frank@example.test", "Frank", "password123", "frank")
    assert created["success"] is True
    assert created["user"]["username"] == "frank"
    # The new account can log in.
    assert rc_client("frank").me()["username"] == "frank"


def test_users_create_duplicate_username(live_url, admin_user, rc_client):
    admin = rc_client("admin")
    with pytest.raises(RocketApiException) as err:
        admin.users_create("other@example.test", "Admin 2", "password123", "admin")
    assert err.value.response_json["errorType"] == "error-field-unavailable"


def test_users_register_info_list(live_url, make_user, rc_client):
    make_user("gina")
    anon = RocketChat(server_url=live_url)
    reg = anon.users_register("hank@example.test", "Hank", "password123", "hank")
    assert reg["success"] is True and reg["user"]["username"] == "hank"
    gina = rc_client("gina")
    info = gina.users_info(username="hank")
    assert info["user"]["name"] == "Hank"
    assert "emails" not in info["user"]  # another user's email stays private
    names = [u["username"] for u in gina.users_list()]
    assert {"gina", "hank"} <= set(names)


def test_avatar_upload_and_default(live_url, make_user, rc_client, tmp_path):
    from PIL import Image

    make_user("ivy")
    rc = rc_client("ivy")
    # Without an upload, a generated SVG with initials is served.
    r = requests.get(f"{live_url}/avatar/ivy")
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("image/svg+xml")
    path = tmp_path / "me.png"
    Image.new("RGB", (64, 64), (200, 10, 10)).save(path)
    assert rc.users_set_avatar(str(path))["success"] is True
    r = requests.get(f"{live_url}/avatar/ivy")
    assert r.headers["Content-Type"] == "image/png"
    assert Image.open(__import__("io").BytesIO(r.content)).getpixel((5, 5))[:3] == (200, 10, 10)
    # users.getAvatar redirects to the image.
    r = requests.get(f"{live_url}/api/v1/users.getAvatar?username=ivy", headers=rc.headers)
    assert r.headers["Content-Type"] == "image/png"


def test_avatar_rejects_non_image(live_url, make_user, rc_client, tmp_path):
    make_user("jack")
    rc = rc_client("jack")
    path = tmp_path / "evil.png"
    path.write_text("<script>alert(1)</script>")
    with pytest.raises(RocketApiException) as err:
        rc.users_set_avatar(str(path))
    assert err.value.response_json["errorType"] == "error-invalid-avatar"


def test_permissions_and_roles(live_url, make_user, admin_user, rc_client):
    kim = make_user("kim")
    admin = rc_client("admin")
    perms = {p["_id"]: p["roles"] for p in admin.permissions_list_all()["update"]}
    assert "access-federation" in perms and "user" in perms["access-federation"]
    upd = admin.permissions_update(permissions=[{"_id": "access-federation", "roles": ["admin"]}])
    assert upd["success"] is True
    perms = {p["_id"]: p["roles"] for p in admin.permissions_list_all()["update"]}
    assert perms["access-federation"] == ["admin"]
    roles = {r["_id"]: r["scope"] for r in admin.roles_list()["roles"]}
    assert roles["owner"] == "Subscriptions" and roles["admin"] == "Users"
    assert admin.roles_add_user_to_role("bot", "kim")["success"] is True
    kim.refresh_from_db()
    assert "bot" in kim.role_names()
    assert admin.roles_remove_user_from_role("bot", "kim")["success"] is True
    assert "bot" not in kim.role_names()
    with pytest.raises(RocketApiException) as err:
        rc_client("kim").permissions_update(permissions=[{"_id": "access-federation", "roles": ["user"]}])
    assert err.value.status_code == 400


def test_nul_character_and_oversized_body_get_json_errors(live_url, make_user, rc_client):
    make_user("lena")
    rc = rc_client("lena")
    r = requests.get(f"{live_url}/api/v1/users.info", params={"username": "le\x00na"}, headers=rc.headers)
    assert r.status_code == 400 and r.json()["errorType"] == "error-invalid-params"
    r = requests.post(f"{live_url}/api/v1/users.setStatus", headers={**rc.headers, "Content-Type": "application/json"},
                      data=b'{"message": "' + b"x" * (11 * 1024 * 1024) + b'"}')
    assert r.status_code in (400, 413)
    assert r.json()["success"] is False


def test_users_list_offset_too_large_is_a_rocketchat_error(live_url, make_user, rc_client):
    make_user("alice")
    rc = rc_client("alice")
    with pytest.raises(RocketApiException) as err:
        rc.call_api_get("users.list", offset="9" * 30)
    assert err.value.status_code == 400
    assert err.value.response_json["errorType"] == "error-invalid-params"
    assert rc.call_api_get("users.list", offset=2**53 - 1)["users"] == []


def test_permissions_update_with_non_string_roles_is_refused_whole(live_url, admin_user, rc_client):
    """Roles given as lists or objects used to reach ``set()`` / the query and answer 500."""
    from accounts.models import Permission

    admin = rc_client("admin")
    before = sorted(Permission.objects.get(id="create-c").roles.values_list("id", flat=True))
    for roles in ([[]], [["admin"]], [{}], [{"_id": "admin"}], ["admin", 5], [None]):
        with pytest.raises(RocketApiException) as err:
            admin.permissions_update(permissions=[{"_id": "create-c", "roles": ["user"]},
                                                  {"_id": "create-c", "roles": roles}])
        assert err.value.status_code == 400, roles
        assert err.value.response_json["errorType"] in ("error-invalid-permissions", "error-invalid-role")
    # All-or-nothing: the valid first item was not applied either.
    assert sorted(Permission.objects.get(id="create-c").roles.values_list("id", flat=True)) == before
