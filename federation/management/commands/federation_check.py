"""``manage.py federation_check [server_name]``: check federation the way a federation tester would.

Without an argument it checks this server as others will see it: settings and status, name
resolution of our server name, a TLS connection with certificate checking, our key response (self-
signed, matching our key) and a signed round trip to ourselves (an X-Matrix signed ``/version`` and
``/query/profile`` request). With a server name it checks that server: resolution, TLS, keys
(fetched and verified), ``/version``, and a signed request it must accept. Results in plain words;
the exit status is 1 if anything failed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from federation import config
from federation.handlers.keys import fetch_server_keys
from federation.signing_key import get_signing_key
from federation.status import RUNNING, federation_status
from federation.store.keys import check_key_response
from federation.transport.client import FederationClient, FederationError
from federation.transport.discovery import clear_caches, resolve_server


class Command(BaseCommand):
    help = "Check Matrix federation for this server, or for another server name."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("server_name", nargs="?", help="another server to check (default: this server)")

    def handle(self, *args: Any, **options: Any) -> None:
        target = options.get("server_name") or config.server_name()
        failures = 0

        def step(label: str, fn: Callable[[], str]) -> bool:
            nonlocal failures
            try:
                detail = fn()
                self.stdout.write(f"  OK    {label}: {detail}")
                return True
            except Exception as exc:
                failures += 1
                self.stdout.write(f"  FAIL  {label}: {exc}")
                return False

        status = federation_status()
        self.stdout.write(f"Federation status: {status.state}")
        for problem in status.problems:
            self.stdout.write(f"  - {problem}")
        if not target:
            raise CommandError("No server to check: CONCORD_SERVER_NAME is not set and no server name was given.")
        if status.state != RUNNING:
            failures += 1
        self.stdout.write(f"Checking {target}:")
        clear_caches()
        resolved: dict[str, Any] = {}

        def resolve() -> str:
            r = resolve_server(target)
            resolved["r"] = r
            return (f"connect to {', '.join(r.addresses)} port {r.port}; Host header {r.host_header}; "
                    f"certificate must match {r.tls_name}")

        if not step("name resolution", resolve):
            raise CommandError(f"{failures} check(s) failed")
        client = FederationClient(timeout=15)

        def keys() -> str:
            if target == config.server_name():
                resp = client.get_json(target, "/_matrix/key/v2/server", sign=False)
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
        if failures:
            raise CommandError(f"{failures} check(s) failed")
        self.stdout.write(self.style.SUCCESS("All federation checks passed."))
