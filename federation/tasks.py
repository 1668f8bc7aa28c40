"""Celery tasks: thin wrappers around :mod:`federation.handlers` and :mod:`federation.store`.

They take server names, hold no logic, and may be lost or run twice without harm: the outbox is
in the database and the beat task :func:`redrive_due_destinations` finds due work again.
"""

from __future__ import annotations

import logging

from celery import shared_task

from federation import config
from federation.bridge.outgoing import bridge_unsent_messages
from federation.bridge.remote_media import fetch_pending, process_pending_media
from federation.handlers.receive import process_all_staged
from federation.handlers.sender import send_pending
from federation.store.events import redeliver_pending
from federation.store.outbox import redrive_due

log = logging.getLogger(__name__)


@shared_task(ignore_result=True)
def send_to_destination(server_name: str) -> int:
    """Send what is queued for ``server_name`` (no-op while another sender holds it)."""
    if not config.enabled():
        return 0
    return send_pending(server_name)


@shared_task(ignore_result=True)
def fetch_remote_media(key: str) -> bool:
    """Fetch a file from another server: a message's or an avatar (no-op when done or backing off)."""
    if not config.enabled():
        return False
    return fetch_pending(key)


def schedule_fetch(key: str) -> None:
    """The bridge's media scheduler: a fetch as a Celery task."""
    fetch_remote_media.delay(key)


def schedule_send(server_name: str) -> None:
    """The outbox's scheduler: a send to ``server_name`` as a Celery task."""
    send_to_destination.delay(server_name)


@shared_task(ignore_result=True)
def redrive_due_destinations() -> int:
    """Beat: process staged inbound PDUs left by a crash, run event listeners a crash cut short,
    make the Matrix events of local messages whose post could not (a crash, a database error),
    fetch remote files that are due, and queue sends for due destinations."""
    if not config.enabled():
        return 0
    for step in (process_all_staged, redeliver_pending, bridge_unsent_messages, process_pending_media):
        try:
            step()
        except Exception:  # each step is independent: one failing must not stop the outbox re-drive
            log.exception("beat step %s failed", step.__name__)
    return redrive_due()
