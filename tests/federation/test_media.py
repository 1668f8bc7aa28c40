"""Authenticated federation media, served over TLS with signed requests from a scripted peer: who
may download an upload (servers in its room), avatars for anyone, the multipart answer, and the
multipart reader's refusals."""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from federation.transport.multipart import MultipartError, decode_media, encode_media
from tests.federation.conftest import ConcordTLS
from tests.federation.fakepeer import FakePeer
from tests.federation.signed_requests import call, joined_room

pytestmark = pytest.mark.django_db(transaction=True)


def _png(size: tuple[int, int] = (50, 40)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (1, 2, 3)).save(out, format="PNG")
    return out.getvalue()


def test_multipart_round_trip_and_refusals() -> None:
    body, ctype = encode_media(b"\x00bytes\r\n--not-a-boundary", "application/pdf", 'a "quoted".pdf')
    part = decode_media(body, ctype)
    assert (part.content_type, part.data, part.metadata, part.location) == (
        "application/pdf", b"\x00bytes\r\n--not-a-boundary", {}, None)
    redirect = b'--b\r\nContent-Type: application/json\r\n\r\n{"x": 1}\r\n--b\r\nLocation: https://cdn/x\r\n\r\n\r\n--b--'
    assert decode_media(redirect, "multipart/mixed; boundary=b").location == "https://cdn/x"
    for bad_body, bad_type in ((body, "image/png"), (body, "multipart/mixed"),
                               (b"--b\r\n\r\n{}\r\n--b--", "multipart/mixed; boundary=b"),
                               (b"--b\r\n\r\n[1]\r\n--b\r\n\r\nx\r\n--b--", "multipart/mixed; boundary=b"),
                               (b"--b\r\n\r\nnot json\r\n--b\r\n\r\nx\r\n--b--", "multipart/mixed; boundary=b")):
        with pytest.raises(MultipartError):
            decode_media(bad_body, bad_type)


def test_uploads_are_served_to_servers_in_their_room_only(fed: ConcordTLS, peer: FakePeer, make_user: Any) -> None:
    from federation.bridge.portals import ensure_portal
    from federation.models import MatrixRoom
    from rooms.actions.rooms import do_create_room
    from rooms.actions.uploads import do_upload_and_send

    owner = make_user("mediaowner")
    shared = do_create_room(owner, "c", "shared-files")
    room = joined_room(fed, peer)  # a room the peer's user is joined to, made the portal of `shared`
    MatrixRoom.objects.filter(room_id=room.room_id).update(chat_room=shared)
    picture = _png()
    msg = do_upload_and_send(owner, shared, SimpleUploadedFile("p.png", picture, "image/png"), text="pic")
    upload_id = msg.file.id

    got = call(fed, peer, "GET", f"/_matrix/federation/v1/media/download/{upload_id}")
    assert got.status_code == 200 and got.headers["Content-Type"].startswith("multipart/mixed")
    part = decode_media(got.content, got.headers["Content-Type"])
    assert (part.content_type, part.data) == ("image/png", picture)
    thumb = call(fed, peer, "GET", f"/_matrix/federation/v1/media/thumbnail/{upload_id}?width=32&height=32")
    assert decode_media(thumb.content, thumb.headers["Content-Type"]).content_type.startswith("image/")

    private = do_create_room(owner, "p", "not-shared")
    ensure_portal(private)  # federated, but the peer has nobody in it
    hidden = do_upload_and_send(owner, private, SimpleUploadedFile("h.png", _png(), "image/png")).file.id
    for path in (f"download/{hidden}", f"thumbnail/{hidden}", "download/nosuchmedia", "download/avatar_x_y"):
        r = call(fed, peer, "GET", f"/_matrix/federation/v1/media/{path}")
        assert r.status_code == 404 and r.json()["errcode"] == "M_NOT_FOUND", path


def test_a_local_avatar_is_public_media(fed: ConcordTLS, peer: FakePeer, make_user: Any) -> None:
    from accounts.actions import do_set_avatar
    from federation.bridge.users import user_avatar_mxc

    user = make_user("withavatar")
    do_set_avatar(user, SimpleUploadedFile("me.png", _png((64, 64)), "image/png"))
    user.refresh_from_db()
    mxc = user_avatar_mxc(user)
    assert mxc is not None and mxc.startswith(f"mxc://{fed.server_name}/avatar_")
    got = call(fed, peer, "GET", "/_matrix/federation/v1/media/download/" + mxc.rsplit("/", 1)[1])
    assert got.status_code == 200
    part = decode_media(got.content, got.headers["Content-Type"])
    with Image.open(io.BytesIO(part.data or b"")) as img:
        assert img.size[0] > 0
    stale = call(fed, peer, "GET", f"/_matrix/federation/v1/media/download/avatar_{user.id}_old")
    assert stale.status_code == 404
