"""Server name resolution (spec "Resolving server names"), with dnspython and requests.

Given a server name, :func:`resolve_server` returns where to connect (``addresses`` + ``port``), the
``Host`` header to send and the name the TLS certificate must match (also sent as SNI):

1. IP literal: that address, the given port or 8448; Host and TLS name are the literal.
2. Hostname with an explicit port: its A/AAAA records (``getaddrinfo``, so ``/etc/hosts`` applies).
3. Otherwise ``https://<name>/.well-known/matrix/server``. A valid ``m.server`` delegates to
   ``<delegated>``, which is then resolved by steps 1-2 (IP literal / explicit port) or by SRV
   ``_matrix-fed._tcp.<delegated>``, then ``_matrix._tcp.<delegated>``, then A/AAAA on 8448. Host
   header and TLS name become the delegated name. Results are cached: 24 h by default, the
   response's ``Cache-Control: max-age`` capped at 48 h; failures for 1 h.
4. Without delegation: SRV ``_matrix-fed._tcp.<name>``, then ``_matrix._tcp.<name>`` (Host and TLS
   name stay ``<name>``, never the SRV target), then ``<name>:8448``.

Every address is then checked against the blocklist (loopback, private, link-local, multicast,
reserved...) unless ``CONCORD_FEDERATION_ALLOW_PRIVATE`` is set: the SSRF protection Synapse
implements with ``federation_ip_range_blocklist``.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
import socket
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import requests

from federation import config
from federation.protocol.errors import InvalidIdentifier
from federation.protocol.ids import ServerName
from federation.transport.sessions import session_for

if TYPE_CHECKING:
    import dns.resolver

log = logging.getLogger(__name__)

DEFAULT_PORT = 8448
WELL_KNOWN_DEFAULT_TTL = 24 * 3600
WELL_KNOWN_MAX_TTL = 48 * 3600
WELL_KNOWN_ERROR_TTL = 3600
WELL_KNOWN_MAX_BYTES = 50 * 1024


class DiscoveryError(Exception):
    """The server name cannot be resolved to an address we may connect to."""


@dataclass(frozen=True)
class ResolvedServer:
    """Where and how to reach a server.

    Attributes:
        server_name: the name asked for.
        addresses: IP addresses to try, in order.
        port: the TCP port.
        host_header: the ``Host`` header value.
        tls_name: the name the certificate must match; sent as SNI.
    """

    server_name: str
    addresses: tuple[str, ...]
    port: int
    host_header: str
    tls_name: str


_well_known_cache: dict[str, tuple[float, str | None]] = {}
_cache_lock = threading.Lock()


def clear_caches() -> None:
    """Forget cached ``.well-known`` results (tests, and after configuration changes)."""
    with _cache_lock:
        _well_known_cache.clear()


def _is_blocked(ip: str) -> bool:
    addr = ipaddress.ip_address(ip)
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return not addr.is_global or addr.is_multicast


def check_addresses(addresses: list[str], what: str) -> tuple[str, ...]:
    """Drop blocked addresses (unless private peers are allowed); raise if none remains."""
    if not addresses:
        raise DiscoveryError(f"{what}: no address")
    if config.allow_private_addresses():
        return tuple(addresses)
    allowed = [a for a in addresses if not _is_blocked(a)]
    if not allowed:
        raise DiscoveryError(f"{what}: only private/loopback addresses ({', '.join(addresses)}), which are blocked")
    return tuple(allowed)


def _lookup_host(host: str, port: int) -> list[str]:
    """A/AAAA addresses of ``host``: ``getaddrinfo`` (so /etc/hosts applies), or the configured
    nameservers (``CONCORD_FEDERATION_DNS_SERVERS``) for names other than ``localhost``."""
    if config.dns_servers() and host != "localhost":
        import dns.exception  # here, not at the top: dnspython costs ~2 MB in every process (see _resolver)

        found: list[str] = []
        for rdtype in ("A", "AAAA"):
            try:
                found.extend(str(r) for r in _resolver().resolve(host, rdtype))
            except dns.exception.DNSException:
                continue
        if not found:
            raise DiscoveryError(f"cannot resolve {host}")
        return found
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise DiscoveryError(f"cannot resolve {host}: {exc}") from exc
    out: list[str] = []
    for info in infos:
        ip = str(info[4][0])
        if ip not in out:
            out.append(ip)
    return out


def _resolver() -> dns.resolver.Resolver:
    # Imported on first use, not with the module: dnspython is ~2 MB in every process that loads
    # the federation layer, and only a server that federates ever resolves SRV records.
    import dns.resolver

    servers = config.dns_servers()
    if not servers:
        return dns.resolver.Resolver()
    res = dns.resolver.Resolver(configure=False)
    res.nameservers = []
    for entry in servers:
        host, _, port = entry.rpartition(":") if entry.count(":") == 1 else (entry, "", "")
        res.nameservers.append(host or entry)
        if port:
            res.port = int(port)
    res.lifetime = 3.0
    return res


def _srv(name: str) -> list[tuple[str, int]]:
    """SRV targets ordered by priority then weight (heaviest first); empty if none."""
    # dnspython on first use (see _resolver)
    import dns.exception
    import dns.resolver

    try:
        answer = _resolver().resolve(name, "SRV")
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer, dns.resolver.NoNameservers):
        return []
    except dns.exception.DNSException as exc:
        log.info("SRV lookup of %s failed: %s", name, exc)
        return []
    records = sorted(answer, key=lambda r: (r.priority, -r.weight))
    return [(str(r.target).rstrip("."), int(r.port)) for r in records if str(r.target) != "."]


def _parse_max_age(header: str | None) -> float | None:
    if not header:
        return None
    m = re.search(r"max-age\s*=\s*(\d+)", header)
    return float(m.group(1)) if m else None


def _fetch_well_known(host: str) -> str | None:
    """The delegated server name from ``https://host/.well-known/matrix/server``, cached."""
    now = time.time()
    with _cache_lock:
        hit = _well_known_cache.get(host)
        if hit and hit[0] > now:
            return hit[1]
    result: str | None = None
    ttl: float = WELL_KNOWN_ERROR_TTL
    try:
        addrs = check_addresses(_lookup_host(host, 443), host)
        resp = session_for(addrs[0], 443, host).get(
            f"https://{_url_host(addrs[0])}:443/.well-known/matrix/server",
            headers={"Host": host}, timeout=10, allow_redirects=False, stream=True,
        )
        body = resp.raw.read(WELL_KNOWN_MAX_BYTES + 1, decode_content=True)
        if resp.status_code == 200 and len(body) <= WELL_KNOWN_MAX_BYTES:
            data = json.loads(body)
            delegated = data.get("m.server") if isinstance(data, dict) else None
            if isinstance(delegated, str):
                ServerName.parse(delegated)
                result = delegated
                max_age = _parse_max_age(resp.headers.get("Cache-Control"))
                ttl = min(max_age, WELL_KNOWN_MAX_TTL) if max_age is not None else WELL_KNOWN_DEFAULT_TTL
    except (DiscoveryError, requests.RequestException, ValueError, InvalidIdentifier) as exc:
        log.info(".well-known lookup for %s failed: %s", host, exc)
    with _cache_lock:
        _well_known_cache[host] = (now + ttl, result)
    return result


def _url_host(ip: str) -> str:
    return f"[{ip}]" if ":" in ip else ip


def _resolve_name(name: ServerName, host_header: str, tls_name: str, server_name: str) -> ResolvedServer | None:
    """Steps that need no .well-known: IP literal or explicit port. None if neither applies."""
    host = name.host
    if name.is_ip_literal:
        ip = host.strip("[]")
        return ResolvedServer(server_name, check_addresses([ip], server_name), name.port or DEFAULT_PORT,
                              host_header, tls_name)
    if name.port is not None:
        return ResolvedServer(server_name, check_addresses(_lookup_host(host, name.port), server_name),
                              name.port, host_header, tls_name)
    return None


def _resolve_srv_or_default(host: str, server_name: str) -> ResolvedServer:
    for prefix in ("_matrix-fed._tcp.", "_matrix._tcp."):
        for target, port in _srv(prefix + host):
            try:
                addrs = check_addresses(_lookup_host(target, port), server_name)
            except DiscoveryError as exc:
                log.info("SRV target %s:%s of %s unusable: %s", target, port, server_name, exc)
                continue
            return ResolvedServer(server_name, addrs, port, host, host)
    return ResolvedServer(server_name, check_addresses(_lookup_host(host, DEFAULT_PORT), server_name),
                          DEFAULT_PORT, host, host)


def resolve_server(server_name: str) -> ResolvedServer:
    """Resolve a server name as the spec says (see the module docstring).

    Raises:
        DiscoveryError: if the name is invalid, does not resolve, or only to blocked addresses.
    """
    try:
        name = ServerName.parse(server_name)
    except InvalidIdentifier as exc:
        raise DiscoveryError(f"invalid server name {server_name!r}") from exc
    direct = _resolve_name(name, server_name, name.host.strip("[]"), server_name)
    if direct is not None:
        return direct
    delegated = _fetch_well_known(name.host)
    if delegated is not None:
        dname = ServerName.parse(delegated)
        via = _resolve_name(dname, delegated, dname.host.strip("[]"), server_name)
        if via is not None:
            return via
        return _resolve_srv_or_default(dname.host, server_name)
    return _resolve_srv_or_default(name.host, server_name)
