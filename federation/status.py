"""Federation status, as shown to administrators and by ``federation_check``.

* ``Disabled``: no ``CONCORD_SERVER_NAME``, or the switch ``Federation_Matrix_enabled`` off (a
  run-time setting; by default ``CONCORD_FEDERATION_ENABLED``).
* ``Could not enable``: configured but something required is missing or broken (invalid server
  name, TLS certificate/key not set or unreadable, signing key unusable); :func:`federation_status`
  says what, in plain words.
* ``Booting``: configured, but the database tables are not there yet (migrations pending).
* ``Running``: endpoints are served and the outbox delivers.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from django.db import DatabaseError

from federation import config
from federation.models import Destination
from federation.protocol.errors import InvalidIdentifier
from federation.protocol.ids import ServerName
from federation.signing_key import get_signing_key

DISABLED, COULD_NOT_ENABLE, BOOTING, RUNNING = "Disabled", "Could not enable", "Booting", "Running"


@dataclass(frozen=True)
class FederationStatus:
    """The state and the reasons behind it."""

    state: str
    problems: list[str] = field(default_factory=list)

    @property
    def running(self) -> bool:
        return self.state == RUNNING


def federation_status() -> FederationStatus:
    """Compute the current status (cheap: no network)."""
    name = config.server_name()
    if not config.enabled():
        return FederationStatus(DISABLED, ["CONCORD_SERVER_NAME is not set" if not name
                                           else "Federation is switched off (the setting Federation_Matrix_enabled;"
                                                " by default CONCORD_FEDERATION_ENABLED)"])
    problems: list[str] = []
    try:
        ServerName.parse(name)
    except InvalidIdentifier:
        problems.append(f"CONCORD_SERVER_NAME {name!r} is not a valid server name")
    cert, key = config.tls_files()
    if not cert or not key:
        problems.append("CONCORD_TLS_CERT and CONCORD_TLS_KEY must both be set: federation is HTTPS only")
    else:
        for label, path in (("CONCORD_TLS_CERT", cert), ("CONCORD_TLS_KEY", key)):
            if not os.access(path, os.R_OK):
                problems.append(f"{label} file {path} cannot be read")
    bundle = config.ca_bundle()
    if bundle and not os.access(bundle, os.R_OK):
        problems.append(f"CONCORD_FEDERATION_CA_BUNDLE file {bundle} cannot be read")
    try:
        get_signing_key()
    except Exception as exc:  # any failure here means we cannot sign: report it, do not crash
        problems.append(f"the signing key in {config.data_dir()} is unusable: {exc}")
    if problems:
        return FederationStatus(COULD_NOT_ENABLE, problems)
    try:
        Destination.objects.exists()
    except DatabaseError:
        return FederationStatus(BOOTING, ["database migrations are not applied yet"])
    return FederationStatus(RUNNING)
