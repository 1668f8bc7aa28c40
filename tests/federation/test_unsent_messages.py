"""A local message whose Matrix event was never made (the process died after the chat commit,
or the database failed in the post's federation hook) gets it from the beat's sweep
(:func:`federation.bridge.outgoing.bridge_unsent_messages`): exactly once, dated as posted, and
only for messages posted in the portal, after their post had time to send it itself.

The lost hook is reproduced by posting inside ``applying_remote()`` (the hooks send nothing
there); the restarts scenario (``test_restarts_under_traffic.py``) shows the same gap with real
crashes and a real PostgreSQL restart.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

pytestmark = pytest.mark.django_db


@pytest.fixture
def federation_on(settings: Any) -> None:
    settings.CONCORD_SERVER_NAME = "concord.test"
    settings.CONCORD_FEDERATION_ENABLED = True
    settings.CONCORD_FEDERATION_HISTORY_ON_FEDERATE = 0


def _posted_without_hook(user: Any, room: Any, text: str, seconds_ago: float) -> Any:
    from django.utils import timezone

    from federation.hooks import applying_remote
    from rooms.actions.messages import do_send_message
    from rooms.models import Message

    with applying_remote():
        msg = do_send_message(user, room, text)
    Message.objects.filter(id=msg.id).update(created_at=timezone.now() - timedelta(seconds=seconds_ago))
    return Message.objects.get(id=msg.id)


def _federated_a_minute_ago(room: Any) -> Any:
    from django.utils import timezone

    from federation.bridge.portals import ensure_portal
    from federation.models import MatrixRoom

    mroom = ensure_portal(room)
    MatrixRoom.objects.filter(pk=mroom.pk).update(created_at=timezone.now() - timedelta(seconds=60))
    return mroom


def test_the_sweep_sends_a_lost_message_once_dated_as_posted(federation_on: None, make_user: Any) -> None:
    from django.utils import timezone

    from federation.bridge.outgoing import Bridged, bridge_message, bridge_unsent_messages
    from federation.models import BridgedMessage, MatrixEvent
    from rooms.actions.rooms import do_create_room

    alice = make_user("ulla")
    room = do_create_room(alice, "c", "unsent")
    before = _posted_without_hook(alice, room, "before the room federated", 120)
    mroom = _federated_a_minute_ago(room)
    lost = _posted_without_hook(alice, room, "lost after its commit", 30)
    fresh = _posted_without_hook(alice, room, "its hook may still be running", 0)
    assert lost.created_at < timezone.now() and not BridgedMessage.objects.exists()

    assert bridge_unsent_messages() == 1
    link = BridgedMessage.objects.get()
    assert link.message_id == lost.id
    event = MatrixEvent.objects.get(event_id=link.event_id, room=mroom)
    assert event.type == "m.room.message"
    assert event.origin_server_ts == int(lost.created_at.timestamp() * 1000)

    assert bridge_unsent_messages() == 0  # exactly once
    assert bridge_message(lost.id) is Bridged.ALREADY  # and so is the post's own hook, run late
    assert not BridgedMessage.objects.filter(message_id__in=[before.id, fresh.id]).exists()
    assert MatrixEvent.objects.filter(room=mroom, type="m.room.message").count() == 1


def test_the_sweep_leaves_deleted_and_non_portal_messages_alone(federation_on: None, make_user: Any) -> None:
    from federation.bridge.outgoing import bridge_unsent_messages
    from federation.models import BridgedMessage
    from rooms.actions.messages import do_delete_message
    from rooms.actions.rooms import do_create_room

    bea = make_user("bea")
    local_only = do_create_room(bea, "c", "localonly")
    federated = do_create_room(bea, "c", "federated")
    _federated_a_minute_ago(federated)
    _posted_without_hook(bea, local_only, "stays here", 30)
    gone = _posted_without_hook(bea, federated, "deleted before the sweep", 30)
    do_delete_message(bea, gone)
    assert bridge_unsent_messages() == 0
    assert not BridgedMessage.objects.exists()
