"""A real Synapse on loopback, with TLS from a throw-away CA, for federation tests.

:func:`make_ca` writes a CA and issues server certificates (SANs ``localhost``, ``127.0.0.1``,
``::1``) with ``cryptography``. :class:`SynapseServer` writes a minimal ``homeserver.yaml`` (one TLS
listener with the client, federation and keys resources; SQLite; no trusted key servers; an IP
blocklist that lists every range except loopback, so Synapse may talk to the test's Concord; short
federation retry intervals; relaxed rate limits), starts ``synapse.app.homeserver`` as a subprocess,
waits for ``/health`` and registers users through the shared-secret admin API. :meth:`stop`
terminates it (and :meth:`restart` starts it again on the same port and data), so tests never leave
a Synapse running. Nothing leaves 127.0.0.0/8.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import ipaddress
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.servers import free_port

# Synapse's default blocklist minus 127.0.0.0/8 and ::1 (and without 0.0.0.0/8, which would also
# block ::1 through Synapse's IPv4-to-IPv6 mapping).
BLOCKLIST_EXCEPT_LOOPBACK = [
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "192.0.0.0/24", "169.254.0.0/16",
    "192.88.99.0/24", "198.18.0.0/15", "192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4",
    "fe80::/10", "fc00::/7", "2001:db8::/32", "ff00::/8", "fec0::/10",
]


@dataclass
class TestCA:
    """A throw-away CA and the files of one issued server certificate per name."""

    __test__ = False

    directory: Path
    ca_cert: Path
    ca_key: Any
    ca: x509.Certificate

    def issue(self, name: str, extra_dns: tuple[str, ...] = ()) -> tuple[Path, Path]:
        """A server certificate for loopback names (and ``extra_dns``); returns (cert path, key path)."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(self.ca.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                x509.IPAddress(ipaddress.ip_address("::1")), *[x509.DNSName(n) for n in extra_dns]]),
                critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(self.ca_key, hashes.SHA256())
        )
        cert_path = self.directory / f"{name}.crt"
        key_path = self.directory / f"{name}.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        return cert_path, key_path


def make_ca(directory: Path) -> TestCA:
    """Create a CA in ``directory`` (one certificate per file, as Synapse reads only the first)."""
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Concord test CA")])
    ca = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .sign(key, hashes.SHA256())
    )
    ca_path = directory / "ca.crt"
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    return TestCA(directory, ca_path, key, ca)


class SynapseServer:
    """One Synapse process on 127.0.0.1 (server name ``localhost:<port>``)."""

    def __init__(self, directory: Path, ca: TestCA) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.ca = ca
        self.port = free_port()
        self.server_name = f"localhost:{self.port}"
        self.base_url = f"https://127.0.0.1:{self.port}"
        self.secret = "concord-test-secret"
        self.proc: subprocess.Popen[bytes] | None = None
        self.cert, self.key = ca.issue(f"synapse-{self.port}")
        self.config = self.dir / "homeserver.yaml"
        self.log_file = self.dir / "homeserver.log"
        self._write_config()

    def _write_config(self) -> None:
        import json

        log_config = self.dir / "log.yaml"
        log_config.write_text(
            "version: 1\n"
            "formatters: {f: {format: '%(asctime)s %(name)s %(levelname)s %(request)s %(message)s'}}\n"
            "filters: {context: {(): synapse.logging.context.LoggingContextFilter, request: ''}}\n"
            f"handlers: {{file: {{class: logging.FileHandler, filename: {json.dumps(str(self.log_file))}, "
            "formatter: f, filters: [context]}}\n"
            "loggers: {synapse.access: {level: INFO}, synapse.federation.transport.server: {level: INFO}}\n"
            "root: {level: WARNING, handlers: [file]}\n"
            "disable_existing_loggers: false\n"
        )
        cfg: dict[str, Any] = {
            "server_name": self.server_name,
            "pid_file": str(self.dir / "homeserver.pid"),
            "listeners": [{"port": self.port, "bind_addresses": ["127.0.0.1"], "type": "http", "tls": True,
                           "x_forwarded": False, "resources": [{"names": ["client", "federation", "keys"],
                                                                "compress": False}]}],
            "tls_certificate_path": str(self.cert),
            "tls_private_key_path": str(self.key),
            "federation_custom_ca_list": [str(self.ca.ca_cert)],
            "federation_verify_certificates": True,
            "database": {"name": "sqlite3", "args": {"database": str(self.dir / "homeserver.db")}},
            "log_config": str(log_config),
            "media_store_path": str(self.dir / "media"),
            "signing_key_path": str(self.dir / "signing.key"),
            "registration_shared_secret": self.secret,
            "report_stats": False,
            "trusted_key_servers": [],
            "suppress_key_server_warning": True,
            "url_preview_enabled": False,
            "enable_registration": False,
            "ip_range_blacklist": BLOCKLIST_EXCEPT_LOOPBACK,
            "federation": {"destination_min_retry_interval": "1s", "destination_max_retry_interval": "2s",
                           "destination_retry_multiplier": 1},
            "rc_message": {"per_second": 1000, "burst_count": 1000},
            "rc_federation": {"window_size": 1000, "sleep_limit": 1000, "sleep_delay": 1, "reject_limit": 1000,
                              "concurrent": 100},
            "rc_registration": {"per_second": 1000, "burst_count": 1000},
            "rc_login": {"address": {"per_second": 1000, "burst_count": 1000},
                         "account": {"per_second": 1000, "burst_count": 1000},
                         "failed_attempts": {"per_second": 1000, "burst_count": 1000}},
            "rc_joins": {"local": {"per_second": 1000, "burst_count": 1000},
                         "remote": {"per_second": 1000, "burst_count": 1000}},
            "presence": {"enabled": False},
            "allow_public_rooms_over_federation": True,  # its directory, for our searchPublicRooms
            "room_list_publication_rules": [{"action": "allow"}],  # users may publish (default: admins only)
        }
        self.config.write_text(json.dumps(cfg, indent=1))  # JSON is YAML

    def session(self) -> requests.Session:
        s = requests.Session()
        s.trust_env = False
        s.verify = str(self.ca.ca_cert)
        return s

    def start(self, timeout: float = 60.0) -> None:
        env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
        env.pop("DJANGO_SETTINGS_MODULE", None)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "synapse.app.homeserver", "-c", str(self.config)],
            cwd=self.dir, env=env, stdout=open(self.dir / "stdout.log", "ab"), stderr=subprocess.STDOUT,
        )
        deadline = time.time() + timeout
        s = self.session()
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"Synapse exited: {(self.dir / 'stdout.log').read_text()[-3000:]}")
            try:
                if s.get(self.base_url + "/health", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("Synapse did not start in time")

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def register(self, username: str, password: str = "password123", displayname: str | None = None) -> str:
        """Register a user with the shared secret; returns an access token."""
        s = self.session()
        nonce = s.get(self.base_url + "/_synapse/admin/v1/register", timeout=10).json()["nonce"]
        mac_hex = hmac.new(self.secret.encode(), f"{nonce}\x00{username}\x00{password}\x00notadmin".encode(),
                           hashlib.sha1).hexdigest()
        body = {"nonce": nonce, "username": username, "password": password, "admin": False, "mac": mac_hex}
        if displayname:
            body["displayname"] = displayname
        r = s.post(self.base_url + "/_synapse/admin/v1/register", json=body, timeout=30)
        r.raise_for_status()
        return str(r.json()["access_token"])

    def client_get(self, path: str, token: str, **kw: Any) -> requests.Response:
        return self.session().get(self.base_url + path, headers={"Authorization": f"Bearer {token}"}, timeout=30,
                                  **kw)

    def client_put(self, path: str, token: str, body: Any) -> requests.Response:
        return self.session().put(self.base_url + path, json=body, headers={"Authorization": f"Bearer {token}"},
                                  timeout=30)

    def log_text(self) -> str:
        return self.log_file.read_text() if self.log_file.exists() else ""
