"""``manage.py federation_check [server_name]``: check federation the way a federation tester would.

Without an argument it checks this server as others will see it: settings and status, name
resolution of our server name, a TLS connection with certificate checking, our key response (self-
signed, matching our key) and a signed round trip to ourselves (an X-Matrix signed ``/version`` and
``/query/profile`` request). With a server name it checks that server: resolution, TLS, keys
(fetched and verified), ``/version``, and a signed request it must accept. Results in plain words;
the exit status is 1 if anything failed.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from federation import config
from federation.handlers.check import run_checks
from federation.status import RUNNING, federation_status


class Command(BaseCommand):
    help = "Check Matrix federation for this server, or for another server name."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("server_name", nargs="?", help="another server to check (default: this server)")

    def handle(self, *args: Any, **options: Any) -> None:
        target = options.get("server_name") or config.server_name()
        status = federation_status()
        self.stdout.write(f"Federation status: {status.state}")
        for problem in status.problems:
            self.stdout.write(f"  - {problem}")
        if not target:
            raise CommandError("No server to check: CONCORD_SERVER_NAME is not set and no server name was given.")
        failures = 0 if status.state == RUNNING else 1
        self.stdout.write(f"Checking {target}:")
        report = run_checks(target)
        for s in report.steps:
            self.stdout.write(f"  {'OK  ' if s.ok else 'FAIL'}  {s.label}: {s.detail}")
        failures += sum(1 for s in report.steps if not s.ok)
        if failures:
            raise CommandError(f"{failures} check(s) failed")
        self.stdout.write(self.style.SUCCESS("All federation checks passed."))
