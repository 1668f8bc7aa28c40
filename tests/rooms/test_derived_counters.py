"""Members' counters derived from the room's (``rooms.models.rooms``): exact values in every case
that used to be a per-member write, and a post that writes only the room's and the sender's rows
(plus those of the members it mentions or of a thread's followers)."""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from typing import Any

import pytest
import requests
from django.db import connection
from django.test.utils import CaptureQueriesContext

from rooms.actions.memberships import do_add_member, do_leave, do_set_open
from rooms.actions.messages import do_follow_thread, do_mark_read, do_mark_unread, do_send_message
from rooms.actions.rooms import do_create_room
from rooms.api.room_reads import room_counters
from rooms.models import Membership, Room
from rooms.serialization import subscription_json

pytestmark = pytest.mark.django_db


@pytest.fixture
def four(make_user: Callable[..., Any]) -> dict[str, Any]:
    """alice (owner), bob, carol and dave in the channel ``general``."""
    users = {name: make_user(name) for name in ("alice", "bob", "carol", "dave")}
    room = do_create_room(users["alice"], "c", "general", members=[users["bob"], users["carol"], users["dave"]])
    return {**users, "room": room}


def sub_of(room: Room, user: Any) -> Membership:
    return Membership.objects.select_related("room", "user").get(room=room, user=user)


def counts(room: Room, user: Any) -> tuple[int, int, int, bool]:
    """(unread, userMentions, groupMentions, open) as the REST API answers them."""
    data = subscription_json(sub_of(room, user))
    assert data["alert"] is (data["unread"] > 0)
    return data["unread"], data["userMentions"], data["groupMentions"], data["open"]


def rows(room: Room) -> dict[str, tuple[Any, ...]]:
    """Every membership row of ``room`` as stored, with its tuple's location on PostgreSQL (an
    UPDATE always writes a new row version, even one that changes no value)."""
    fields = ["user_id", "updated_at", "unread_base", "user_mentions", "group_mentions_base", "open_flag",
              "seen_shown", "seen_group", "last_read_at"]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT user_id, ctid::text FROM rooms_membership WHERE room_id = %s", [room.id])
            ctids = dict(cursor.fetchall())
    else:
        ctids = {}
    return {r[0]: (*r, ctids.get(r[0])) for r in Membership.objects.filter(room=room).values_list(*fields)}


def test_several_posters(four: dict[str, Any]) -> None:
    room, alice, bob, carol, dave = (four[k] for k in ("room", "alice", "bob", "carol", "dave"))
    do_send_message(alice, room, "a1")
    do_send_message(alice, room, "a2")
    do_send_message(bob, room, "b1")
    do_send_message(carol, room, "c1")
    assert [counts(room, u)[0] for u in (alice, bob, carol, dave)] == [2, 1, 0, 4]
    do_send_message(alice, room, "a3")
    assert [counts(room, u)[0] for u in (alice, bob, carol, dave)] == [0, 2, 1, 5]
    answer = room_counters(Room.objects.get(id=room.id), dave)
    assert (answer["unreads"], answer["userMentions"], answer["msgs"]) == (5, 0, 5 + 3)  # + 3 "au" system messages
    assert Room.objects.get(id=room.id).shown_count == 5


def test_a_post_writes_only_the_room_and_the_sender(four: dict[str, Any]) -> None:
    room, alice, bob = four["room"], four["alice"], four["bob"]
    do_send_message(bob, room, "warm up")
    before = rows(room)
    with CaptureQueriesContext(connection) as queries:
        do_send_message(alice, room, "hello everyone")
    after = rows(room)
    for user in (bob, four["carol"], four["dave"]):
        assert after[user.id] == before[user.id]
    assert after[alice.id] != before[alice.id]
    writes = [q["sql"] for q in queries.captured_queries if re.search(r'UPDATE "?rooms_membership', q["sql"])]
    if connection.vendor == "postgresql":  # one statement: room, then the sender's row by its id
        assert len(writes) == 1 and "rooms_room" in writes[0] and f"m.user_id = '{alice.id}'" in writes[0]
        assert "ANY(" not in writes[0]
    # Others' counters still moved.
    assert counts(room, bob) == (1, 0, 0, True) and counts(room, alice)[0] == 0


def test_mention_of_one_user_writes_that_user_only(four: dict[str, Any]) -> None:
    room, alice, bob, carol = four["room"], four["alice"], four["bob"], four["carol"]
    before = rows(room)
    do_send_message(alice, room, "hi @bob")
    after = rows(room)
    assert after[carol.id] == before[carol.id] and after[four["dave"].id] == before[four["dave"].id]
    assert after[bob.id] != before[bob.id]
    assert counts(room, bob) == (1, 1, 0, True)
    assert counts(room, carol) == (1, 0, 0, True)
    do_send_message(carol, room, "and @bob again, @alice")
    assert counts(room, bob) == (2, 2, 0, True)
    assert counts(room, alice) == (1, 1, 0, True)
    assert counts(room, carol) == (0, 0, 0, True)
    do_mark_read(bob, room)
    assert counts(room, bob) == (0, 0, 0, True)


def test_all_and_here(four: dict[str, Any]) -> None:
    room, alice, bob, carol = four["room"], four["alice"], four["bob"], four["carol"]
    do_send_message(alice, room, "@all meeting")
    do_send_message(bob, room, "@here now")
    assert counts(room, alice)[:3] == (1, 0, 1)
    assert counts(room, bob)[:3] == (0, 0, 0)
    assert counts(room, carol)[:3] == (2, 0, 2)
    # In a thread only (not shown in the room): a group mention, but unread for followers only.
    root = do_send_message(alice, room, "root")
    do_send_message(bob, room, "@all in the thread", thread_root_id=root.id)
    assert counts(room, carol)[:3] == (3, 0, 3)  # carol follows nothing: only the group mention
    assert counts(room, alice)[:3] == (1, 0, 1)  # alice (root author, read up to it) follows: unread too
    do_mark_read(carol, room)
    do_send_message(alice, room, "@here once more")
    assert counts(room, carol)[:3] == (1, 0, 1)


def test_thread_followers(four: dict[str, Any]) -> None:
    room, alice, bob, carol, dave = (four[k] for k in ("room", "alice", "bob", "carol", "dave"))
    root = do_send_message(alice, room, "root")
    for user in (bob, carol, dave):
        do_mark_read(user, room)
    before = rows(room)
    do_send_message(bob, room, "reply 1", thread_root_id=root.id)  # followers: alice (author), bob
    after = rows(room)
    assert after[carol.id] == before[carol.id] and after[dave.id] == before[dave.id]
    assert [counts(room, u)[0] for u in (alice, bob, carol, dave)] == [1, 0, 0, 0]
    do_follow_thread(carol, root, True)
    do_send_message(alice, room, "reply 2", thread_root_id=root.id)
    assert [counts(room, u)[0] for u in (alice, bob, carol, dave)] == [0, 1, 1, 0]
    do_send_message(dave, room, "reply 3, also in the room", thread_root_id=root.id, show_in_room=True)
    assert [counts(room, u)[0] for u in (alice, bob, carol, dave)] == [1, 2, 2, 0]
    do_mark_read(bob, room)
    do_send_message(carol, room, "reply 4", thread_root_id=root.id)  # dave follows now (he replied)
    assert [counts(room, u)[0] for u in (alice, bob, carol, dave)] == [2, 1, 0, 1]


def test_hidden_room_reopens_on_a_shown_message_only(four: dict[str, Any]) -> None:
    room, alice, bob = four["room"], four["alice"], four["bob"]
    do_send_message(alice, room, "before closing")
    do_set_open(room, bob, False)
    assert counts(room, bob) == (1, 0, 0, False)
    root = do_send_message(bob, room, "bob's own message does not reopen his room")
    assert counts(room, bob) == (0, 0, 0, False)
    do_send_message(alice, room, "thread only", thread_root_id=root.id)  # bob follows (root author)
    assert counts(room, bob) == (1, 0, 0, False)
    do_send_message(alice, room, "@all thread only", thread_root_id=root.id)
    assert counts(room, bob) == (2, 0, 1, False)
    do_send_message(alice, room, "shown")
    assert counts(room, bob) == (3, 0, 1, True)
    do_mark_read(bob, room)
    assert counts(room, bob) == (0, 0, 0, True)
    do_set_open(room, bob, False)
    do_mark_read(bob, room)
    assert counts(room, bob) == (0, 0, 0, False)
    do_send_message(alice, room, "reopen")
    assert counts(room, bob) == (1, 0, 0, True)


def test_mark_read_and_unread_from_a_message(four: dict[str, Any]) -> None:
    room, alice, bob, carol = four["room"], four["alice"], four["bob"], four["carol"]
    first = do_send_message(alice, room, "one")
    do_send_message(bob, room, "two (bob's own)")
    do_send_message(carol, room, "three @bob @all")
    do_send_message(alice, room, "four")
    assert counts(room, bob) == (2, 1, 1, True)
    do_mark_read(bob, room)
    assert counts(room, bob) == (0, 0, 0, True)
    do_mark_unread(bob, room, first)  # one, three, four: not bob's own; mentions stay as they were
    assert counts(room, bob) == (3, 0, 0, True)
    do_send_message(alice, room, "five @all")
    assert counts(room, bob) == (4, 0, 1, True)
    do_mark_unread(bob, room)  # at least one: already more
    assert counts(room, bob) == (4, 0, 1, True)
    do_mark_read(bob, room)
    do_mark_unread(bob, room)
    assert counts(room, bob) == (1, 0, 0, True)
    do_send_message(carol, room, "six")
    assert counts(room, bob) == (2, 0, 0, True)


def test_member_joining_after_messages(four: dict[str, Any], make_user: Callable[..., Any]) -> None:
    room, alice, bob = four["room"], four["alice"], four["bob"]
    for i in range(3):
        do_send_message(alice, room, f"m{i} @all")
    eve = make_user("eve")
    do_add_member(room, eve)
    assert counts(room, eve) == (0, 0, 0, True)
    do_send_message(alice, room, "welcome")
    assert counts(room, eve) == (1, 0, 0, True)
    # Leaving keeps the counters as they were; nothing counts while away; a rejoin starts at 0.
    do_leave(room, bob)
    left = sub_of(room, bob)
    assert (left.unread, left.group_mentions) == (4, 3)
    do_send_message(alice, room, "while bob is away @all")
    left = sub_of(room, bob)
    assert (left.unread, left.group_mentions) == (4, 3)
    do_add_member(room, bob)
    assert counts(room, bob) == (0, 0, 0, True)
    do_send_message(alice, room, "welcome back")
    assert counts(room, bob) == (1, 0, 0, True)


def test_updated_since_lists_a_subscription_a_post_changed(
        live_url: str, make_user: Callable[..., Any], rc_client: Callable[..., Any]) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    general = do_create_room(alice, "c", "general", members=[bob])
    quiet = do_create_room(alice, "c", "quiet", members=[bob])
    do_send_message(alice, quiet, "old news")
    rc_bob = rc_client("bob")
    assert len(rc_bob.subscriptions_get()["update"]) == 2
    since = max(sub_of(r, bob).changed_at for r in (general, quiet)).isoformat()  # to the microsecond
    assert rc_bob.subscriptions_get(updatedSince=since)["update"] == []
    rows_before = rows(general)
    rc_client("alice").chat_post_message("news", room_id=general.id)
    assert rows(general)[bob.id] == rows_before[bob.id]  # bob's row was not written
    changed = rc_bob.subscriptions_get(updatedSince=since)["update"]
    assert [(s["name"], s["unread"], s["alert"]) for s in changed] == [("general", 1, True)]
    assert changed[0]["_updatedAt"] >= since[:23]
    assert changed[0]["_updatedAt"] == rc_bob.subscriptions_get_one(general.id)["subscription"]["_updatedAt"]
    r = requests.get(f"{live_url}/api/v1/channels.counters", params={"roomId": general.id},
                     headers=rc_bob.headers, timeout=10)
    assert (r.json()["unreads"], r.json()["msgs"]) == (1, 2)  # msgs: also "au" (bob was added)
    # A thread reply bob does not follow moves nothing of his: he is not listed.
    root = do_send_message(alice, general, "root")
    do_mark_read(bob, general)
    since = sub_of(general, bob).changed_at.isoformat()
    do_send_message(alice, general, "reply", thread_root_id=root.id)
    assert rc_bob.subscriptions_get(updatedSince=since)["update"] == []


def test_migration_keeps_existing_counts(four: dict[str, Any]) -> None:
    """0006 turns stored counts into settled bases with markers at the room's new counters."""
    from django.apps import apps

    migration = importlib.import_module("rooms.migrations.0006_derived_member_counters")
    room, alice, bob, carol = four["room"], four["alice"], four["bob"], four["carol"]
    do_send_message(alice, room, "one")
    root = do_send_message(alice, room, "two @all")
    do_send_message(alice, room, "in thread", thread_root_id=root.id)
    # Data as it was before 0006: stored counts, no room counters, no markers.
    Room.objects.filter(id=room.id).update(shown_count=0, group_mention_count=0)
    Membership.objects.filter(room=room).update(seen_shown=0, seen_group=0)
    Membership.objects.filter(room=room, user=bob).update(unread_base=7, group_mentions_base=2, open_flag=False)
    Membership.objects.filter(room=room, user=carol).update(unread_base=1, group_mentions_base=0)
    migration._forward(apps, None)
    assert Room.objects.values_list("shown_count", "group_mention_count").get(id=room.id) == (2, 1)
    assert counts(room, bob) == (7, 0, 2, False)
    assert counts(room, carol) == (1, 0, 0, True)
    do_send_message(alice, room, "after the migration @all")
    assert counts(room, bob) == (8, 0, 3, True)
    # The reverse folds what derived since back into the stored counts.
    migration._backward(apps, None)
    stored = Membership.objects.values_list("unread_base", "group_mentions_base", "open_flag")
    assert stored.get(room=room, user=bob) == (8, 3, True)
    assert stored.get(room=room, user=carol) == (2, 1, True)


@pytest.mark.django_db(transaction=True)
def test_concurrent_posters_lose_no_count(make_user: Callable[..., Any]) -> None:
    """Two members post at once (each post its own transaction, committed with its counters
    statement): nothing is lost for a third member, and the last poster has read everything."""
    if connection.vendor != "postgresql":
        pytest.skip("SQLite serializes writers: nothing runs at once")
    import threading

    from django.db import connections

    alice, bob, carol = make_user("alice"), make_user("bob"), make_user("carol")
    room = do_create_room(alice, "c", "general", members=[bob, carol])
    errors: list[BaseException] = []

    def post_many(user: Any) -> None:
        try:
            for i in range(20):
                do_send_message(user, Room.objects.get(id=room.id), f"{user.username} {i} @carol")
        except BaseException as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=post_many, args=(u,)) for u in (alice, bob)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert counts(room, carol) == (40, 40, 0, True)
    a, b = counts(room, alice)[0], counts(room, bob)[0]
    assert 0 in (a, b) and a + b <= 20  # whoever posted last has read everything
    assert Room.objects.get(id=room.id).shown_count == 40


def test_admin_shows_derived_counters(four: dict[str, Any], admin_client: Any) -> None:
    room, alice, bob = four["room"], four["alice"], four["bob"]
    do_send_message(alice, room, "one")
    do_send_message(alice, room, "two")
    sub = sub_of(room, bob)
    listing = admin_client.get("/admin/rooms/membership/")
    assert listing.status_code == 200
    page = admin_client.get(f"/admin/rooms/membership/{sub.pk}/change/")
    assert page.status_code == 200
    assert b'<div class="readonly">2</div>' in page.content  # bob's unread, derived
    assert admin_client.get(f"/admin/rooms/room/{room.pk}/change/").status_code == 200
