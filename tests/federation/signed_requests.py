"""X-Matrix signed requests to a homeserver, and the scripted peer's requests to our Concord.

``signed_call`` sends any request as a given origin with a given key (used against Concord and
against Synapse). ``call``, ``send_txn`` and ``joined_room`` are the :class:`FakePeer`'s side of a
conversation with the Concord under test (the ``fed`` fixture's TLS listener).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import requests

from federation.protocol.signing import SigningKey
from federation.transport.auth import sign_request
from tests.federation.conftest import ConcordTLS
from tests.federation.fakepeer import FakePeer, PeerRoom


def signed_call(base_url: str, ca: Path, method: str, path: str, *, origin: str, destination: str, key: SigningKey,
                content: Any = None, raw: bytes | None = None, sign_content: Any = None) -> requests.Response:
    """Send a request to a server as ``origin``, X-Matrix signed with ``key``."""
    auth = sign_request(method, path, origin, destination, key, sign_content if sign_content is not None else content)
    body = raw if raw is not None else (json.dumps(content).encode() if content is not None else None)
    headers = {"Authorization": auth}
    if body is not None:
        headers["Content-Type"] = "application/json"
    s = requests.Session()
    s.trust_env = False
    return s.request(method, base_url + path, data=body, headers=headers, verify=str(ca), timeout=30)


def call(fed: ConcordTLS, peer: FakePeer, method: str, path: str, content: Any = None, **kw: Any) -> Any:
    """A request from ``peer`` to the Concord under test, signed with the peer's key."""
    return signed_call(fed.base_url, peer_ca(fed), method, path, origin=peer.server_name,
                       destination=fed.server_name, key=peer.key, content=content, **kw)


def peer_ca(fed: ConcordTLS) -> Any:
    from django.conf import settings

    return settings.CONCORD_FEDERATION_CA_BUNDLE


_txn = iter(range(1, 10**6))


def send_txn(fed: ConcordTLS, peer: FakePeer, pdus: list[Any], edus: list[Any] | None = None) -> dict[str, Any]:
    """``PUT /send`` from ``peer`` (a fresh txnId each time); must answer 200; returns its per-PDU results."""
    body = {"origin": peer.server_name, "origin_server_ts": 1, "pdus": pdus, "edus": edus or []}
    r = call(fed, peer, "PUT", f"/_matrix/federation/v1/send/t{next(_txn)}", body)
    assert r.status_code == 200, r.text
    return r.json()["pdus"]


def joined_room(fed: ConcordTLS, peer: FakePeer, version: str = "10") -> PeerRoom:
    """A room of ``peer`` that the Concord under test knows, its five set-up events sent and accepted."""
    from federation.models import MatrixRoom

    room = PeerRoom(peer, version)
    MatrixRoom.objects.create(room_id=room.room_id, room_version=version)
    evs = room.standard()
    results = send_txn(fed, peer, [e.pdu for e in evs])
    assert results == {e.event_id: {} for e in evs}
    return room
