"""The durable per-destination outbox: what is queued for whom, leases, transaction IDs, backoff.

This module holds the queue's state only (no HTTP): :mod:`federation.handlers.sender` sends.

Queue
    Everything to send lives in the database: :class:`~federation.models.OutboundPDU` and
    :class:`~federation.models.OutboundEDU` rows per :class:`~federation.models.Destination`.
    :func:`enqueue_pdu` / :func:`enqueue_edu` add rows inside the caller's DB transaction and ask
    for a send *after commit* through the scheduler registered at start-up
    (:func:`register_scheduler`: a Celery task; if the message is lost, the beat task
    :func:`redrive_due` finds the destination anyway, because nothing depends on Redis).

One transaction in flight per destination
    The sender first takes the destination's lease (:func:`take_lease`) with one conditional UPDATE
    (``lease_until`` in the past -> now + :func:`federation.config.lease_seconds`); only the holder sends. The lease
    is renewed before each transaction and always outlasts one request (the request timeout plus a
    margin), so a live sender never loses it mid-request. A killed worker's lease expires, then the
    next run (the beat re-drive, or any inbound request from the peer) resumes.

Transactions and retries
    A transaction is built by stamping a new ``txn_id`` on up to 50 PDUs and 100 EDUs (oldest
    first) and *committing* that before sending. If the send fails, the rows keep their ``txn_id``
    and the next attempt resends exactly those rows under the same ID; the peer de-duplicates by
    ``(origin, txnId)``. On a 200 the rows are deleted. So a crash at any point either resends the
    same transaction (harmless) or has not yet stamped it: nothing is lost, nothing is duplicated.
    PDUs the peer rejects in its per-PDU results are logged, not retried (the peer judged them).

Backoff
    Failures (no answer, 5xx, 401, 403, 429...) set ``next_attempt_at`` = now + interval, where the
    interval starts at ``CONCORD_FEDERATION_BACKOFF_MIN``, doubles per failure up to
    ``CONCORD_FEDERATION_BACKOFF_MAX``, and is jittered x0.8-1.4. Any inbound request from the
    destination (:func:`wake_destination`) clears the backoff and triggers a send.

Catch-up
    Once a destination has been failing for ``CONCORD_FEDERATION_CATCHUP_AFTER`` seconds, the next
    attempt first compacts its queue: queued EDUs (typing, receipts: stale by now) are dropped and,
    per room, only the newest queued PDU is kept; the peer fills the gap with
    ``get_missing_events``/backfill against us, which we serve from the event store.
"""

from __future__ import annotations

import logging
import random
import secrets
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Max, Q
from django.utils import timezone

from federation import config
from federation.models import Destination, OutboundEDU, OutboundPDU

log = logging.getLogger(__name__)

MAX_PDUS = 50
MAX_EDUS = 100


Scheduler = Callable[[str], None]
_scheduler: Scheduler | None = None

# ``(server_name, stalled)``: told once when a server has been unreachable for
# ``CONCORD_FEDERATION_STALL_NOTICE_AFTER`` seconds, and once when a send to it succeeds again.
StallListener = Callable[[str, bool], None]
_stall_listener: StallListener | None = None


def register_stall_listener(listener: StallListener | None) -> None:
    """Install who hears of stalls (``FederationConfig.ready``: the bridge's room notices)."""
    global _stall_listener
    _stall_listener = listener


def _tell_stall(server_name: str, stalled: bool) -> None:
    if _stall_listener is None:
        return
    try:
        _stall_listener(server_name, stalled)
    except Exception:  # a notice must never stop delivery
        log.exception("stall notice for %s failed", server_name)


def register_scheduler(scheduler: Scheduler | None) -> None:
    """Install what starts a send to a server (``FederationConfig.ready``: the Celery task)."""
    global _scheduler
    _scheduler = scheduler


def schedule_now(server_name: str) -> None:
    """Ask for a send to ``server_name`` now; a lost request is harmless (the beat re-drives)."""
    if _scheduler is None:
        log.warning("no outbox scheduler registered; the beat task will send to %s", server_name)
        return
    try:
        _scheduler(server_name)
    except Exception:  # the beat task re-drives; a broker hiccup must not fail the caller
        log.warning("could not queue a send to %s; the beat task will", server_name)


def _destination(server_name: str) -> Destination:
    try:
        return Destination.objects.get_or_create(server_name=server_name)[0]
    except IntegrityError:
        return Destination.objects.get(server_name=server_name)


def _schedule(server_name: str) -> None:
    transaction.on_commit(lambda: schedule_now(server_name))


def enqueue_pdu(destinations: list[str], room_id: str, event_id: str, pdu: dict[str, Any]) -> None:
    """Queue a PDU for each destination (ours and servers refused by the allow/deny lists excluded);
    sending starts after commit."""
    me = config.server_name()
    for server in destinations:
        if server == me or not config.server_allowed(server):
            continue
        dest = _destination(server)
        OutboundPDU.objects.get_or_create(destination=dest, event_id=event_id,
                                          defaults={"room_id": room_id, "pdu": pdu})
        _schedule(server)


def enqueue_edu(destinations: list[str], edu_type: str, content: dict[str, Any]) -> None:
    """Queue an EDU for each destination (ours and refused servers excluded); sending starts after commit."""
    me = config.server_name()
    for server in destinations:
        if server == me or not config.server_allowed(server):
            continue
        OutboundEDU.objects.create(destination=_destination(server), edu_type=edu_type, content=content)
        _schedule(server)


def wake_destination(server_name: str) -> None:
    """The server just talked to us: clear its backoff and send what is queued for it."""
    updated = Destination.objects.filter(server_name=server_name).filter(
        Q(next_attempt_at__isnull=False) | Q(retry_interval__gt=0)).update(next_attempt_at=None, retry_interval=0)
    if updated and has_pending(server_name):
        _schedule(server_name)


def has_pending(server_name: str) -> bool:
    """Whether anything is queued for the destination."""
    return OutboundPDU.objects.filter(destination_id=server_name).exists() or OutboundEDU.objects.filter(
        destination_id=server_name).exists()


def take_lease(server_name: str) -> str | None:
    now = timezone.now()
    token = secrets.token_hex(8)
    n = Destination.objects.filter(server_name=server_name).filter(
        Q(lease_until__isnull=True) | Q(lease_until__lt=now)).filter(
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)).update(
        lease_until=now + timedelta(seconds=config.lease_seconds()), lease_token=token)
    return token if n else None


def release_lease(server_name: str, token: str, **fields: Any) -> None:
    Destination.objects.filter(server_name=server_name, lease_token=token).update(
        lease_until=None, lease_token="", **fields)


def compact_for_catch_up(dest: Destination) -> None:
    """Drop EDUs and all but the newest unsent PDU per room (see the module docstring)."""
    OutboundEDU.objects.filter(destination=dest, txn_id="").delete()
    newest = (OutboundPDU.objects.filter(destination=dest, txn_id="").values("room_id")
              .annotate(last=Max("id")).values_list("last", flat=True))
    dropped = OutboundPDU.objects.filter(destination=dest, txn_id="").exclude(id__in=list(newest)).delete()[0]
    if dropped:
        log.info("catch-up for %s: %d older PDUs left for the peer to fetch", dest.server_name, dropped)


def build_transaction(dest: Destination) -> str | None:
    """The txn_id to send: the pending stamped one, or a newly stamped batch; None if nothing queued."""
    pending = (OutboundPDU.objects.filter(destination=dest).exclude(txn_id="").values_list("txn_id", flat=True)
               .first()) or (OutboundEDU.objects.filter(destination=dest).exclude(txn_id="")
                             .values_list("txn_id", flat=True).first())
    if pending:
        return pending
    with transaction.atomic():
        d = Destination.objects.select_for_update().get(pk=dest.pk)
        pdu_ids = list(OutboundPDU.objects.filter(destination=d, txn_id="").order_by("id")
                       .values_list("id", flat=True)[:MAX_PDUS])
        edu_ids = list(OutboundEDU.objects.filter(destination=d, txn_id="").order_by("id")
                       .values_list("id", flat=True)[:MAX_EDUS])
        if not pdu_ids and not edu_ids:
            return None
        d.txn_counter += 1
        txn_id = f"c{d.txn_counter}-{secrets.token_hex(4)}"
        Destination.objects.filter(pk=d.pk).update(txn_counter=d.txn_counter)
        OutboundPDU.objects.filter(id__in=pdu_ids).update(txn_id=txn_id)
        OutboundEDU.objects.filter(id__in=edu_ids).update(txn_id=txn_id)
    return txn_id


def next_backoff(dest: Destination) -> tuple[float, Any]:
    """``(interval, next attempt time)`` after one more failure (see the module docstring)."""
    lo, hi = config.backoff_bounds()
    interval = min(hi, lo if dest.retry_interval <= 0 else dest.retry_interval * 2)
    delay = interval * random.uniform(0.8, 1.4)
    return interval, timezone.now() + timedelta(seconds=delay)


def due_destinations() -> list[str]:
    """Destinations with something queued whose backoff (if any) is over and that nobody is sending to."""
    now = timezone.now()
    with_items = set(OutboundPDU.objects.values_list("destination_id", flat=True).distinct()) | set(
        OutboundEDU.objects.values_list("destination_id", flat=True).distinct())
    return list(Destination.objects.filter(server_name__in=with_items).filter(
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)).filter(
        Q(lease_until__isnull=True) | Q(lease_until__lt=now)).values_list("server_name", flat=True))


def redrive_due() -> int:
    """Queue a send for every due destination (the beat task). Returns how many."""
    due = due_destinations()
    for server in due:
        schedule_now(server)
    return len(due)


def renew_lease(server_name: str, token: str) -> None:
    """Extend the holder's lease by :func:`federation.config.lease_seconds` (before each transaction)."""
    Destination.objects.filter(pk=server_name, lease_token=token).update(
        lease_until=timezone.now() + timedelta(seconds=config.lease_seconds()))


def queued_for(dest: Destination, txn_id: str) -> tuple[list[OutboundPDU], list[OutboundEDU]]:
    """The rows stamped with ``txn_id``, oldest first."""
    return (list(OutboundPDU.objects.filter(destination=dest, txn_id=txn_id).order_by("id")),
            list(OutboundEDU.objects.filter(destination=dest, txn_id=txn_id).order_by("id")))


def transaction_failed(server_name: str, token: str, error: str) -> float:
    """Record a failed send: back off, remember the error, release the lease. Returns the interval."""
    dest = Destination.objects.get(server_name=server_name)
    interval, next_at = next_backoff(dest)
    failing_since = dest.failing_since or timezone.now()
    release_lease(server_name, token, retry_interval=interval, next_attempt_at=next_at,
                  failing_since=failing_since, last_error=error[:1000])
    stalled_for = (timezone.now() - failing_since).total_seconds()
    if dest.stall_noticed_at is None and stalled_for >= config.stall_notice_after():
        if Destination.objects.filter(pk=server_name, stall_noticed_at__isnull=True).update(
                stall_noticed_at=timezone.now()):  # once, whichever sender gets here first
            transaction.on_commit(lambda: _tell_stall(server_name, True))
    return interval


def transaction_delivered(dest: Destination, txn_id: str) -> None:
    """The peer took the transaction: drop its rows and clear the failure state, in one commit."""
    with transaction.atomic():
        OutboundPDU.objects.filter(destination=dest, txn_id=txn_id).delete()
        OutboundEDU.objects.filter(destination=dest, txn_id=txn_id).delete()
        Destination.objects.filter(pk=dest.pk).update(
            retry_interval=0, next_attempt_at=None, failing_since=None, last_success_at=timezone.now(),
            last_error="")
        if Destination.objects.filter(pk=dest.pk, stall_noticed_at__isnull=False).update(stall_noticed_at=None):
            server = dest.server_name
            transaction.on_commit(lambda: _tell_stall(server, False))


def catching_up(dest: Destination) -> bool:
    """Whether the destination has been failing for longer than the catch-up threshold."""
    return bool(dest.failing_since) and (timezone.now() - dest.failing_since).total_seconds() >= \
        config.catch_up_after()


def retry_now(server_name: str) -> bool:
    """An admin's "retry now": the destination's backoff is cleared and, when something is
    queued, a send starts at once. Returns whether a send was asked for."""
    Destination.objects.filter(server_name=server_name).update(next_attempt_at=None, retry_interval=0)
    if has_pending(server_name):
        _schedule(server_name)
        return True
    return False


def destination_state(dest: Destination) -> str:
    """In words: ``up``, ``backing off`` (failing, the next attempt later), or ``catching up``
    (failing past the catch-up threshold: only the rooms' latest events will be sent)."""
    if dest.failing_since is None:
        return "up"
    return "catching up" if catching_up(dest) else "backing off"
