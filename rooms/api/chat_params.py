"""Parameter parsing and paging shared by the ``chat.*``, ``rooms.*`` and ``subscriptions.*`` views.

Dates arrive in every form Rocket.Chat clients send: ISO 8601 (``2024-01-02T03:04:05.678Z``), an
offset whose ``+`` was turned into a space by an unencoded query string (the ``rocketchat-api``
client does not URL-encode GET parameters), epoch milliseconds, or EJSON ``{"$date": ms}``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from django.db.models import QuerySet
from django.utils.dateparse import parse_datetime
from rest_framework.request import Request

from chat.api import pagination, param
from chat.api_errors import ApiError
from rooms.models import Message
from rooms.serialization import message_json, message_queryset


def parse_date(value: Any, name: str) -> datetime:
    """An aware UTC datetime from ``value``; :class:`ApiError` when it is not a date.

    Accepts ISO 8601 strings (a ``" "`` before a trailing offset is read as ``"+"``), epoch
    milliseconds as a number or digit string, and ``{"$date": ms}`` (also as a JSON string).
    """
    if isinstance(value, str) and value.strip().startswith("{"):
        try:
            value = json.loads(value)
        except (ValueError, RecursionError):
            pass
    if isinstance(value, dict) and "$date" in value:
        value = value["$date"]
    if isinstance(value, bool):
        value = None
    if isinstance(value, (int, float)) or (isinstance(value, str) and value.strip().isdigit()):
        try:
            return datetime.fromtimestamp(int(value) / 1000, tz=UTC)
        except (OverflowError, ValueError, OSError) as exc:
            raise ApiError(f'The "{name}" param is not a valid date.', "error-invalid-params") from exc
    if isinstance(value, str):
        text = value.strip()
        if len(text) > 10 and text[-6] == " " and text[-3] == ":":  # "...05.678 00:00" from an unencoded "+"
            text = f"{text[:-6]}+{text[-5:]}"
        try:
            parsed = parse_datetime(text)
        except ValueError:
            parsed = None
        if parsed is not None:
            return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
    raise ApiError(f'The "{name}" param is not a valid date (ISO 8601 or epoch milliseconds).',
                   "error-invalid-params")


def date_param(request: Request, name: str, *, required: bool = False) -> datetime | None:
    """The request parameter ``name`` as a date (see :func:`parse_date`), or None when absent."""
    value = param(request, name, required=required)
    if value is None or value == "":
        if required:
            raise ApiError(f'The required "{name}" param is missing.', "error-invalid-params")
        return None
    return parse_date(value, name)


def id_param(request: Request, *names: str, required: bool = True) -> str | None:
    """The first of ``names`` present in the request, as a string id (not a number, list or object)."""
    for name in names:
        value = param(request, name)
        if value is None or value == "":
            continue
        if not isinstance(value, str) or len(value) > 256:
            raise ApiError(f'The "{name}" param must be an id string.', "error-invalid-params")
        return value
    if required:
        raise ApiError(f'The required "{names[0]}" param is missing.', "error-invalid-params")
    return None


def message_page(request: Request, qs: QuerySet[Message], key: str = "messages",
                 default_count: int = 50) -> dict[str, Any]:
    """One page of ``qs`` (already filtered and ordered) in Rocket.Chat's paged list shape.

    Returns ``{key: [...], "count", "offset", "total"}``; ``count`` is the number on this page.
    """
    offset, count = pagination(request, default_count)
    total = qs.count()
    ids = list(qs.values_list("id", flat=True)[offset:offset + count])
    items = messages_json(ids)
    return {key: items, "count": len(items), "offset": offset, "total": total}


def messages_json(ids: list[str]) -> list[dict[str, Any]]:
    """The messages ``ids`` in REST shape and in that order, loaded with one prefetching query."""
    by_id = {m.id: m for m in message_queryset().filter(id__in=ids)}
    return [message_json(by_id[i]) for i in ids if i in by_id]
