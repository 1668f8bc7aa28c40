"""Server discovery against a DNS server and a ``.well-known`` server on loopback (nothing leaves
127.0.0.0/8): IP literals, explicit ports, delegation, SRV ``_matrix-fed._tcp`` then ``_matrix._tcp``,
8448, Host/SNI names, the SSRF blocklist, and a signed request through a delegation."""

from __future__ import annotations

import json
import socket
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import dns.message
import dns.rcode
import dns.rrset
import pytest

from tests.federation.conftest import ConcordTLS
from tests.federation.synapse_harness import TestCA

WK_IP = "127.77.0.1"


class LoopbackDNS:
    """A tiny authoritative DNS server (UDP) answering from a dict ``(name, type) -> [rdata text]``."""

    def __init__(self, records: dict[tuple[str, str], list[str]]) -> None:
        self.records = records
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.queries: list[tuple[str, str]] = []
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.running = True
        self.thread.start()

    def serve(self) -> None:
        while self.running:
            try:
                data, addr = self.sock.recvfrom(4096)
            except OSError:
                return
            q = dns.message.from_wire(data)
            resp = dns.message.make_response(q)
            question = q.question[0]
            name = question.name.to_text().rstrip(".")
            rtype = dns.rdatatype.to_text(question.rdtype)
            self.queries.append((name, rtype))
            answers = self.records.get((name, rtype))
            if answers:
                resp.answer.append(dns.rrset.from_text_list(question.name, 60, "IN", rtype, answers))
            elif not any(n == name for n, _ in self.records):
                resp.set_rcode(dns.rcode.NXDOMAIN)
            self.sock.sendto(resp.to_wire(), addr)

    def close(self) -> None:
        self.running = False
        self.sock.close()


@pytest.fixture
def dns_server(settings: Any, concord_tls: ConcordTLS) -> Iterator[LoopbackDNS]:
    from federation.transport import discovery

    port = concord_tls.port
    server = LoopbackDNS({
        ("_matrix-fed._tcp.srv.test", "SRV"): [f"10 5 {port} target.test."],
        ("_matrix._tcp.legacy.test", "SRV"): [f"10 5 {port} target.test."],
        ("target.test", "A"): ["127.0.0.1"],
        ("plain.test", "A"): ["127.0.0.1"],
        ("wk.test", "A"): [WK_IP],
        ("delegated.test", "A"): ["127.0.0.1"],
        ("_matrix-fed._tcp.delegated-srv.test", "SRV"): [f"0 0 {port} target.test."],
        ("delegated-srv.test", "TXT"): ['"x"'],
        ("public.test", "A"): ["8.8.8.8"],
    })
    settings.CONCORD_FEDERATION_DNS_SERVERS = [f"127.0.0.1:{server.port}"]
    settings.CONCORD_FEDERATION_ALLOW_PRIVATE = True
    discovery.clear_caches()
    yield server
    server.close()
    discovery.clear_caches()


@pytest.fixture
def well_known(fed_ca: TestCA, settings: Any) -> Iterator[dict[str, Any]]:
    """HTTPS on 127.77.0.1:443 serving ``/.well-known/matrix/server`` for ``wk.test``."""
    state: dict[str, Any] = {"body": {"m.server": "delegated.test:1234"}, "hits": 0}
    cert, key = fed_ca.issue("wk", ("wk.test",))

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            state["hits"] += 1
            state["host"] = self.headers.get("Host")
            data = json.dumps(state["body"]).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    try:
        httpd = ThreadingHTTPServer((WK_IP, 443), Handler)
    except OSError as exc:
        pytest.skip(f"cannot listen on {WK_IP}:443: {exc}")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(cert), str(key))
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    settings.CONCORD_FEDERATION_CA_BUNDLE = str(fed_ca.ca_cert)
    from federation.transport import sessions

    sessions.close_sessions()
    yield state
    httpd.shutdown()
    httpd.server_close()


def test_ip_literals_and_explicit_ports(settings: Any) -> None:
    from federation.transport.discovery import resolve_server

    settings.CONCORD_FEDERATION_ALLOW_PRIVATE = True
    r = resolve_server("127.0.0.1:8500")
    assert (r.addresses, r.port, r.host_header, r.tls_name) == (("127.0.0.1",), 8500, "127.0.0.1:8500", "127.0.0.1")
    r = resolve_server("[::1]")
    assert (r.addresses, r.port, r.host_header, r.tls_name) == (("::1",), 8448, "[::1]", "::1")
    r = resolve_server("localhost:9000")
    assert (r.addresses, r.port, r.host_header, r.tls_name) == (("127.0.0.1",), 9000, "localhost:9000", "localhost")


def test_private_addresses_are_blocked_by_default(settings: Any) -> None:
    from federation.transport.discovery import DiscoveryError, resolve_server

    settings.CONCORD_FEDERATION_ALLOW_PRIVATE = False
    for name in ("127.0.0.1:8448", "10.1.2.3", "[::1]:8448", "localhost:8448", "169.254.169.254", "[::ffff:127.0.0.1]"):
        with pytest.raises(DiscoveryError):
            resolve_server(name)
    with pytest.raises(DiscoveryError):
        resolve_server("bad name!")


def test_srv_then_legacy_srv_then_8448(dns_server: LoopbackDNS, concord_tls: ConcordTLS, settings: Any) -> None:
    from federation.transport.discovery import resolve_server

    r = resolve_server("srv.test")
    assert (r.addresses, r.port, r.host_header, r.tls_name) == (("127.0.0.1",), concord_tls.port, "srv.test",
                                                                "srv.test")
    assert ("_matrix-fed._tcp.srv.test", "SRV") in dns_server.queries
    r = resolve_server("legacy.test")
    assert (r.port, r.host_header) == (concord_tls.port, "legacy.test")
    assert dns_server.queries.index(("_matrix-fed._tcp.legacy.test", "SRV")) < dns_server.queries.index(
        ("_matrix._tcp.legacy.test", "SRV"))
    r = resolve_server("plain.test")
    assert (r.addresses, r.port, r.tls_name) == (("127.0.0.1",), 8448, "plain.test")
    settings.CONCORD_FEDERATION_ALLOW_PRIVATE = False
    r = resolve_server("public.test")
    assert r.addresses == ("8.8.8.8",)  # resolved only: nothing connects to it


def test_well_known_delegation_is_followed_and_cached(dns_server: LoopbackDNS, well_known: dict[str, Any]) -> None:
    from federation.transport.discovery import resolve_server

    r = resolve_server("wk.test")
    assert (r.addresses, r.port, r.host_header, r.tls_name) == (("127.0.0.1",), 1234, "delegated.test:1234",
                                                                "delegated.test")
    assert well_known["host"] == "wk.test"
    resolve_server("wk.test")
    assert well_known["hits"] == 1  # cached


def test_signed_request_through_srv_uses_server_name_for_sni(dns_server: LoopbackDNS, fed: ConcordTLS,
                                                             fed_ca: TestCA, settings: Any) -> None:
    """Our own listener named ``srv.test`` (via SRV): the certificate must match ``srv.test``, not the
    SRV target; our certificate only covers localhost/127.0.0.1, so TLS must fail for the name."""
    from federation.transport.client import FederationClient, FederationError

    settings.CONCORD_FEDERATION_DNS_SERVERS = [f"127.0.0.1:{dns_server.port}"]
    with pytest.raises(FederationError) as err:
        FederationClient(timeout=5).get_json("srv.test", "/_matrix/federation/v1/version", sign=False)
    assert "certificate" in str(err.value).lower() or "ssl" in str(err.value).lower()
    # Through an explicit port on a name the certificate covers, the same listener answers.
    v = FederationClient(timeout=5).get_json(f"localhost:{fed.port}", "/_matrix/federation/v1/version", sign=False)
    assert v["server"]["name"] == "Concord"
