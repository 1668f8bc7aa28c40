"""Upload size enforced while the body streams in: a file part past ``MAX_UPLOAD_BYTES`` is
dropped as it arrives (never written whole to memory or disk), and the request is marked so the
view answers Rocket.Chat's ``error-file-too-large`` instead of "no file"."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler, SkipFile

TOO_LARGE_ATTR = "concord_upload_too_large"


class SizeLimitedUploadHandler(FileUploadHandler):
    """First of ``FILE_UPLOAD_HANDLERS``: counts each file part's bytes and skips the part (for
    every handler after it) once it passes the limit."""

    def new_file(self, *args: Any, **kwargs: Any) -> None:
        super().new_file(*args, **kwargs)
        self.received = 0

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes | None:
        self.received += len(raw_data)
        if self.received > settings.MAX_UPLOAD_BYTES:
            if self.request is not None:
                setattr(self.request, TOO_LARGE_ATTR, True)
            raise SkipFile()
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None


def upload_too_large(request: Any) -> bool:
    """Whether a file part of this request was dropped for its size."""
    return bool(getattr(getattr(request, "_request", request), TOO_LARGE_ATTR, False))
