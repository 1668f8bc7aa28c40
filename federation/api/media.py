"""Authenticated federation media: our files and avatars for other servers (what may be served:
:mod:`federation.bridge.media`; the multipart answer: :mod:`federation.transport.multipart`)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse

from federation.api.endpoint import matrix_endpoint
from federation.bridge.media import media_for
from federation.transport.multipart import encode_media


def _answer(origin: str, media_id: str, *, thumbnail: bool) -> HttpResponse:
    data, content_type, name = media_for(origin, media_id, thumbnail=thumbnail)
    body, multipart_type = encode_media(data, content_type, name)
    resp = HttpResponse(body, content_type=multipart_type)
    resp["Cache-Control"] = "private, max-age=86400"
    return resp


@matrix_endpoint(("GET",))
def download(request: HttpRequest, body: Any, origin: str, media_id: str) -> HttpResponse:
    """``GET /_matrix/federation/v1/media/download/{mediaId}``."""
    return _answer(origin, media_id, thumbnail=False)


@matrix_endpoint(("GET",))
def thumbnail(request: HttpRequest, body: Any, origin: str, media_id: str) -> HttpResponse:
    """``GET /_matrix/federation/v1/media/thumbnail/{mediaId}?width=&height=&method=`` (our one thumbnail)."""
    return _answer(origin, media_id, thumbnail=True)
