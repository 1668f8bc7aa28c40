"""Small helpers shared by the room-level API tests (channels, groups, DMs, moderation)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from rocketchat_API.APIExceptions.RocketExceptions import RocketApiException


def api_error(call: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[int, dict[str, Any]]:
    """Call the client method, expect a Rocket.Chat error; return (status, JSON body). A 500 fails the test."""
    with pytest.raises(RocketApiException) as err:
        result = call(*args, **kwargs)
        if not isinstance(result, dict):  # a paginated generator: the request happens on the first page
            list(result)
    body = err.value.response_json
    assert 400 <= err.value.status_code < 500, err.value
    assert body["success"] is False
    assert isinstance(body["error"], str)
    return err.value.status_code, body


def membership(room_id: str, username: str) -> Any:
    from rooms.models import Membership

    return Membership.objects.filter(room_id=room_id, user__username=username).first()


def post(username: str, room_id: str, text: str, **kwargs: Any) -> Any:
    """Post through the real action (chat.postMessage is tested elsewhere)."""
    from accounts.models import User
    from rooms.actions.messages import do_send_message
    from rooms.models import Room

    return do_send_message(User.objects.get(username=username), Room.objects.get(id=room_id), text, **kwargs)
