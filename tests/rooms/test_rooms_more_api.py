"""``rooms.isMember``, ``rooms.images``, ``rooms.open`` / ``rooms.hide`` over a live server, with
the unmodified ``rocketchat_API`` client where it has the call and plain HTTP otherwise."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import pytest
import requests

from rooms.actions.rooms import do_create_room
from rooms.models import Membership
from tests.rooms.test_media_api import png_bytes

pytestmark = pytest.mark.django_db(transaction=True)


def _get(rc: Any, url: str, call: str, **params: Any) -> requests.Response:
    return requests.get(f"{url}/api/v1/{call}", headers=rc.headers, params=params, timeout=10)


def _post(rc: Any, url: str, call: str, **body: Any) -> requests.Response:
    return requests.post(f"{url}/api/v1/{call}", headers=rc.headers, json=body, timeout=10)


def test_is_member(live_url: str, make_user: Callable[..., Any], rc_client: Callable[..., Any]) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    carol = make_user("carol")
    secret = do_create_room(alice, "p", "secret", members=[bob])
    rc = rc_client("alice")
    assert _get(rc, live_url, "rooms.isMember", roomId=secret.id, username="bob").json() == \
        {"isMember": True, "success": True}
    assert _get(rc, live_url, "rooms.isMember", roomId=secret.id, userId=carol.id).json()["isMember"] is False
    r = _get(rc, live_url, "rooms.isMember", roomId=secret.id, username="nobody")
    assert (r.status_code, r.json()["errorType"]) == (400, "error-user-not-found")
    r = _get(rc, live_url, "rooms.isMember", username="bob")
    assert (r.status_code, r.json()["errorType"]) == (400, "invalid-params")
    # Carol cannot read the private room: she learns nothing about it.
    r = _get(rc_client("carol"), live_url, "rooms.isMember", roomId=secret.id, username="bob")
    assert r.status_code == 400 and r.json()["success"] is False


def test_images_newest_first_paged_and_from_an_image(live_url: str, make_user: Callable[..., Any],
                                                     rc_client: Callable[..., Any]) -> None:
    alice = make_user("alice")
    make_user("carol")
    room = do_create_room(alice, "p", "pics")
    rc = rc_client("alice")
    ids = []
    for i in range(3):
        up = rc.rooms_media(room.id, (f"p{i}.png", io.BytesIO(png_bytes((10 + i, 10))), "image/png"))
        rc.rooms_media_confirm(room.id, up["file"]["_id"], msg=f"pic {i}")
        ids.append(up["file"]["_id"])
    up = rc.rooms_media(room.id, ("notes.txt", io.BytesIO(b"plain text"), "text/plain"))
    rc.rooms_media_confirm(room.id, up["file"]["_id"], msg="a file")
    body = _get(rc, live_url, "rooms.images", roomId=room.id).json()
    assert body["success"] and body["total"] == 3 and [f["_id"] for f in body["files"]] == ids[::-1]
    page = _get(rc, live_url, "rooms.images", roomId=room.id, count=1, offset=1).json()
    assert [f["_id"] for f in page["files"]] == [ids[1]] and page["offset"] == 1 and page["total"] == 3
    start = _get(rc, live_url, "rooms.images", roomId=room.id, startingFromId=ids[1]).json()
    assert [f["_id"] for f in start["files"]] == [ids[1], ids[0]]
    r = _get(rc_client("carol"), live_url, "rooms.images", roomId=room.id)
    assert r.status_code == 403 and r.json()["success"] is False
    assert _get(rc, live_url, "rooms.images", roomId="no-such-room").status_code == 403
    assert _get(rc, live_url, "rooms.images").json()["errorType"] == "invalid-params"


def test_hide_and_open(live_url: str, make_user: Callable[..., Any], rc_client: Callable[..., Any]) -> None:
    alice = make_user("alice")
    room = do_create_room(alice, "c", "hideaway")
    rc = rc_client("alice")
    assert _post(rc, live_url, "rooms.hide", roomId=room.id).json() == {"success": True}
    sub = Membership.objects.get(room=room, user=alice)
    assert sub.open_flag is False
    r = _post(rc, live_url, "rooms.hide", roomId=room.id)
    assert (r.status_code, r.json()["errorType"]) == (400, "error-room-already-hidden")
    assert _post(rc, live_url, "rooms.open", roomId=room.id).json() == {"success": True}
    assert Membership.objects.get(room=room, user=alice).open_flag is True
    assert _post(rc, live_url, "rooms.open", roomId=room.id).json() == {"success": True}  # already open: fine
    assert _post(rc, live_url, "rooms.open").json()["errorType"] == "invalid-params"


def test_set_custom_fields(live_url: str, make_user: Callable[..., Any], rc_client: Callable[..., Any]) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    room = do_create_room(alice, "c", "custom", members=[bob])
    group = do_create_room(alice, "p", "customgroup", members=[bob])
    rc = rc_client("alice")
    r = rc.channels_set_custom_fields(room.id, {"organization": "tra-la-la", "n": 3})
    assert r["success"] and r["channel"]["customFields"] == {"organization": "tra-la-la", "n": 3}
    assert rc.channels_info(room_id=room.id)["channel"]["customFields"] == {"organization": "tra-la-la", "n": 3}
    r = _post(rc, live_url, "groups.setCustomFields", roomId=group.id, customFields={"team": "x"})
    assert r.json()["group"]["customFields"] == {"team": "x"}
    for bad in ("not an object", ["a"], None):
        r = _post(rc, live_url, "channels.setCustomFields", roomId=room.id, customFields=bad)
        assert r.status_code == 400 and 'bodyParam "customFields"' in r.json()["error"], r.text
    r = _post(rc, live_url, "channels.setCustomFields", roomId=room.id, customFields={"big": "x" * 20_000})
    assert r.status_code == 400 and "too large" in r.json()["error"]
    r = _post(rc_client("bob"), live_url, "channels.setCustomFields", roomId=room.id, customFields={"mine": 1})
    assert (r.status_code, r.json()["errorType"]) == (400, "error-not-allowed")  # edit-room: owners
    assert rc.channels_info(room_id=room.id)["channel"]["customFields"] == {"organization": "tra-la-la", "n": 3}
