"""Sending the outbox: one transaction at a time per destination (see :mod:`federation.store.outbox`
for the queue, the lease, transaction IDs, backoff and catch-up that make it durable)."""

from __future__ import annotations

import logging

from federation import config
from federation.clock import now_ms
from federation.models import Destination
from federation.store import outbox
from federation.transport.client import FederationClient, FederationError, encode_path

log = logging.getLogger(__name__)


def send_pending(server_name: str, *, max_transactions: int = 50) -> int:
    """Send what is queued for a destination, one transaction at a time. Returns transactions sent.

    Safe to call from anywhere at any time: without the lease, or while backing off, it does nothing.
    """
    token = outbox.take_lease(server_name)
    if token is None:
        return 0
    sent = 0
    try:
        dest = Destination.objects.get(server_name=server_name)
        if outbox.catching_up(dest):
            outbox.compact_for_catch_up(dest)
        client = FederationClient()
        while sent < max_transactions:
            txn_id = outbox.build_transaction(dest)
            if txn_id is None:
                break
            pdus, edus = outbox.queued_for(dest, txn_id)
            body = {"origin": config.server_name(), "origin_server_ts": now_ms(),
                    "pdus": [p.pdu for p in pdus],
                    "edus": [{"edu_type": e.edu_type, "content": e.content} for e in edus]}
            outbox.renew_lease(server_name, token)
            try:
                answer = client.put_json(server_name, encode_path("/_matrix/federation/v1/send/{}", txn_id), body)
            except FederationError as exc:
                interval = outbox.transaction_failed(server_name, token, str(exc))
                log.info("send to %s failed (%s); retry in ~%.0fs", server_name, exc, interval)
                token = ""
                return sent
            results = answer.get("pdus", {}) if isinstance(answer, dict) else {}
            for event_id, result in (results.items() if isinstance(results, dict) else []):
                if isinstance(result, dict) and result.get("error"):
                    log.info("%s refused %s: %s", server_name, event_id, result["error"])
            outbox.transaction_delivered(dest, txn_id)
            sent += 1
    finally:
        if token:
            outbox.release_lease(server_name, token)
    return sent
