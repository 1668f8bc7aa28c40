"""Membership handshake endpoints (the handshakes: :mod:`federation.handlers.joins`; invites of our
users: :mod:`federation.bridge.memberships`)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from federation.api.endpoint import matrix_endpoint
from federation.bridge.memberships import receive_invite
from federation.handlers import joins


@matrix_endpoint(("GET",))
def make_join(request: HttpRequest, body: Any, origin: str, room_id: str, user_id: str) -> Any:
    """``GET /_matrix/federation/v1/make_join/{roomId}/{userId}``."""
    return joins.make_membership(origin, room_id, user_id, "join", request.GET.getlist("ver"))


@matrix_endpoint(("GET",))
def make_leave(request: HttpRequest, body: Any, origin: str, room_id: str, user_id: str) -> Any:
    """``GET /_matrix/federation/v1/make_leave/{roomId}/{userId}``."""
    return joins.make_membership(origin, room_id, user_id, "leave", request.GET.getlist("ver"))


@matrix_endpoint(("PUT",))
def send_join(request: HttpRequest, body: Any, origin: str, room_id: str, event_id: str) -> Any:
    """``PUT /_matrix/federation/v2/send_join/{roomId}/{eventId}``: state before the join + auth chain."""
    return joins.send_join_answer(origin, room_id, event_id, body)


@matrix_endpoint(("PUT",))
def send_leave(request: HttpRequest, body: Any, origin: str, room_id: str, event_id: str) -> Any:
    """``PUT /_matrix/federation/v2/send_leave/{roomId}/{eventId}``."""
    joins.receive_membership(origin, room_id, event_id, body, "leave")
    return {}


@matrix_endpoint(("PUT",))
def invite(request: HttpRequest, body: Any, origin: str, room_id: str, event_id: str) -> Any:
    """``PUT /_matrix/federation/v2/invite/{roomId}/{eventId}``: an invite of one of our users."""
    return receive_invite(origin, room_id, event_id, body)
