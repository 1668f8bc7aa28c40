"""Federation settings (Matrix). Imported at the end of ``chat.settings``; owned by the federation app.

Everything comes from the environment:

    CONCORD_SERVER_NAME              our Matrix server name (``domain`` or ``domain:port``). Federation is
                                     off until it is set.
    CONCORD_FEDERATION_ENABLED       ``0`` switches federation off even with a server name (default ``1``).
    CONCORD_TLS_CERT / CONCORD_TLS_KEY
                                     PEM files; when both are set the run command serves HTTPS with them.
                                     Federation is HTTPS only, so both are required to enable it.
    CONCORD_FEDERATION_CA_BUNDLE     extra CA certificates (PEM) trusted for outbound federation, on top of
                                     the system store.
    CONCORD_FEDERATION_ALLOW_PRIVATE ``1`` allows peers on loopback/private/link-local addresses, which are
                                     refused by default (SSRF protection, like Synapse's IP range blocklist).
    CONCORD_WELL_KNOWN_SERVER        if set (``host:port``), ``/.well-known/matrix/server`` delegates to it.
    CONCORD_FEDERATION_DNS_SERVERS   comma separated ``ip[:port]`` nameservers for SRV lookups (tests run
                                     a DNS server on loopback); default: the system resolver.
    CONCORD_FEDERATION_BACKOFF_MIN / _MAX
                                     seconds of the first outbound retry delay and its cap (default 60 and
                                     86400*7). Each failure doubles the delay, jittered x0.8-1.4.
    CONCORD_FEDERATION_CATCHUP_AFTER seconds of failures after which a destination switches to catch-up
                                     (queued EDUs dropped, only the newest PDU per room sent); default 3600.
    CONCORD_FEDERATION_TIMEOUT       seconds for an outbound request (default 30).
    CONCORD_FEDERATION_LEASE_SECONDS how long a sender holds a destination before another process may take
                                     it over (default 120; kept above the request timeout). A sender killed
                                     mid-send delays that destination by at most this long.
    CONCORD_FEDERATION_REDRIVE_SECONDS
                                     period of the beat task that re-drives due destinations (default 30).
    CONCORD_FEDERATION_UNSENT_WINDOW how far back (seconds, default 3600) that beat task looks for local
                                     messages of federated rooms whose Matrix event a crash or a database
                                     error kept from being made (it makes them, dated as posted; 0: off).
"""

from __future__ import annotations

import os

CONCORD_SERVER_NAME: str = os.environ.get("CONCORD_SERVER_NAME", "").strip()
CONCORD_FEDERATION_ENABLED: bool = os.environ.get("CONCORD_FEDERATION_ENABLED", "1") != "0"
CONCORD_TLS_CERT: str = os.environ.get("CONCORD_TLS_CERT", "").strip()
CONCORD_TLS_KEY: str = os.environ.get("CONCORD_TLS_KEY", "").strip()
CONCORD_FEDERATION_CA_BUNDLE: str = os.environ.get("CONCORD_FEDERATION_CA_BUNDLE", "").strip()
CONCORD_FEDERATION_ALLOW_PRIVATE: bool = os.environ.get("CONCORD_FEDERATION_ALLOW_PRIVATE", "0") == "1"
CONCORD_WELL_KNOWN_SERVER: str = os.environ.get("CONCORD_WELL_KNOWN_SERVER", "").strip()
CONCORD_FEDERATION_DNS_SERVERS: list[str] = [
    s.strip() for s in os.environ.get("CONCORD_FEDERATION_DNS_SERVERS", "").split(",") if s.strip()
]
CONCORD_FEDERATION_BACKOFF_MIN: float = float(os.environ.get("CONCORD_FEDERATION_BACKOFF_MIN", "60"))
CONCORD_FEDERATION_BACKOFF_MAX: float = float(os.environ.get("CONCORD_FEDERATION_BACKOFF_MAX", str(86400 * 7)))
CONCORD_FEDERATION_CATCHUP_AFTER: float = float(os.environ.get("CONCORD_FEDERATION_CATCHUP_AFTER", "3600"))
CONCORD_FEDERATION_TIMEOUT: float = float(os.environ.get("CONCORD_FEDERATION_TIMEOUT", "30"))
# Our key responses are valid for this long; peers re-fetch after it.
CONCORD_FEDERATION_KEY_VALIDITY: int = int(os.environ.get("CONCORD_FEDERATION_KEY_VALIDITY", str(7 * 86400)))

CONCORD_FEDERATION_LEASE_SECONDS: float = float(os.environ.get("CONCORD_FEDERATION_LEASE_SECONDS", "120"))
CONCORD_FEDERATION_REDRIVE_SECONDS: float = float(os.environ.get("CONCORD_FEDERATION_REDRIVE_SECONDS", "30"))
CONCORD_FEDERATION_UNSENT_WINDOW: float = float(os.environ.get("CONCORD_FEDERATION_UNSENT_WINDOW", "3600"))

FEDERATION_BEAT_SCHEDULE: dict[str, dict[str, object]] = {
    "federation-redrive-outbox": {"task": "federation.tasks.redrive_due_destinations",
                                  "schedule": CONCORD_FEDERATION_REDRIVE_SECONDS},
}

# Rooms across servers (federation.bridge, federation.handlers.joins).
# Room version of the Matrix rooms we create (10, 11 or 12).
CONCORD_FEDERATION_ROOM_VERSION: str = os.environ.get("CONCORD_FEDERATION_ROOM_VERSION", "12").strip() or "12"
# Comma separated server names or ``*.domain`` wildcards; the deny list wins; an empty allow list
# allows everyone not denied. Applied to every federation request, invite, join and send.
CONCORD_FEDERATION_ALLOWED_SERVERS: list[str] = [
    s.strip() for s in os.environ.get("CONCORD_FEDERATION_ALLOWED_SERVERS", "").split(",") if s.strip()
]
CONCORD_FEDERATION_DENIED_SERVERS: list[str] = [
    s.strip() for s in os.environ.get("CONCORD_FEDERATION_DENIED_SERVERS", "").split(",") if s.strip()
]
# Whether other servers may list our public channels (GET/POST /publicRooms); aliases resolve anyway.
CONCORD_FEDERATION_PUBLISH_ROOMS: bool = os.environ.get("CONCORD_FEDERATION_PUBLISH_ROOMS", "true").strip().lower() \
    not in ("0", "false", "no", "off")
# How many of a room's latest messages become Matrix history when it first federates (0: none).
CONCORD_FEDERATION_HISTORY_ON_FEDERATE: int = int(os.environ.get("CONCORD_FEDERATION_HISTORY_ON_FEDERATE", "200"))
# Requests one remote server may have in progress at once (more: 429 M_LIMIT_EXCEEDED).
CONCORD_FEDERATION_MAX_CONCURRENT: int = int(os.environ.get("CONCORD_FEDERATION_MAX_CONCURRENT", "5"))
# Rocket.Chat's federation switches: typing, read receipts and presence cross servers (both ways).
CONCORD_FEDERATION_TYPING: bool = os.environ.get("CONCORD_FEDERATION_TYPING", "1").strip().lower() \
    not in ("0", "false", "no", "off")
CONCORD_FEDERATION_RECEIPTS: bool = os.environ.get("CONCORD_FEDERATION_RECEIPTS", "1").strip().lower() \
    not in ("0", "false", "no", "off")
CONCORD_FEDERATION_PRESENCE: bool = os.environ.get("CONCORD_FEDERATION_PRESENCE", "1").strip().lower() \
    not in ("0", "false", "no", "off")
# Seconds a remote server may be unreachable before its rooms show a notice (and another when it is back).
CONCORD_FEDERATION_STALL_NOTICE_AFTER: float = float(os.environ.get("CONCORD_FEDERATION_STALL_NOTICE_AFTER", "3600"))
# Largest remote public room (directory member count) users may join from the directory (0: no cap).
CONCORD_FEDERATION_MAX_REMOTE_ROOM_SIZE: int = int(os.environ.get("CONCORD_FEDERATION_MAX_REMOTE_ROOM_SIZE", "100"))

# Inbound transactions (federation.handlers.receive, federation.handlers.room_queue): ``/send``
# stages the checked PDUs durably, hands their rooms to this process's room queue and answers after
# at most this many seconds (default 0: at once, as Synapse does; a PDU still being processed then
# reads ``{}``). Tests wait longer to read every PDU's verdict in the answer.
CONCORD_FEDERATION_SEND_WAIT: float = float(os.environ.get("CONCORD_FEDERATION_SEND_WAIT", "0"))
# Threads per process that process staged PDUs (one room at a time each; a room's events in order).
CONCORD_FEDERATION_INBOUND_THREADS: int = int(os.environ.get("CONCORD_FEDERATION_INBOUND_THREADS", "2"))
