"""Durable staging of received PDUs (:class:`~federation.models.StagedPDU`): checked PDUs wait
here, in arrival order per room, until :mod:`federation.handlers.receive` processes them."""

from __future__ import annotations

from django.db import DatabaseError, transaction

from federation.models import MatrixEvent, StagedPDU


def stage_rows(rows: list[StagedPDU]) -> list[tuple[str, str | None, str]]:
    """Stage checked PDUs durably, in order; returns ``(event_id, room_id or None, error)`` for each.

    Events already stored (not as outliers) are not staged again (``room_id`` None, no error).
    Rows PostgreSQL cannot store (e.g. NUL characters in jsonb) are refused one by one.
    """
    if not rows:
        return []
    known = set(MatrixEvent.objects.filter(event_id__in=[r.event_id for r in rows], outlier=False)
                .values_list("event_id", flat=True))
    fresh = [r for r in rows if r.event_id not in known]
    out: list[tuple[str, str | None, str]] = [(r.event_id, None, "") for r in rows if r.event_id in known]
    try:
        with transaction.atomic():
            StagedPDU.objects.bulk_create(fresh)
        return out + [(r.event_id, r.room_id, "") for r in fresh]
    except DatabaseError:
        pass
    for r in fresh:
        try:
            with transaction.atomic():
                r.pk = None
                r.save(force_insert=True)
            out.append((r.event_id, r.room_id, ""))
        except DatabaseError as exc:
            out.append((r.event_id, None, f"cannot store this event: {exc.__class__.__name__}"))
    return out
