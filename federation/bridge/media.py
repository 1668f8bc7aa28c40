"""Our uploads and avatars served as Matrix media (files from other servers:
:mod:`federation.bridge.remote_media`).

Serving (``/_matrix/federation/v1/media/download|thumbnail/{mediaId}``)
    Media IDs are an upload's ID (the file), ``<upload ID>_thumb`` (its thumbnail) and
    ``avatar_<user ID>_<etag>`` (a local user's avatar, as ``query/profile`` gives it). An upload is
    served only to a server with a member joined in the federated room it was posted in; avatars
    to anyone (they are public profile data). Unknown or not allowed: 404 ``M_NOT_FOUND``.
"""

from __future__ import annotations

import logging
from typing import Any

from accounts.models import User
from federation import config
from federation.bridge import convert
from federation.models import MatrixRoom
from federation.store.room_state import server_joined
from federation.transport.errors import MatrixError
from rooms.models import Message, Upload

log = logging.getLogger(__name__)

THUMB_SUFFIX = "_thumb"


# --- our media as Matrix media -------------------------------------------------------------------


def mxc_of_upload(upload: Upload, *, thumbnail: bool = False) -> str:
    """``mxc://<us>/<upload ID>`` (or its thumbnail's)."""
    return f"mxc://{config.server_name()}/{upload.id}{THUMB_SUFFIX if thumbnail else ''}"


def file_content_of(msg: Message) -> dict[str, Any] | None:
    """The Matrix content of a message that carries an upload (None: it carries none)."""
    upload = msg.file
    if upload is None:
        return None
    info = convert.FileInfo(upload.kind, upload.name, upload.content_type, upload.size, upload.width, upload.height)
    thumb = None
    if upload.thumbnail:
        thumb = convert.FileInfo("image", upload.name, "image/png" if upload.thumbnail.name.endswith(".png")
                                 else "image/jpeg", upload.thumbnail.size)
    return convert.file_content(info, mxc_of_upload(upload), msg.text,
                                thumbnail_url=mxc_of_upload(upload, thumbnail=True) if thumb else None,
                                thumbnail=thumb)


def _read(field: Any) -> bytes:
    with field.open("rb") as fh:
        return bytes(fh.read())


def media_for(origin: str, media_id: str, *, thumbnail: bool) -> tuple[bytes, str, str]:
    """``(bytes, content type, file name)`` of one of our media for ``origin`` (see the module docstring).

    Raises:
        MatrixError: 404 ``M_NOT_FOUND`` for unknown media and for media the origin may not see.
    """
    not_found = MatrixError(404, "M_NOT_FOUND", "Media not found")
    if origin == config.server_name():
        raise not_found  # never to ourselves (a remote event naming our media must not copy it around)
    if media_id.startswith("avatar_"):
        _, user_id, _etag = (media_id.split("_", 2) + ["", ""])[:3]
        user = User.objects.filter(id=user_id, is_remote=False, is_active=True).first()
        if user is None or not user.avatar or f"avatar_{user.id}_{user.avatar_etag or 'x'}" != media_id:
            raise not_found
        return _read(user.avatar), "image/png" if user.avatar.name.endswith(".png") else "image/jpeg", "avatar"
    want_thumb = thumbnail or media_id.endswith(THUMB_SUFFIX)
    upload = Upload.objects.filter(id=media_id.removesuffix(THUMB_SUFFIX), confirmed=True).select_related(
        "room").first()
    mroom = MatrixRoom.objects.filter(chat_room=upload.room).first() if upload is not None else None
    if upload is None or mroom is None or not server_joined(mroom, origin):
        raise not_found
    if want_thumb and upload.thumbnail:
        ext = "png" if upload.thumbnail.name.endswith(".png") else "jpeg"
        return _read(upload.thumbnail), f"image/{ext}", upload.name
    if want_thumb and upload.kind != "image":
        raise not_found
    return _read(upload.file), upload.content_type, upload.name
