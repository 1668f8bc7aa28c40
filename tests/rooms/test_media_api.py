"""Uploads: ``rooms.media`` + ``rooms.mediaConfirm`` (client 3.7's two steps) and ``rooms.upload``."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import pytest
import requests
from PIL import Image

from rooms.actions.memberships import do_set_muted
from rooms.actions.rooms import do_create_room
from rooms.models import Upload
from tests.rooms.room_helpers import api_error


def png_bytes(size: tuple[int, int] = (800, 600)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(out, format="PNG")
    return out.getvalue()


@pytest.fixture
def room(live_url: str, make_user: Callable[..., Any], rc_client: Callable[..., Any]) -> dict[str, Any]:
    alice, bob = make_user("alice"), make_user("bob")
    make_user("carol")
    secret = do_create_room(alice, "p", "secret", members=[bob])
    return {"alice": alice, "bob": bob, "room": secret, "url": live_url,
            "rc_alice": rc_client("alice"), "rc_bob": rc_client("bob"), "rc_carol": rc_client("carol")}


def test_media_then_confirm_image_with_thumbnail(room: dict[str, Any]) -> None:
    rc, rid = room["rc_alice"], room["room"].id
    up = rc.rooms_media(rid, ("photo.png", io.BytesIO(png_bytes()), "image/png"), description="a photo")
    file_id = up["file"]["_id"]
    assert up["success"] and up["file"]["url"].startswith(f"/file-upload/{file_id}/")
    confirmed = rc.rooms_media_confirm(rid, file_id, msg="look", description="red")["message"]
    assert confirmed["msg"] == "look" and confirmed["file"]["_id"] == file_id
    att = confirmed["attachments"][0]
    assert att["image_dimensions"] == {"width": 800, "height": 600}
    assert att["description"] == "red" and att["image_preview"].startswith("/file-upload/")

    got = requests.get(room["url"] + att["image_url"], headers=room["rc_bob"].headers, timeout=10)
    assert got.status_code == 200 and got.headers["Content-Type"] == "image/png"
    assert got.content == png_bytes()
    thumb = requests.get(room["url"] + att["image_preview"], headers=room["rc_bob"].headers, timeout=10)
    with Image.open(io.BytesIO(thumb.content)) as img:
        assert max(img.size) <= 480
    # The file is not served to someone outside the private room.
    assert requests.get(room["url"] + att["image_url"], headers=room["rc_carol"].headers,
                        timeout=10).status_code == 404

    # Confirming twice, by someone else, in another room, or an unknown file: JSON 4xx.
    api_error(rc.rooms_media_confirm, rid, file_id, msg="again")
    up2 = rc.rooms_media(rid, ("b.png", io.BytesIO(png_bytes((20, 20))), "image/png"))["file"]["_id"]
    code, _ = api_error(room["rc_bob"].rooms_media_confirm, rid, up2)
    assert code == 400
    other = do_create_room(room["alice"], "c", "other")
    api_error(rc.rooms_media_confirm, other.id, up2)
    api_error(rc.rooms_media_confirm, rid, "no-such-file")


def test_upload_one_step_and_hostile_names(room: dict[str, Any]) -> None:
    rc, rid = room["rc_alice"], room["room"].id
    r = requests.post(f"{room['url']}/api/v1/rooms.upload/{rid}", headers=rc.headers, timeout=10,
                      files={"file": ('../../<img src=x onerror=alert(1)>.html', b"<script>alert(1)</script>",
                                      "text/html")}, data={"msg": "a page", "description": "d"})
    assert r.status_code == 200, r.text
    message = r.json()["message"]
    upload = Upload.objects.get(id=message["file"]["_id"])
    assert "/" not in upload.name and upload.name.endswith(".html")
    served = requests.get(room["url"] + message["attachments"][0]["title_link"], headers=rc.headers, timeout=10)
    assert served.headers["Content-Type"] == "application/octet-stream"
    assert served.headers["Content-Disposition"].startswith("attachment")
    assert "sandbox" in served.headers["Content-Security-Policy"]

    svg = b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>'
    up = rc.rooms_media(rid, ("x.svg", io.BytesIO(svg), "image/svg+xml"))["file"]
    assert up["type"] == "application/octet-stream"


def test_upload_errors(room: dict[str, Any], settings: Any) -> None:
    rc, rid = room["rc_alice"], room["room"].id
    api_error(rc.rooms_media, rid, ("fake.png", io.BytesIO(b"not an image"), "image/png"))
    api_error(rc.rooms_media, rid, ("empty.txt", io.BytesIO(b""), "text/plain"))
    api_error(room["rc_carol"].rooms_media, rid, ("a.txt", io.BytesIO(b"hi"), "text/plain"))
    api_error(rc.rooms_media, "no-such-room", ("a.txt", io.BytesIO(b"hi"), "text/plain"))
    r = requests.post(f"{room['url']}/api/v1/rooms.media/{rid}", headers=rc.headers, data={"x": "1"}, timeout=10)
    assert r.status_code == 400 and r.json()["success"] is False
    r = requests.post(f"{room['url']}/api/v1/rooms.upload/{rid}", headers=rc.headers, json={"file": "x"},
                      timeout=10)
    assert r.status_code == 400 and r.json()["success"] is False

    settings.MAX_UPLOAD_BYTES = 1000
    before = Upload.objects.count()
    code, body = api_error(rc.rooms_media, rid, ("big.bin", io.BytesIO(b"x" * 1001), "application/octet-stream"))
    assert body["errorType"] == "error-file-too-large"
    # Dropped while it streamed in (chat.upload_limits), far past the limit too: nothing kept.
    code, body = api_error(rc.rooms_media, rid, ("huge.bin", io.BytesIO(b"x" * 3_000_000), "application/octet-stream"))
    assert body["errorType"] == "error-file-too-large" and "1000 bytes" in body["error"]
    assert Upload.objects.count() == before
    assert rc.rooms_media(rid, ("ok.bin", io.BytesIO(b"x" * 1000), "application/octet-stream"))["success"]

    do_set_muted(room["room"], room["bob"], True, by=room["alice"])
    code, body = api_error(room["rc_bob"].rooms_media, rid, ("a.txt", io.BytesIO(b"hi"), "text/plain"))
    assert code == 400
    assert not Upload.objects.filter(user=room["bob"]).exists()


@pytest.mark.parametrize(("name", "claimed", "data", "served_as"), [
    ("doc.pdf", "application/pdf", b"%PDF-1.7\n%fake but well started", "application/pdf"),
    ("doc.pdf", "application/pdf", b"<html><script>alert(1)</script>", "application/octet-stream"),
    ("clip.mp4", "video/mp4", b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 32, "video/mp4"),
    ("clip.mp4", "video/mp4", b"<script>alert(1)</script>", "application/octet-stream"),
    ("song.ogg", "audio/ogg", b"OggS" + b"\x00" * 60, "audio/ogg"),
    ("song.mp3", "audio/mpeg", b"<!doctype html>", "application/octet-stream"),
    ("odd.aac", "audio/aac", b"\xff\xf1" + b"\x00" * 30, "application/octet-stream"),  # cannot check: download
    ("notes.txt", "text/plain", "naïve notes\n".encode(), "text/plain"),
    ("notes.txt", "text/plain", b"\x89PNG\r\n\x1a\n\x00\x00binary", "application/octet-stream"),
])
def test_a_file_is_served_inline_only_when_it_is_what_it_says(room: dict[str, Any], name: str, claimed: str,
                                                               data: bytes, served_as: str) -> None:
    rc, rid = room["rc_alice"], room["room"].id
    r = requests.post(f"{room['url']}/api/v1/rooms.upload/{rid}", headers=rc.headers, timeout=10,
                      files={"file": (name, data, claimed)})
    assert r.status_code == 200, r.text
    message = r.json()["message"]
    served = requests.get(room["url"] + message["attachments"][0]["title_link"], headers=rc.headers, timeout=10)
    assert served.headers["Content-Type"].split(";")[0] == served_as
    assert served.headers["X-Content-Type-Options"] == "nosniff"
    assert served.content == data
    # Only members: another user gets no file.
    other = requests.get(room["url"] + message["attachments"][0]["title_link"], headers=room["rc_carol"].headers,
                         timeout=10)
    assert other.status_code == 404
