"""Endpoints that serve room events to other servers (logic and access rule in
:mod:`federation.handlers.serving`)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from federation.api.endpoint import matrix_endpoint
from federation.handlers import serving


@matrix_endpoint(("GET",))
def get_event(request: HttpRequest, body: Any, origin: str, event_id: str) -> dict[str, Any]:
    """``GET /event/{eventId}``."""
    return serving.get_event(origin, event_id)


@matrix_endpoint(("GET",))
def get_state_ids(request: HttpRequest, body: Any, origin: str, room_id: str) -> dict[str, Any]:
    """``GET /state_ids/{roomId}?event_id=``."""
    return serving.get_state_ids(origin, room_id, request.GET.get("event_id"))


@matrix_endpoint(("GET",))
def get_state(request: HttpRequest, body: Any, origin: str, room_id: str) -> dict[str, Any]:
    """``GET /state/{roomId}?event_id=``."""
    return serving.get_state(origin, room_id, request.GET.get("event_id"))


@matrix_endpoint(("GET",))
def get_event_auth(request: HttpRequest, body: Any, origin: str, room_id: str, event_id: str) -> dict[str, Any]:
    """``GET /event_auth/{roomId}/{eventId}``."""
    return serving.get_event_auth(origin, room_id, event_id)


@matrix_endpoint(("POST",))
def get_missing_events(request: HttpRequest, body: Any, origin: str, room_id: str) -> dict[str, Any]:
    """``POST /get_missing_events/{roomId}``."""
    return serving.get_missing_events(origin, room_id, body)


@matrix_endpoint(("GET",))
def backfill(request: HttpRequest, body: Any, origin: str, room_id: str) -> dict[str, Any]:
    """``GET /backfill/{roomId}?v=..&limit=``."""
    return serving.backfill(origin, room_id, request.GET.getlist("v"), request.GET.get("limit"))
