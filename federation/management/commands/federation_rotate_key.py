"""``manage.py federation_rotate_key``: new signing key under a new key ID; the old one kept as expired."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from federation.signing_key import rotate_signing_key


class Command(BaseCommand):
    help = "Rotate the Matrix signing key (new key ID; the old public key goes to old_verify_keys)."

    def handle(self, *args: Any, **options: Any) -> None:

        old, new = rotate_signing_key()
        self.stdout.write(f"Signing key rotated: {old} is now an old key, {new} signs from now on.")
        self.stdout.write("Restart the web and worker processes so they all pick up the new key.")
