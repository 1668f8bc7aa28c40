"""The federation check, as a federation tester would run it, in plain words (used by
``manage.py federation_check`` and the admin's "check" in the REST API and web client).

Without a target it checks this server as others will see it: resolution of our name, TLS with
certificate checking, our key response (self-signed, matching our key) and a signed round trip to
ourselves. With a server name it checks that server: resolution, TLS, keys (fetched and
verified), ``/version``, and a signed request it must accept.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from federation import config
from federation.handlers.keys import fetch_server_keys
from federation.signing_key import get_signing_key
from federation.store.keys import check_key_response
from federation.transport.client import FederationClient, FederationError
from federation.transport.discovery import clear_caches, resolve_server


@dataclass(frozen=True)
class Step:
    label: str
    ok: bool
    detail: str


@dataclass
class CheckReport:
    target: str
    steps: list[Step] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.steps) and all(s.ok for s in self.steps)


def run_checks(target: str) -> CheckReport:
    """Run the checks against ``target`` (our own name: this server); never raises."""
    report = CheckReport(target)

    def step(label: str, fn: Callable[[], str]) -> bool:
        try:
            report.steps.append(Step(label, True, fn()))
            return True
        except Exception as exc:  # every failure is a finding, said in words
            report.steps.append(Step(label, False, str(exc) or exc.__class__.__name__))
            return False

    clear_caches()

    def resolve() -> str:
        r = resolve_server(target)
        return (f"connect to {', '.join(r.addresses)} port {r.port}; Host header {r.host_header}; "
                f"certificate must match {r.tls_name}")

    if not step("name resolution", resolve):
        return report
    client = FederationClient(timeout=15)

    def keys() -> str:
        if target == config.server_name():
            resp: Any = client.get_json(target, "/_matrix/key/v2/server", sign=False)
            check_key_response(resp, target)
            if get_signing_key().key_id not in resp["verify_keys"]:
                raise RuntimeError("the key served is not the key this process signs with")
        else:
            resp = fetch_server_keys(target)
        return f"TLS certificate valid; keys {', '.join(resp['verify_keys'])} self-signed and valid"

    step("TLS and signing keys", keys)

    def version() -> str:
        v = client.get_json(target, "/_matrix/federation/v1/version")
        server = v.get("server", {}) if isinstance(v, dict) else {}
        return f"{server.get('name', '?')} {server.get('version', '?')}"

    step("federation API (/version)", version)

    def signed_round_trip() -> str:
        try:
            client.query_profile(target, f"@federation-check:{target}")
        except FederationError as exc:
            if exc.status in (401, 0) or exc.status >= 500:
                raise
            return f"our signed request was accepted (answer {exc.status} {exc.errcode} for a made-up user)"
        return "our signed request was accepted"

    step("signed request (X-Matrix)", signed_round_trip)
    return report
