"""The outbound federation HTTP client: discovery, TLS with the right SNI, X-Matrix signatures.

:class:`FederationClient` sends a request to a server *name*: it resolves it
(:mod:`.discovery`), connects to the resolved address, sends ``Host: <name or delegated name>``,
uses that name for SNI and certificate checking (never the IP or SRV target), and signs the request
with our key. Responses are JSON; anything else is an error. Certificates are checked against the
system store plus ``CONCORD_FEDERATION_CA_BUNDLE``. Environment proxies are ignored.

Errors are :class:`FederationError` with the HTTP status (0 when no answer came) and the Matrix
``errcode``, so callers (the outbox) can tell "try later" from "refused".
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import requests

from federation import config
from federation.signing_key import get_signing_key
from federation.transport.auth import sign_request
from federation.transport.discovery import DiscoveryError, resolve_server
from federation.transport.errors import FederationError
from federation.transport.sessions import session_for

__all__ = ["FederationClient", "FederationError", "encode_path"]

MAX_RESPONSE_BYTES = 50 * 1024 * 1024


def encode_path(template: str, *args: str) -> str:
    """Fill ``{}`` placeholders of a path with percent-encoded IDs (``!``, ``$``, ``@``, ``:`` encoded)."""
    return template.format(*(quote(a, safe="") for a in args))


class FederationClient:
    """Signed requests from our server to other servers (synchronous; used in workers and views)."""

    def __init__(self, timeout: float | None = None) -> None:
        self.timeout = timeout if timeout is not None else config.request_timeout()

    def _send(self, destination: str, method: str, path: str, *, query: dict[str, Any] | None,
              content: Any, sign: bool, timeout: float | None, accept: str) -> requests.Response:
        """Resolve, sign and send; return the raw response (any status).

        Raises:
            FederationError: on discovery failure, connection error or an oversized answer.
        """
        uri = path
        if query:
            uri += "?" + "&".join(
                f"{quote(str(k), safe='')}={quote(str(v), safe='')}"
                for k, vs in query.items() for v in (vs if isinstance(vs, list) else [vs])
            )
        try:
            target = resolve_server(destination)
        except DiscoveryError as exc:
            raise FederationError(str(exc)) from exc
        headers = {"Host": target.host_header, "User-Agent": "Concord", "Accept": accept}
        body: bytes | None = None
        if content is not None:
            body = json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode()
            headers["Content-Type"] = "application/json"
        if sign:
            headers["Authorization"] = sign_request(method, uri, config.server_name(), destination,
                                                    get_signing_key(), content)
        ip = target.addresses[0]
        url = f"https://{('[' + ip + ']') if ':' in ip else ip}:{target.port}{uri}"
        try:
            resp = session_for(ip, target.port, target.tls_name).request(
                method, url, data=body, headers=headers, timeout=timeout or self.timeout, allow_redirects=False)
        except requests.RequestException as exc:
            raise FederationError(f"{destination}: {exc.__class__.__name__}: {exc}") from exc
        if len(resp.content) > MAX_RESPONSE_BYTES:
            raise FederationError(f"{destination}: response too large", resp.status_code)
        return resp

    @staticmethod
    def _refuse_non_2xx(destination: str, resp: requests.Response, data: Any) -> None:
        if not 200 <= resp.status_code < 300:
            errcode = data.get("errcode", "") if isinstance(data, dict) else ""
            error = data.get("error", "") if isinstance(data, dict) else resp.text[:200]
            raise FederationError(f"{destination} answered {resp.status_code} {errcode} {error}".strip(),
                                  resp.status_code, errcode, data)

    def request(self, destination: str, method: str, path: str, *, query: dict[str, Any] | None = None,
                content: Any = None, sign: bool = True, timeout: float | None = None) -> Any:
        """Send a request and return the parsed JSON answer.

        Args:
            destination: the server name.
            method: HTTP method.
            path: the already percent-encoded path (see :func:`encode_path`).
            query: query parameters (encoded here, and the signature covers them as sent).
            content: a JSON body.
            sign: False only for key fetches, which are unauthenticated.

        Raises:
            FederationError: on discovery failure, connection error, non-2xx or non-JSON answers.
        """
        resp = self._send(destination, method, path, query=query, content=content, sign=sign, timeout=timeout,
                          accept="application/json")
        try:
            data = resp.json()
        except ValueError:
            data = None
        self._refuse_non_2xx(destination, resp, data)
        if data is None:
            raise FederationError(f"{destination}: answer is not JSON", resp.status_code)
        return data

    def get_bytes(self, destination: str, path: str, query: dict[str, Any] | None = None, *,
                  timeout: float | None = None) -> tuple[bytes, str]:
        """Signed GET of a non-JSON resource (media); returns ``(body, Content-Type)``.

        Raises:
            FederationError: as :meth:`request`, and for a non-2xx answer (its JSON error, if any).
        """
        resp = self._send(destination, "GET", path, query=query, content=None, sign=True, timeout=timeout,
                          accept="*/*")
        if not 200 <= resp.status_code < 300:
            try:
                data = resp.json()
            except ValueError:
                data = None
            self._refuse_non_2xx(destination, resp, data)
        return resp.content, resp.headers.get("Content-Type", "application/octet-stream")

    def get_json(self, destination: str, path: str, query: dict[str, Any] | None = None, **kw: Any) -> Any:
        """Signed GET."""
        return self.request(destination, "GET", path, query=query, **kw)

    def put_json(self, destination: str, path: str, content: Any, **kw: Any) -> Any:
        """Signed PUT with a JSON body."""
        return self.request(destination, "PUT", path, content=content, **kw)

    def post_json(self, destination: str, path: str, content: Any, **kw: Any) -> Any:
        """Signed POST with a JSON body."""
        return self.request(destination, "POST", path, content=content, **kw)

    def query_profile(self, destination: str, user_id: str, field: str | None = None) -> dict[str, Any]:
        """``GET /_matrix/federation/v1/query/profile``."""
        q: dict[str, Any] = {"user_id": user_id}
        if field:
            q["field"] = field
        result = self.get_json(destination, "/_matrix/federation/v1/query/profile", q)
        return result if isinstance(result, dict) else {}
