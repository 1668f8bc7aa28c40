"""The ``multipart/mixed`` answer of authenticated federation media (spec: ``GET
/_matrix/federation/v1/media/download/{mediaId}`` and ``/thumbnail/{mediaId}``).

The answer has two parts: a JSON object (metadata, ``{}`` today), then either the media itself
(its own ``Content-Type``, optionally ``Content-Disposition``) or a ``Location`` header pointing at
it. :func:`encode_media` builds one; :func:`decode_media` reads one, refusing anything else.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass
from typing import Any


class MultipartError(ValueError):
    """Not a well-formed media answer."""


@dataclass(frozen=True)
class MediaPart:
    """The second part: the bytes and their type, or where to fetch them."""

    metadata: dict[str, Any]
    content_type: str
    data: bytes | None
    location: str | None = None


def encode_media(data: bytes, content_type: str, filename: str | None = None) -> tuple[bytes, str]:
    """``(body, Content-Type header)`` of a media answer carrying ``data``."""
    boundary = secrets.token_hex(16)
    headers = [f"Content-Type: {content_type}"]
    if filename:
        quoted = filename.replace("\\", "_").replace('"', "_").replace("\r", "").replace("\n", "")
        headers.append(f'Content-Disposition: inline; filename="{quoted}"')
    head = (f"--{boundary}\r\nContent-Type: application/json\r\n\r\n{{}}\r\n"
            f"--{boundary}\r\n" + "\r\n".join(headers) + "\r\n\r\n")
    body = head.encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/mixed; boundary={boundary}"


_BOUNDARY_RE = re.compile(r'boundary="?([^";]+)"?', re.I)


def _headers(block: bytes) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in block.decode("latin-1").split("\r\n"):
        if ":" in line:
            name, value = line.split(":", 1)
            out[name.strip().lower()] = value.strip()
    return out


def decode_media(body: bytes, content_type: str) -> MediaPart:
    """Read a media answer.

    Raises:
        MultipartError: not ``multipart/mixed`` with a boundary, fewer than two parts, or a first
            part that is not a JSON object.
    """
    if not content_type.lower().startswith("multipart/mixed"):
        raise MultipartError(f"expected multipart/mixed, got {content_type[:100]!r}")
    m = _BOUNDARY_RE.search(content_type)
    if m is None:
        raise MultipartError("multipart answer without a boundary")
    delimiter = b"--" + m.group(1).encode("latin-1")
    chunks = body.split(delimiter)
    parts = [c for c in chunks[1:] if not c.startswith(b"--")]
    if len(parts) < 2:
        raise MultipartError("a media answer has two parts")
    decoded: list[tuple[dict[str, str], bytes]] = []
    for part in parts[:2]:
        part = part[2:] if part.startswith(b"\r\n") else part
        head, sep, payload = part.partition(b"\r\n\r\n")
        if not sep:
            head, payload = b"", part  # a part with no headers
        if payload.endswith(b"\r\n"):
            payload = payload[:-2]
        decoded.append((_headers(head), payload))
    try:
        metadata = json.loads(decoded[0][1] or b"{}")
    except ValueError as exc:
        raise MultipartError(f"the metadata part is not JSON: {exc}") from exc
    if not isinstance(metadata, dict):
        raise MultipartError("the metadata part is not a JSON object")
    headers, payload = decoded[1]
    if "location" in headers:
        return MediaPart(metadata, headers.get("content-type", ""), None, headers["location"])
    return MediaPart(metadata, headers.get("content-type", "application/octet-stream"), payload)
