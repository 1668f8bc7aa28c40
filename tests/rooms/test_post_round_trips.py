"""``do_send_message`` on PostgreSQL: a plain post's INSERT and counters go to the server as one
statement (one implicit transaction when the post is the whole transaction), and a failure of that
statement leaves nothing behind and the connection as it was. A client-chosen id taken by a
concurrent post is refused as the id check refuses it (``error-message-id-exists``), on any database.

Transactional: the one-round-trip path is taken only when the post's ``atomic`` block is the
outermost one, which the ``db`` fixture's wrapping transaction would prevent.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.db import IntegrityError, connection
from django.db.models import QuerySet
from django.test.utils import CaptureQueriesContext

from chat.api_errors import ApiError
from rooms.actions.memberships import do_add_member
from rooms.actions.messages import do_send_message
from rooms.actions.rooms import do_create_room
from rooms.models import Membership, Message, Room
from rooms.serialization import subscription_json

pytestmark = pytest.mark.django_db(transaction=True)
postgresql_only = pytest.mark.skipif(connection.vendor != "postgresql", reason="the one-statement post is PostgreSQL's")


def _room(make_user: Callable[..., Any]) -> tuple[Any, Any, Room]:
    alice, bob = make_user("alice"), make_user("bob")
    room = do_create_room(alice, "c", "trips")
    do_add_member(room, bob, by=alice)
    return alice, bob, room


@postgresql_only
def test_a_plain_post_is_one_statement_and_moves_the_counters(make_user: Callable[..., Any]) -> None:
    alice, bob, room = _room(make_user)
    do_send_message(alice, room, "warm-up")  # run-time settings and the integrations' index, read once
    membership = Membership.objects.get(room=room, user=alice)  # as the REST API passes it
    room.refresh_from_db()
    with CaptureQueriesContext(connection) as queries:
        msg = do_send_message(alice, room, "hello **there**", membership=membership)
    # Django lists its own transaction calls as BEGIN and COMMIT, whatever the driver sends.
    sql = [q["sql"] for q in queries.captured_queries if q["sql"] not in ("BEGIN", "COMMIT")]
    assert len(sql) == 1, "\n".join(s[:150] for s in sql)
    assert sql[0].startswith('INSERT INTO "rooms_message"') and "UPDATE rooms_room" in sql[0]
    assert connection.get_autocommit() and connection.connection.autocommit  # as before the post
    stored = Message.objects.get(id=msg.id)
    assert (stored.text, stored.html, stored.room_id) == ("hello **there**", msg.html, room.id)
    bob_sub = subscription_json(Membership.objects.get(room=room, user=bob))
    assert (bob_sub["unread"], bob_sub["alert"]) == (2, True)  # the warm-up and this one
    assert Room.objects.get(id=room.id).message_count == room.message_count + 1


@postgresql_only
def test_a_post_with_a_mention_keeps_its_own_insert(make_user: Callable[..., Any]) -> None:
    alice, bob, room = _room(make_user)
    with CaptureQueriesContext(connection) as queries:
        do_send_message(alice, room, "hi @bob")
    sql = [q["sql"] for q in queries.captured_queries]
    assert any(s.startswith('INSERT INTO "rooms_message"') and "UPDATE" not in s for s in sql)
    assert subscription_json(Membership.objects.get(room=room, user=bob))["userMentions"] == 1


@pytest.mark.parametrize("text", ["plain second", "second, for @bob"])  # one statement; its own INSERT
def test_a_taken_id_leaves_nothing_and_the_connection_usable(make_user: Callable[..., Any], text: str,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    alice, bob, room = _room(make_user)
    first = do_send_message(alice, room, "first", message_id="same-id")
    count = Room.objects.get(id=room.id).message_count
    # The id check passes (as when two requests with one id race): the database refuses the row.
    monkeypatch.setattr(QuerySet, "exists", lambda self: False)
    with pytest.raises(ApiError) as refused:
        do_send_message(alice, room, text, message_id="same-id")
    assert refused.value.error_type == "error-message-id-exists"  # as when the check sees it (not a 500)
    assert isinstance(refused.value.__cause__, IntegrityError)
    monkeypatch.undo()
    assert Message.objects.get(id="same-id").text == first.text
    assert Room.objects.get(id=room.id).message_count == count  # the counters did not move either
    assert connection.get_autocommit()
    do_send_message(bob, room, "after")  # the connection goes on
    assert Room.objects.get(id=room.id).message_count == count + 1
