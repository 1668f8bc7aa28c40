"""Celery tasks: thin wrappers around :mod:`federation.outbound` and :mod:`federation.inbound`.

They take server names, hold no logic, and may be lost or run twice without harm: the outbox is
in the database and the beat task :func:`redrive_due_destinations` finds due work again.
"""

from __future__ import annotations

from celery import shared_task

from federation.status import federation_serving


@shared_task(ignore_result=True)
def send_to_destination(server_name: str) -> int:
    """Send what is queued for ``server_name`` (no-op while another sender holds it)."""
    if not federation_serving():
        return 0
    from federation.outbound import send_pending

    return send_pending(server_name)


@shared_task(ignore_result=True)
def redrive_due_destinations() -> int:
    """Beat: queue sends for due destinations and process staged inbound PDUs left by a crash."""
    if not federation_serving():
        return 0
    from federation.inbound import process_all_staged
    from federation.outbound import redrive_due

    process_all_staged()
    return redrive_due()
