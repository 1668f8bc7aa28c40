"""X-Matrix request authentication (spec "Request Authentication").

The signed object is ``{"method", "uri", "origin", "destination"[, "content"]}`` where ``uri`` is the
path and query *exactly as sent on the wire* (percent-encoding included). Inbound requests are
therefore verified against the raw request target (ASGI ``raw_path`` + ``query_string``), never
against Django's decoded ``path``.

:func:`sign_request` builds the ``Authorization`` header for an outbound request.
:func:`authenticate_request` checks an inbound one and returns the origin server name, or raises
:class:`AuthFailure` (answered 401 ``M_UNAUTHORIZED``; 403 ``M_FORBIDDEN`` when the origin is
blocked by configuration). The header may carry its fields in any order, quoted or not; the
``destination`` (optional for old senders) must be our server name exactly. The origin's key is
looked up in the cache and fetched if unknown; it must be valid now (``valid_until_ts`` in the
future), since old keys only serve for old events, not requests.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from django.http import HttpRequest
from unpaddedbase64 import decode_base64, encode_base64

from federation.protocol.canonical_json import encode_canonical_json
from federation.protocol.errors import CanonicalJsonError, InvalidIdentifier, SignatureError
from federation.protocol.ids import ServerName
from federation.protocol.signing import SigningKey, VerifyKey
from federation.transport.errors import KeyFetchError

MAX_AUTH_HEADER = 4096
_PARAM = re.compile(r'\s*([A-Za-z_]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))\s*(?:,|$)')


class AuthFailure(Exception):
    """An inbound request failed X-Matrix authentication.

    Attributes:
        status: the HTTP status to answer (401, or 403 for a blocked origin).
        errcode: the Matrix error code.
    """

    def __init__(self, message: str, status: int = 401, errcode: str = "M_UNAUTHORIZED") -> None:
        super().__init__(message)
        self.status = status
        self.errcode = errcode


def request_signing_payload(method: str, uri: str, origin: str, destination: str, content: Any = None) -> bytes:
    """The canonical bytes an X-Matrix signature covers."""
    obj: dict[str, Any] = {"method": method, "uri": uri, "origin": origin, "destination": destination}
    if content is not None:
        obj["content"] = content
    return encode_canonical_json(obj)


def sign_request(method: str, uri: str, origin: str, destination: str, key: SigningKey,
                 content: Any = None) -> str:
    """The ``Authorization`` header value for a request we send."""
    sig = encode_base64(key.sign(request_signing_payload(method, uri, origin, destination, content)))
    return f'X-Matrix origin="{origin}",destination="{destination}",key="{key.key_id}",sig="{sig}"'


def parse_x_matrix(header: str) -> dict[str, str]:
    """Parse ``X-Matrix k=v,k="v"...`` into a dict (field order free, quotes optional).

    Raises:
        AuthFailure: if the header is not an X-Matrix header or is malformed.
    """
    if len(header) > MAX_AUTH_HEADER:
        raise AuthFailure("Authorization header too long")
    scheme, _, params = header.strip().partition(" ")
    if scheme.lower() != "x-matrix":
        raise AuthFailure("Missing X-Matrix Authorization header")
    out: dict[str, str] = {}
    pos = 0
    params = params.strip()
    while pos < len(params):
        m = _PARAM.match(params, pos)
        if not m or m.end() == pos:
            raise AuthFailure("Malformed X-Matrix Authorization header")
        value = m.group(2) if m.group(2) is not None else m.group(3)
        out[m.group(1).lower()] = re.sub(r"\\(.)", r"\1", value)
        pos = m.end()
    return out


def raw_request_uri(request: HttpRequest) -> str:
    """The request target as received (path with its original percent-encoding, plus the query)."""
    scope = getattr(request, "scope", None)
    if isinstance(scope, Mapping):
        raw = scope.get("raw_path")
        path = raw.decode("latin-1") if isinstance(raw, bytes | bytearray) else request.path
        qs = scope.get("query_string") or b""
        query = qs.decode("latin-1") if isinstance(qs, bytes | bytearray) else str(qs)
    else:  # WSGI (Django's test client): the best we have.
        path = request.META.get("RAW_URI") or request.META.get("REQUEST_URI") or request.path
        query = "" if "?" in path else request.META.get("QUERY_STRING", "")
    return f"{path}?{query}" if query else path


KeyLookup = Callable[[str, Sequence[str]], Mapping[str, VerifyKey]]
"""``(server_name, key_ids) -> {key_id: VerifyKey}``: the origin's *current* keys valid now; raises
:class:`~federation.transport.errors.KeyFetchError` when they cannot be had."""


def authenticate_request(request: HttpRequest, content: Any, our_server_name: str, keys: KeyLookup) -> str:
    """Verify an inbound request's X-Matrix signature; return the origin server name.

    Args:
        request: the Django request.
        content: the parsed JSON body, or None when there is none.
        our_server_name: our server name (the ``destination`` the request must name).
        keys: where the origin's verify keys come from (the key store; it may fetch them).

    Raises:
        AuthFailure: on a missing/malformed header, wrong destination, unknown or expired key, or a
            signature that does not verify.
    """
    header = request.headers.get("Authorization", "")
    if not header:
        raise AuthFailure("Missing Authorization headers")
    fields = parse_x_matrix(header)
    origin, key_id, sig_b64 = fields.get("origin"), fields.get("key"), fields.get("sig")
    if not origin or not key_id or not sig_b64:
        raise AuthFailure("X-Matrix header needs origin, key and sig")
    try:
        ServerName.parse(origin)
    except InvalidIdentifier:
        raise AuthFailure("Invalid origin server name")
    destination = fields.get("destination")
    if destination is not None and destination != our_server_name:
        raise AuthFailure(f"Request is addressed to {destination!r}, not to this server")
    try:
        found = keys(origin, [key_id])
    except KeyFetchError as exc:
        raise AuthFailure(f"Could not get a valid key {key_id} of {origin}: {exc}")
    vk = found.get(key_id)
    if vk is None:
        raise AuthFailure(f"No valid key {key_id} of {origin}")
    try:
        sig = decode_base64(sig_b64)
        payload = request_signing_payload(request.method or "GET", raw_request_uri(request), origin,
                                          destination if destination is not None else our_server_name, content)
        vk.verify(payload, sig)
    except (SignatureError, CanonicalJsonError, ValueError):
        raise AuthFailure("Invalid signature")
    return origin
