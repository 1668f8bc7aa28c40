"""The pool of outbound HTTPS sessions: one ``requests.Session`` per (thread, address, port, TLS name).

A session connects to a resolved IP address but checks the certificate of, and sends SNI for,
the server's *name* (never the IP or an SRV target). Certificates are checked against the system
store plus ``CONCORD_FEDERATION_CA_BUNDLE``; environment proxies are ignored. Both the signed
client (:mod:`.client`) and discovery's ``.well-known`` fetch (:mod:`.discovery`) use it.
"""

from __future__ import annotations

import ssl
import threading
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from federation import config


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
    bundle = config.ca_bundle()
    with _ctx_lock:
        if _ctx is None or _ctx[0] != bundle:
            ctx = ssl.create_default_context()
            if bundle:
                ctx.load_verify_locations(cafile=bundle)
            _ctx = (bundle, ctx)
        return _ctx[1]


_sessions: dict[tuple[str, str, int, str], requests.Session] = {}
_sessions_lock = threading.Lock()


def session_for(address: str, port: int, tls_name: str) -> requests.Session:
    """A pooled session for one (address, port, TLS name), per thread."""
    key = (threading.current_thread().name, address, port, tls_name)
    with _sessions_lock:
        s = _sessions.get(key)
        if s is None:
            s = requests.Session()
            s.trust_env = False
            s.mount("https://", _NamedTLSAdapter(tls_name, _ssl_context()))
            _sessions[key] = s
        return s


def close_sessions() -> None:
    """Close every pooled connection (tests, after a peer restarts)."""
    with _sessions_lock:
        for s in _sessions.values():
            s.close()
        _sessions.clear()
