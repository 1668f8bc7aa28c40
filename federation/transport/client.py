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
import ssl
import threading
from typing import Any
from urllib.parse import quote

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter

from federation.transport.auth import sign_request
from federation.transport.discovery import DiscoveryError, ResolvedServer, resolve_server

MAX_RESPONSE_BYTES = 50 * 1024 * 1024


class FederationError(Exception):
    """An outbound request failed.

    Attributes:
        status: HTTP status, or 0 if there was no HTTP answer (DNS, connect, TLS, timeout).
        errcode: the Matrix ``errcode`` of the answer, if any.
        body: the parsed error body, if any.
    """

    def __init__(self, message: str, status: int = 0, errcode: str = "", body: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.errcode = errcode
        self.body = body


class _NamedTLSAdapter(HTTPAdapter):
    """Connects to an IP but checks the certificate of (and sends SNI for) ``tls_name``."""

    def __init__(self, tls_name: str, ctx: ssl.SSLContext) -> None:
        self.tls_name = tls_name
        self.ctx = ctx
        super().__init__(pool_connections=4, pool_maxsize=4, max_retries=0)

    def build_connection_pool_key_attributes(self, request: Any, verify: Any, cert: Any = None) -> Any:
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(request, verify, cert)
        pool_kwargs.pop("ca_certs", None)
        pool_kwargs.pop("ca_cert_dir", None)
        pool_kwargs["ssl_context"] = self.ctx
        pool_kwargs["server_hostname"] = self.tls_name
        pool_kwargs["assert_hostname"] = self.tls_name
        return host_params, pool_kwargs


_ctx_lock = threading.Lock()
_ctx: tuple[str, ssl.SSLContext] | None = None


def _ssl_context() -> ssl.SSLContext:
    global _ctx
    bundle = getattr(settings, "CONCORD_FEDERATION_CA_BUNDLE", "")
    with _ctx_lock:
        if _ctx is None or _ctx[0] != bundle:
            ctx = ssl.create_default_context()
            if bundle:
                ctx.load_verify_locations(cafile=bundle)
            _ctx = (bundle, ctx)
        return _ctx[1]


_sessions: dict[tuple[str, str, int, str], requests.Session] = {}
_sessions_lock = threading.Lock()


def _session_for(target: ResolvedServer) -> requests.Session:
    """A pooled session for one (address, port, TLS name); kept per thread-safe dict."""
    ip = target.addresses[0]
    key = (threading.current_thread().name, ip, target.port, target.tls_name)
    with _sessions_lock:
        s = _sessions.get(key)
        if s is None:
            s = requests.Session()
            s.trust_env = False
            s.mount("https://", _NamedTLSAdapter(target.tls_name, _ssl_context()))
            _sessions[key] = s
        return s


def close_sessions() -> None:
    """Close every pooled connection (tests, after a peer restarts)."""
    with _sessions_lock:
        for s in _sessions.values():
            s.close()
        _sessions.clear()


def encode_path(template: str, *args: str) -> str:
    """Fill ``{}`` placeholders of a path with percent-encoded IDs (``!``, ``$``, ``@``, ``:`` encoded)."""
    return template.format(*(quote(a, safe="") for a in args))


class FederationClient:
    """Signed requests from our server to other servers (synchronous; used in workers and views)."""

    def __init__(self, timeout: float | None = None) -> None:
        self.timeout = timeout if timeout is not None else settings.CONCORD_FEDERATION_TIMEOUT

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
        from federation.keys import get_signing_key, our_server_name

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
        headers = {"Host": target.host_header, "User-Agent": "Concord", "Accept": "application/json"}
        body: bytes | None = None
        if content is not None:
            body = json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode()
            headers["Content-Type"] = "application/json"
        if sign:
            headers["Authorization"] = sign_request(method, uri, our_server_name(), destination, get_signing_key(),
                                                    content)
        ip = target.addresses[0]
        url = f"https://{('[' + ip + ']') if ':' in ip else ip}:{target.port}{uri}"
        try:
            resp = _session_for(target).request(method, url, data=body, headers=headers,
                                                timeout=timeout or self.timeout, allow_redirects=False)
        except requests.RequestException as exc:
            raise FederationError(f"{destination}: {exc.__class__.__name__}: {exc}") from exc
        if len(resp.content) > MAX_RESPONSE_BYTES:
            raise FederationError(f"{destination}: response too large", resp.status_code)
        try:
            data = resp.json()
        except ValueError:
            data = None
        if not 200 <= resp.status_code < 300:
            errcode = data.get("errcode", "") if isinstance(data, dict) else ""
            error = data.get("error", "") if isinstance(data, dict) else resp.text[:200]
            raise FederationError(f"{destination} answered {resp.status_code} {errcode} {error}".strip(),
                                  resp.status_code, errcode, data)
        if data is None:
            raise FederationError(f"{destination}: answer is not JSON", resp.status_code)
        return data

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
