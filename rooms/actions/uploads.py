"""Uploading files into rooms and turning them into messages (``rooms.media`` + ``rooms.mediaConfirm``)."""

from __future__ import annotations

import io
import mimetypes
import os
import re
import unicodedata
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction

from accounts import server_settings
from chat.api_errors import ApiError, NotAllowed
from chat.upload_limits import max_upload_bytes, too_large_message
from rooms.access import check_can_post
from rooms.actions.messages import do_send_message, publish_message
from rooms.models import Message, Room, Upload
from rooms.serialization import attachment_for_upload

if TYPE_CHECKING:
    from accounts.models import User

THUMB_SIZE = (480, 360)


def clean_file_name(name: str) -> str:
    """A safe display/storage name: no path, no control characters, at most 200 characters."""
    name = os.path.basename((name or "").replace("\\", "/"))
    name = "".join(c for c in unicodedata.normalize("NFC", name) if unicodedata.category(c)[0] != "C")
    name = re.sub(r"\s+", " ", name).strip(" .")
    return (name or "file")[:200]


def _image_info(data: bytes) -> tuple[int, int, bytes] | None:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            width, height = img.size
            thumb = img.convert("RGBA") if img.mode in ("P", "LA") else img.copy()
            thumb.thumbnail(THUMB_SIZE)
            out = io.BytesIO()
            if thumb.mode in ("RGBA", "LA"):
                thumb.save(out, format="PNG", optimize=True)
            else:
                thumb.convert("RGB").save(out, format="JPEG", quality=82)
            return width, height, out.getvalue()
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        return None


@transaction.atomic
def _mp4_like(data: bytes) -> bool:
    return data[4:8] == b"ftyp"


def _mpeg_audio(data: bytes) -> bool:
    return data[:3] == b"ID3" or (len(data) > 1 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0)


def _utf8_text(data: bytes) -> bool:
    try:
        data[:1 << 20].decode("utf-8")
    except UnicodeDecodeError as exc:  # a character cut at the 1 MiB mark is still text
        return exc.start >= (1 << 20) - 4
    return b"\x00" not in data[:1 << 20]


# What a file served inline (rooms.views.INLINE_TYPES) must start with to be what it says; images
# are opened with Pillow instead. A file that is not what it claims is kept as a download.
_SIGNATURES: dict[str, object] = {
    "application/pdf": lambda d: d[:5] == b"%PDF-",
    "video/mp4": _mp4_like, "audio/mp4": _mp4_like, "video/quicktime": _mp4_like, "audio/x-m4a": _mp4_like,
    "audio/mpeg": _mpeg_audio,
    "audio/ogg": lambda d: d[:4] == b"OggS", "video/ogg": lambda d: d[:4] == b"OggS",
    "audio/webm": lambda d: d[:4] == b"\x1a\x45\xdf\xa3", "video/webm": lambda d: d[:4] == b"\x1a\x45\xdf\xa3",
    "audio/wav": lambda d: d[:4] == b"RIFF" and d[8:12] == b"WAVE",
    "audio/x-wav": lambda d: d[:4] == b"RIFF" and d[8:12] == b"WAVE",
    "audio/flac": lambda d: d[:4] == b"fLaC",
    "text/plain": _utf8_text,
}


def sniffed_type(content_type: str, data: bytes) -> str:
    """``content_type`` when the bytes are what it says (or it is never shown inline), else
    ``application/octet-stream``: an audio, video, PDF or text file that is something else is
    not served inline as what it claims."""
    base = content_type.split(";", 1)[0].strip().lower()
    if base.startswith("image/"):
        return content_type  # checked by opening it (see _store_upload)
    check = _SIGNATURES.get(base)
    if check is not None:
        return content_type if check(data) else "application/octet-stream"  # type: ignore[operator]
    if base.startswith(("audio/", "video/")):
        return "application/octet-stream"  # a kind served inline that we cannot check: a download
    return content_type


def do_upload(user: User, room: Room, uploaded: UploadedFile, description: str = "") -> Upload:
    """Store an uploaded file for ``room`` (not yet visible until confirmed as a message).

    Guarantees, as the server settings say at this moment: uploads are on (``FileUpload_Enabled``,
    else ``error-file-upload-disabled``), the file is within ``FileUpload_MaxFileSize``
    (``error-file-too-large``) and its media type is on ``FileUpload_MediaTypeWhiteList`` when
    that list is set (``error-invalid-file-type``).
    """
    check_can_post(user, room)
    if not server_settings.flag("FileUpload_Enabled"):
        raise ApiError("File upload is disabled", "error-file-upload-disabled")
    if uploaded.size is None or uploaded.size <= 0:
        raise ApiError("The file is empty", "error-invalid-file")
    limit = max_upload_bytes()
    if limit is not None and uploaded.size > limit:
        raise ApiError(too_large_message(limit), "error-file-too-large")
    name = uploaded.name or "file"
    if not media_type_allowed(uploaded.content_type or mimetypes.guess_type(clean_file_name(name))[0] or ""):
        raise ApiError("File type is not accepted.", "error-invalid-file-type")
    return _store_upload(user, room, name, uploaded.content_type or "", uploaded.read(), description)


def media_type_allowed(content_type: str) -> bool:
    """Whether ``content_type`` is on ``FileUpload_MediaTypeWhiteList`` (``type/subtype`` or
    ``type/*`` items, any case); an empty list allows every type."""
    allowed = [item.lower() for item in server_settings.values_list(server_settings.text(
        "FileUpload_MediaTypeWhiteList"))]
    if not allowed:
        return True
    base = content_type.split(";", 1)[0].strip().lower()
    major = base.split("/", 1)[0]
    return any(item in (base, f"{major}/*", "*/*", "*") for item in allowed)


def _store_upload(user: User | None, room: Room, name: str, content_type: str, data: bytes,
                  description: str = "") -> Upload:
    """The checks every stored file passes (name, type, an image that is really one, its
    thumbnail), then the file and its row."""
    name = clean_file_name(name)
    content_type = (content_type or mimetypes.guess_type(name)[0] or "application/octet-stream")[:255]
    if "/" not in content_type or any(c in content_type for c in "<>\"' "):
        content_type = "application/octet-stream"
    content_type = sniffed_type(content_type, data)
    upload = Upload(room=room, user=user, name=name, content_type=content_type, size=len(data),
                    description=str(description or "")[:5000])
    if content_type.startswith("image/"):
        info = _image_info(data)
        if info is None:
            if content_type != "image/svg+xml":
                raise ApiError("The image could not be read", "error-invalid-file")
            # SVG can carry script: never serve it as an image.
            upload.content_type = "application/octet-stream"
        else:
            upload.width, upload.height, thumb = info
            ext = "png" if thumb[:4] == b"\x89PNG" else "jpg"
            upload.thumbnail.save(f"{upload.id}.{ext}", ContentFile(thumb), save=False)
    upload.file.save(f"{upload.id}", ContentFile(data), save=False)
    upload.save()
    return upload


@transaction.atomic
def do_attach_file(msg: Message, name: str, content_type: str, data: bytes) -> Upload:
    """Give a message its file after the fact (a file from another Matrix server, fetched once
    the message was shown): stored with every check of an upload, then the message's attachment
    becomes the file's and clients get the updated message.

    Raises:
        ApiError: an empty or too large file, or an image that cannot be read.
    """
    if not data:
        raise ApiError("The file is empty", "error-invalid-file")
    if len(data) > settings.MAX_UPLOAD_BYTES:
        raise ApiError(f"File exceeds allowed size of {settings.MAX_UPLOAD_BYTES} bytes", "error-file-too-large")
    msg = Message.objects.select_for_update().select_related("room").get(id=msg.id)
    upload = _store_upload(msg.user, msg.room, name, content_type, data)
    upload.confirmed = True
    upload.save(update_fields=["confirmed"])
    description = ""
    if msg.attachments and isinstance(msg.attachments[0], dict):
        description = str(msg.attachments[0].get("description") or "")
    msg.file = upload
    msg.attachments = [attachment_for_upload(upload, description)]
    msg.save(update_fields=["file", "attachments", "updated_at"])
    publish_message(msg)
    return upload


@transaction.atomic
def do_confirm_upload(user: User, upload: Upload, *, text: str = "", description: str | None = None,
                      thread_root_id: str | None = None) -> Message:
    """Post the message that carries ``upload``. Only its uploader may confirm it, once."""
    upload = Upload.objects.select_for_update().get(id=upload.id)
    if upload.user_id != user.id:
        raise NotAllowed("Only the uploader can send this file", "error-not-allowed")
    if upload.confirmed:
        raise ApiError("This file was already sent", "error-file-already-confirmed")
    if description is not None:
        upload.description = str(description)[:5000]
    upload.confirmed = True
    upload.save(update_fields=["confirmed", "description"])
    return do_send_message(user, upload.room, text or "", file=upload,
                           attachments=[attachment_for_upload(upload, upload.description)],
                           thread_root_id=thread_root_id)


@transaction.atomic
def do_upload_and_send(user: User, room: Room, uploaded: UploadedFile, *, text: str = "", description: str = "",
                       thread_root_id: str | None = None) -> Message:
    """Store a file and post its message in one step (``rooms.upload``); all or nothing."""
    upload = do_upload(user, room, uploaded, description)
    return do_confirm_upload(user, upload, text=text, description=description, thread_root_id=thread_root_id)
