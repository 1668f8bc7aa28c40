"""Upload size enforced while the body streams in: a file part past the limit is dropped as it
arrives (never written whole to memory or disk), and the request is marked so the view answers
Rocket.Chat's ``error-file-too-large`` instead of "no file".

The limit is the run-time setting ``FileUpload_MaxFileSize`` (bytes, -1 for none; its default is
``MAX_UPLOAD_BYTES`` from ``CONCORD_MAX_UPLOAD_MB``), read once per file part."""

from __future__ import annotations

from typing import Any

from django.core.files.uploadhandler import FileUploadHandler, SkipFile

from accounts import server_settings

TOO_LARGE_ATTR = "concord_upload_too_large"


def max_upload_bytes() -> int | None:
    """The largest upload accepted now, in bytes (``FileUpload_MaxFileSize``); None: no limit."""
    limit = server_settings.number("FileUpload_MaxFileSize")
    return None if limit < 0 else limit


def too_large_message(limit: int | None) -> str:
    """Rocket.Chat's ``error-file-too-large`` text for ``limit``."""
    return f"File exceeds allowed size of {limit} bytes"


class SizeLimitedUploadHandler(FileUploadHandler):
    """First of ``FILE_UPLOAD_HANDLERS``: counts each file part's bytes and skips the part (for
    every handler after it) once it passes the limit."""

    def new_file(self, *args: Any, **kwargs: Any) -> None:
        super().new_file(*args, **kwargs)
        self.received = 0
        self.limit = max_upload_bytes()

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes | None:
        self.received += len(raw_data)
        if self.limit is not None and self.received > self.limit:
            if self.request is not None:
                setattr(self.request, TOO_LARGE_ATTR, True)
            raise SkipFile()
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None


def upload_too_large(request: Any) -> bool:
    """Whether a file part of this request was dropped for its size."""
    return bool(getattr(getattr(request, "_request", request), TOO_LARGE_ATTR, False))
