"""Rocket.Chat's settings calls over plain HTTP (settings, settings/:_id, settings.public): the
shapes, the errors (unknown ids, wrong types, callers without the permissions), and that each
honoured setting really changes what the server does once it is set."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
import requests
from django.utils import timezone

from tests.rooms.room_helpers import post

Session = Callable[..., requests.Response]


@pytest.fixture(autouse=True)
def _forget_settings_cache(live_url: str) -> Iterator[None]:
    """Each test's database is emptied afterwards: the shared cached copy of the table must go too."""
    from accounts.server_settings import forget_stored

    forget_stored()
    yield
    forget_stored()


def _login(live_url: str, username: str, password: str = "password123") -> dict[str, str]:
    r = requests.post(f"{live_url}/api/v1/login", json={"user": username, "password": password}, timeout=10)
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    return {"X-Auth-Token": data["authToken"], "X-User-Id": data["userId"]}


def _client(live_url: str, username: str | None) -> Session:
    headers = _login(live_url, username) if username else {}

    def call(method: str, path: str, **kwargs: Any) -> requests.Response:
        return requests.request(method, f"{live_url}/api/v1/{path}", headers=headers, timeout=10, **kwargs)

    return call


@pytest.fixture
def admin(live_url: str, admin_user: Any) -> Session:
    return _client(live_url, admin_user.username)


def _set(admin: Session, setting_id: str, value: Any) -> None:
    r = admin("POST", f"settings/{setting_id}", json={"value": value})
    assert r.status_code == 200 and r.json() == {"success": True}, r.text


def _error(r: requests.Response, status: int, error_type: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["success"] is False and body["errorType"] == error_type and isinstance(body["error"], str), body
    return body


def test_settings_list_read_and_public_as_rocket_chat(live_url: str, admin: Session, make_user: Any) -> None:
    from accounts.server_settings import DEFINITIONS

    listed = admin("GET", "settings", params={"count": 100}).json()
    assert listed["success"] is True and listed["offset"] == 0
    assert listed["total"] == len(DEFINITIONS) == listed["count"] == len(listed["settings"])
    ids = [s["_id"] for s in listed["settings"]]
    assert ids == sorted(ids) and "Federation_Matrix_enable_ephemeral_events" in ids
    assert all(set(s) == {"_id", "value"} for s in listed["settings"])
    site = next(s for s in listed["settings"] if s["_id"] == "Site_Name")
    assert site["value"] == "Concord"

    page = admin("GET", "settings", params={"count": 2, "offset": 1}).json()
    assert [s["_id"] for s in page["settings"]] == ids[1:3] and page["count"] == 2 and page["offset"] == 1
    assert page["total"] == len(DEFINITIONS)

    query = '{"_id": {"$in": ["Message_AllowEditing", "FileUpload_MaxFileSize"]}}'
    some = admin("GET", "settings", params={"query": query, "fields": '{"type": 1, "packageValue": 1}',
                                            "sort": '{"_id": -1}'}).json()
    assert some["settings"] == [
        {"_id": "Message_AllowEditing", "value": True, "type": "boolean", "packageValue": True},
        {"_id": "FileUpload_MaxFileSize", "value": 100 * 1024 * 1024, "type": "int",
         "packageValue": 100 * 1024 * 1024},
    ] and some["total"] == 2
    regex = admin("GET", "settings", params={"query": '{"_id": {"$regex": "^message_allowdel", "$options": "i"}}'})
    assert [s["_id"] for s in regex.json()["settings"]] == ["Message_AllowDeleting",
                                                            "Message_AllowDeleting_BlockDeleteInMinutes"]
    _error(admin("GET", "settings", params={"query": '{"$where": "1"}'}), 400, "error-invalid-params")

    one = admin("GET", "settings/Message_AllowDeleting")
    assert one.status_code == 200 and one.json() == {"_id": "Message_AllowDeleting", "value": True, "success": True}
    for unknown in ("Language", "Message_MaxAllowedSize", "No_Such_Setting"):  # not honoured by Concord
        _error(admin("GET", f"settings/{unknown}"), 400, "error-invalid-setting")
        _error(admin("POST", f"settings/{unknown}", json={"value": True}), 400, "error-invalid-setting")

    # Not an admin: the public settings only, no single reads or writes.
    make_user("plain")
    plain = _client(live_url, "plain")
    public_ids = [s["_id"] for s in plain("GET", "settings", params={"count": 100}).json()["settings"]]
    assert "Site_Name" in public_ids and "Federation_Matrix_enable_ephemeral_events" not in public_ids
    assert set(public_ids) == {k for k, d in DEFINITIONS.items() if d.public}
    body = _error(plain("GET", "settings/Site_Name"), 403, "error-unauthorized")
    assert body["error"] == "User does not have the permissions required for this action [error-unauthorized]"
    _error(plain("POST", "settings/Site_Name", json={"value": "Mine"}), 403, "error-unauthorized")
    _error(plain("POST", "settings/No_Such_Setting", json={"value": "x"}), 403, "error-unauthorized")

    anonymous = _client(live_url, None)
    _error(anonymous("GET", "settings"), 401, "error-unauthorized")
    _error(anonymous("POST", "settings/Site_Name", json={"value": "x"}), 401, "error-unauthorized")
    public = anonymous("GET", "settings.public", params={"count": 100}).json()
    assert public["success"] is True and [s["_id"] for s in public["settings"]] == public_ids
    picked = anonymous("GET", "settings.public", params={"_id": "Site_Name, Accounts_RegistrationForm"}).json()
    assert picked["settings"] == [{"_id": "Accounts_RegistrationForm", "value": "Public"},
                                  {"_id": "Site_Name", "value": "Concord"}] and picked["total"] == 2
    hidden = anonymous("GET", "settings.public", params={"_id": "Federation_Matrix_enable_ephemeral_events"})
    assert hidden.json()["settings"] == [] and hidden.json()["total"] == 0


def test_values_are_type_checked(admin: Session) -> None:
    for setting_id, bad in (("Message_AllowEditing", "false"), ("Message_AllowEditing", 0),
                            ("Message_AllowEditing", None), ("FileUpload_MaxFileSize", "10"),
                            ("FileUpload_MaxFileSize", True), ("FileUpload_MaxFileSize", 1.5),
                            ("FileUpload_MaxFileSize", -2), ("Message_AllowEditing_BlockEditInMinutes", -1),
                            ("Site_Name", 5), ("Site_Name", ["a"]), ("Accounts_RegistrationForm", "Secret URL"),
                            ("Accounts_RegistrationForm", True)):
        r = admin("POST", f"settings/{setting_id}", json={"value": bad})
        _error(r, 400, "error-invalid-setting-value")
    _error(admin("POST", "settings/Site_Name", json={}), 400, "error-invalid-params")
    _error(admin("POST", "settings/Site_Name", json={"valeu": "typo"}), 400, "error-invalid-params")
    # Nothing of that was stored.
    assert admin("GET", "settings/Message_AllowEditing").json()["value"] is True
    assert admin("GET", "settings/FileUpload_MaxFileSize").json()["value"] == 100 * 1024 * 1024
    _set(admin, "FileUpload_MaxFileSize", 2048.0)  # an integral number is an int
    assert admin("GET", "settings/FileUpload_MaxFileSize").json()["value"] == 2048


def test_site_name_and_registration(live_url: str, admin: Session) -> None:
    anonymous = _client(live_url, None)
    _set(admin, "Site_Name", "Team Chat")
    public = anonymous("GET", "settings.public", params={"_id": "Site_Name"}).json()
    assert public["settings"] == [{"_id": "Site_Name", "value": "Team Chat"}]
    assert "Team Chat" in requests.get(f"{live_url}/login", timeout=10).text

    new_user = {"username": "newbie", "email": "newbie@example.test", "pass": "password123", "name": "New"}
    _set(admin, "Accounts_RegistrationForm", "Disabled")
    _error(anonymous("POST", "users.register", json=new_user), 400, "error-user-registration-disabled")
    assert requests.get(f"{live_url}/signup", timeout=10).status_code == 403
    _set(admin, "Accounts_RegistrationForm", "Public")
    r = anonymous("POST", "users.register", json=new_user)
    assert r.status_code == 200 and r.json()["user"]["username"] == "newbie"


def _channel(admin: Session, name: str, *members: str) -> str:
    r = admin("POST", "channels.create", json={"name": name, "members": list(members)})
    assert r.status_code == 200, r.text
    return str(r.json()["channel"]["_id"])


def test_file_upload_settings(live_url: str, admin: Session, make_user: Any) -> None:
    make_user("uploader")
    rid = _channel(admin, "files", "uploader")
    user = _client(live_url, "uploader")

    def upload(name: str, data: bytes, content_type: str, call: str = "rooms.upload") -> requests.Response:
        return user("POST", f"{call}/{rid}", files={"file": (name, data, content_type)})

    assert upload("a.txt", b"x" * 100, "text/plain").status_code == 200
    _set(admin, "FileUpload_MaxFileSize", 50)
    body = _error(upload("a.txt", b"x" * 100, "text/plain"), 400, "error-file-too-large")
    assert "50" in body["error"]
    _error(upload("a.txt", b"x" * 100, "text/plain", "rooms.media"), 400, "error-file-too-large")
    assert upload("small.txt", b"x" * 50, "text/plain").status_code == 200
    _set(admin, "FileUpload_MaxFileSize", -1)  # no limit
    assert upload("a.txt", b"x" * 100, "text/plain").status_code == 200

    _set(admin, "FileUpload_MediaTypeWhiteList", "image/*, text/plain")
    body = _error(upload("a.bin", b"\x01\x02", "application/octet-stream"), 400, "error-invalid-file-type")
    assert body["error"] == "File type is not accepted."
    assert upload("b.txt", b"fine", "text/plain").status_code == 200
    _set(admin, "FileUpload_MediaTypeWhiteList", "")
    assert upload("a.bin", b"\x01\x02", "application/octet-stream").status_code == 200

    _set(admin, "FileUpload_Enabled", False)
    _error(upload("c.txt", b"nope", "text/plain"), 400, "error-file-upload-disabled")
    _error(upload("c.txt", b"nope", "text/plain", "rooms.media"), 400, "error-file-upload-disabled")
    _set(admin, "FileUpload_Enabled", True)
    assert upload("c.txt", b"yes", "text/plain").status_code == 200


def test_message_edit_and_delete_settings(live_url: str, admin: Session, admin_user: Any, make_user: Any) -> None:
    make_user("writer")
    rid = _channel(admin, "edits", "writer")
    writer = _client(live_url, "writer")
    fresh = post("writer", rid, "first")
    old = post("writer", rid, "from earlier", created_at=timezone.now() - timedelta(minutes=30))

    def update(client: Session, msg_id: str, text: str) -> requests.Response:
        return client("POST", "chat.update", json={"roomId": rid, "msgId": msg_id, "text": text})

    def delete(client: Session, msg_id: str) -> requests.Response:
        return client("POST", "chat.delete", json={"roomId": rid, "msgId": msg_id})

    assert update(writer, fresh.id, "first, edited").status_code == 200
    _set(admin, "Message_AllowEditing", False)
    body = _error(update(writer, fresh.id, "again"), 400, "error-action-not-allowed")
    assert body["error"] == "Message editing not allowed"
    assert update(admin, fresh.id, "edited by a moderator").status_code == 200  # edit-message holders may
    _set(admin, "Message_AllowEditing", True)

    assert update(writer, old.id, "old, edited").status_code == 200  # no window by default
    _set(admin, "Message_AllowEditing_BlockEditInMinutes", 10)
    body = _error(update(writer, old.id, "too late"), 400, "error-message-editing-blocked")
    assert body["error"] == "Message editing is blocked"
    assert update(writer, fresh.id, "still in time").status_code == 200

    _set(admin, "Message_AllowDeleting_BlockDeleteInMinutes", 10)
    _error(delete(writer, old.id), 400, "error-action-not-allowed")
    _set(admin, "Message_AllowDeleting", False)
    _error(delete(writer, fresh.id), 400, "error-action-not-allowed")
    _set(admin, "Message_AllowDeleting", True)
    assert delete(writer, fresh.id).status_code == 200
    assert delete(admin, old.id).status_code == 200  # force-delete-message: past the window too

    from rooms.models import Message

    assert Message.objects.get(id=old.id).deleted_at is not None
    assert Message.objects.get(id=fresh.id).deleted_at is not None


def test_bad_words_filter(live_url: str, admin: Session, make_user: Any) -> None:
    make_user("talker")
    rid = _channel(admin, "words", "talker")
    talker = _client(live_url, "talker")

    def send(text: str) -> dict[str, Any]:
        r = talker("POST", "chat.sendMessage", json={"message": {"rid": rid, "msg": text}})
        assert r.status_code == 200, r.text
        return dict(r.json()["message"])

    assert send("darn this")["msg"] == "darn this"  # the filter is off by default
    _set(admin, "Message_BadWordsFilterList", "darn, heck")
    assert send("darn this")["msg"] == "darn this"
    _set(admin, "Message_AllowBadWordsFilter", True)
    msg = send("Darn it, what the HECK; darned heckle")
    assert msg["msg"] == "**** it, what the ****; darned heckle"
    edited = talker("POST", "chat.update", json={"roomId": rid, "msgId": msg["_id"], "text": "oh heck"}).json()
    assert edited["message"]["msg"] == "oh ****"
    _set(admin, "Message_AllowBadWordsFilter", False)
    assert send("heck")["msg"] == "heck"


def test_account_settings(live_url: str, admin: Session, make_user: Any) -> None:
    from accounts.models import User

    make_user("me")
    me = _client(live_url, "me")
    assert me("POST", "users.updateOwnBasicInfo", json={"data": {"name": "Me One"}}).status_code == 200
    _set(admin, "Accounts_AllowUserProfileChange", False)
    _error(me("POST", "users.updateOwnBasicInfo", json={"data": {"name": "Me Two"}}), 400, "error-not-allowed")
    assert User.objects.get(username="me").name == "Me One"

    assert me("POST", "users.resetAvatar", json={}).status_code == 200
    _set(admin, "Accounts_AllowUserAvatarChange", False)
    body = _error(me("POST", "users.resetAvatar", json={}), 400, "error-not-allowed")
    assert body["error"] == "Change avatar is not allowed"
    assert admin("POST", "users.resetAvatar", json={"username": "me"}).status_code == 200

    _error(me("POST", "users.deleteOwnAccount", json={"password": "password123"}), 400, "error-not-allowed")
    _set(admin, "Accounts_AllowDeleteOwnAccount", True)
    assert me("POST", "users.deleteOwnAccount", json={"password": "password123"}).status_code == 200
    assert not User.objects.filter(username="me").exists()


def test_federation_switches(live_url: str, admin: Session, settings: Any) -> None:
    from federation import config

    settings.CONCORD_SERVER_NAME = "concord.test"
    status = admin("GET", "federation/admin.status").json()
    assert status["state"] != "Disabled"
    _set(admin, "Federation_Matrix_enabled", False)
    status = admin("GET", "federation/admin.status").json()
    assert status["state"] == "Disabled" and "Federation_Matrix_enabled" in status["problems"][0]
    assert config.enabled() is False
    _set(admin, "Federation_Matrix_enabled", True)
    assert config.enabled() is True

    assert config.edus_enabled("typing") and config.edus_enabled("presence")
    _set(admin, "Federation_Matrix_enable_ephemeral_events", False)
    assert not config.edus_enabled("typing") and not config.edus_enabled("receipts")
    assert config.max_remote_room_size() == 100
    _set(admin, "Federation_Matrix_max_size_of_public_rooms_users", 7)
    assert config.max_remote_room_size() == 7


def test_django_admin_changes_a_setting(live_url: str, admin_user: Any) -> None:
    from django.test import Client

    from accounts.models import User

    User.objects.filter(id=admin_user.id).update(is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(User.objects.get(id=admin_user.id))
    r = client.post("/admin/accounts/serversetting/add/", {"id": "Site_Name", "value": '"From Admin"'})
    assert r.status_code == 302, r.content[:500]
    r = client.post("/admin/accounts/serversetting/add/", {"id": "Message_AllowEditing", "value": '"yes"'})
    assert r.status_code == 200 and b"a boolean is expected" in r.content
    public = requests.get(f"{live_url}/api/v1/settings.public", params={"_id": "Site_Name"}, timeout=10).json()
    assert public["settings"] == [{"_id": "Site_Name", "value": "From Admin"}]
    r = client.post("/admin/accounts/serversetting/Site_Name/change/", {"value": '"Changed In Admin"'})
    assert r.status_code == 302, r.content[:500]
    public = requests.get(f"{live_url}/api/v1/settings.public", params={"_id": "Site_Name"}, timeout=10).json()
    assert public["settings"] == [{"_id": "Site_Name", "value": "Changed In Admin"}]
    r = client.post("/admin/accounts/serversetting/Site_Name/delete/", {"post": "yes"})
    assert r.status_code == 302
    public = requests.get(f"{live_url}/api/v1/settings.public", params={"_id": "Site_Name"}, timeout=10).json()
    assert public["settings"] == [{"_id": "Site_Name", "value": "Concord"}]
