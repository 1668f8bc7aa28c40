"""``do_send_messages``: a burst of plain posts (a federated transaction's messages) leaves exactly
what one ``do_send_message`` per post would: the same messages, mentions, room counters and every
member's counters as the REST API answers them, with fewer round trips."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from chat.api_errors import ApiError
from rooms.actions.memberships import do_set_open
from rooms.actions.messages import Post, do_send_message, do_send_messages
from rooms.actions.rooms import do_create_room
from rooms.models import Membership, Mention, Message, Room
from rooms.serialization import subscription_json

pytestmark = pytest.mark.django_db

# Who posts what, in order: runs of one sender, senders alternating, a mention of a member, of a
# non-member, @all by the owner, @here by a member without the permission, an ``m.mentions`` name.
SCRIPT: list[tuple[str, str, tuple[str, ...]]] = [
    ("bob", "hello", ()),
    ("bob", "still me", ()),
    ("carol", "hi @dave", ()),
    ("bob", "@nobody is not here", ()),
    ("alice", "@all listen", ()),
    ("dave", "@here anyone?", ()),
    ("carol", "*markdown* and `code`", ("bob",)),
    ("bob", "last one", ()),
]


# Hidden rooms, mentions after a sender's last message, a member named twice in one message.
SCRIPT_2: list[tuple[str, str, tuple[str, ...]]] = [
    ("frank", "first of the burst", ()),  # had read everything: his own post leaves the room hidden
    ("gina", "gina is back", ()),  # had an unread message: her post reopens the room for her
    ("carol", "hey @alice", ()),
    ("alice", "@all hello", ()),
    ("carol", "@alice again, and @gina", ()),  # after alice's and gina's last posts: they count
    ("bob", "@dave twice", ("dave",)),
    ("frank", "frank again", ()),  # others posted since his first: reopens
]
NAMES = ("alice", "bob", "carol", "dave", "erin", "frank", "gina")


def _room(make_user: Callable[..., Any], suffix: str) -> tuple[Room, dict[str, Any]]:
    users = {n: make_user(n + suffix) for n in NAMES}
    room = do_create_room(users["alice"], "c", "general" + suffix, members=[users[n] for n in NAMES[1:]])
    do_send_message(users["frank"], room, "before the burst")  # unread for everyone but frank
    for name in ("erin", "frank", "gina"):
        do_set_open(room, users[name], False)  # a hidden room reopens on a new message
    return room, users


def _text(text: str, suffix: str) -> str:
    for name in ("dave", "nobody", "alice", "gina"):
        text = text.replace("@" + name, "@" + name + suffix)
    return text


def _state(room: Room, users: dict[str, Any]) -> dict[str, Any]:
    room.refresh_from_db()
    subs = {}
    for name, user in users.items():
        data = subscription_json(Membership.objects.select_related("room", "user").get(room=room, user=user))
        subs[name] = (data["unread"], data["userMentions"], data["groupMentions"], data["open"], data["alert"])
    msgs = list(Message.objects.filter(room=room, type="").order_by("created_at")
                .values_list("user__username", "text", "html", "mentions_all", "mentions_here"))
    mentions = sorted(Mention.objects.filter(message__room=room).values_list("message__text", "user__username"))
    return {"room": (room.message_count, room.shown_count, room.group_mention_count), "subs": subs,
            "msgs": msgs, "mentions": mentions}


def _normalised(state: dict[str, Any], suffix: str) -> dict[str, Any]:
    """The state with the room's suffix taken out of usernames and texts, to compare two rooms."""
    def clean(value: Any) -> Any:
        if isinstance(value, str):
            return value.replace(suffix, "")
        if isinstance(value, (list, tuple)):
            return type(value)(clean(v) for v in value)
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        return value
    return clean(state)


@pytest.mark.parametrize("script", [SCRIPT, SCRIPT_2], ids=["script-1", "script-2"])
def test_a_burst_leaves_what_one_post_at_a_time_leaves(make_user: Callable[..., Any],
                                                      script: list[tuple[str, str, tuple[str, ...]]]) -> None:
    one_room, one_users = _room(make_user, "1")
    many_room, many_users = _room(make_user, "2")
    for name, text, also in script:
        do_send_message(one_users[name], one_room, _text(text, "1"), skip_post_check=True,
                        mentions=[a + "1" for a in also])
    with CaptureQueriesContext(connection) as queries:
        posts = [Post(many_users[name], _text(text, "2"), mentions=tuple(a + "2" for a in also))
                 for name, text, also in script]
        sent = do_send_messages(many_room, posts)
    assert [m.text for m in sent] == [_text(t, "2") for _, t, _ in script]
    one, many = _normalised(_state(one_room, one_users), "1"), _normalised(_state(many_room, many_users), "2")
    assert many == one
    for room, users in ((one_room, one_users), (many_room, many_users)):  # read up to their own last post
        for name in {n for n, _, _ in script}:
            last = Message.objects.filter(room=room, user=users[name], type="").order_by("created_at").last()
            assert last is not None
            assert Membership.objects.get(room=room, user=users[name]).last_read_at == last.created_at, name
    if script is SCRIPT:
        # erin (hidden, silent): every post unread, @all and @here; alice: three posts after her @all.
        assert one["subs"]["erin"] == (len(SCRIPT) + 1, 0, 2, True, True)
        assert one["subs"]["alice"] == (3, 0, 1, True, True)
    else:
        assert one["subs"]["alice"] == (3, 1, 0, True, True)  # carol's mention after her @all
        assert one["subs"]["gina"][:2] == (5, 1) and one["subs"]["gina"][3] is True
        assert one["subs"]["frank"][3] is True and one["subs"]["dave"][1] == 1
    # Not one round trip per post: mention look-ups for the posts that name someone, the messages'
    # INSERT, the mentions' INSERT, the permission checks of @all/@here, the counters (one on
    # PostgreSQL), savepoints.
    if connection.vendor == "postgresql":
        writes = [q["sql"] for q in queries.captured_queries
                  if q["sql"].lstrip().upper().startswith(("INSERT", "WITH"))]
        assert len(writes) == 3, writes  # messages, mentions, counters


def test_bursts_to_several_rooms_at_once_leave_what_one_room_at_a_time_leaves(
        make_user: Callable[..., Any]) -> None:
    """``do_send_messages_to_rooms`` (a federated transaction's rooms): each room ends as a
    ``do_send_messages`` of its own posts leaves it, with the writes of all rooms shared."""
    from rooms.actions.messages import do_send_messages_to_rooms

    alone = [_room(make_user, "a1"), _room(make_user, "a2")]
    together = [_room(make_user, "t1"), _room(make_user, "t2")]

    def posts(users: dict[str, Any], script: list[tuple[str, str, tuple[str, ...]]], suffix: str) -> list[Post]:
        return [Post(users[name], _text(text, suffix), mentions=tuple(a + suffix for a in also))
                for name, text, also in script]

    for (room, users), script, suffix in zip(alone, (SCRIPT, SCRIPT_2), ("a1", "a2"), strict=True):
        do_send_messages(room, posts(users, script, suffix))
    with CaptureQueriesContext(connection) as queries:
        sent = do_send_messages_to_rooms([(room, posts(users, script, suffix)) for (room, users), script, suffix
                                          in zip(together, (SCRIPT, SCRIPT_2), ("t1", "t2"), strict=True)])
    assert [[m.text for m in msgs] for msgs in sent] == [[_text(t, "t1") for _, t, _ in SCRIPT],
                                                         [_text(t, "t2") for _, t, _ in SCRIPT_2]]
    for (room_a, users_a), (room_t, users_t), a, t in zip(alone, together, ("a1", "a2"), ("t1", "t2"), strict=True):
        assert _normalised(_state(room_t, users_t), t) == _normalised(_state(room_a, users_a), a)
    if connection.vendor == "postgresql":
        writes = [q["sql"] for q in queries.captured_queries
                  if q["sql"].lstrip().upper().startswith(("INSERT", "WITH"))]
        assert len(writes) == 3, writes  # the messages, the mentions, the counters: for both rooms


def test_a_refused_text_writes_nothing(make_user: Callable[..., Any]) -> None:
    room, users = _room(make_user, "3")
    before = Message.objects.filter(room=room).count()
    room.refresh_from_db()
    count = room.message_count
    with pytest.raises(ApiError):  # before any write: the test's transaction stays usable
        do_send_messages(room, [Post(users["bob"], "fine"), Post(users["bob"], "bad\x00text")])
    assert Message.objects.filter(room=room).count() == before
    room.refresh_from_db()
    assert room.message_count == count


def test_live_events_go_out_in_order_after_commit(make_user: Callable[..., Any],
                                                   django_capture_on_commit_callbacks: Any) -> None:
    """Published to the room's channel (what every web process's fan-out reads), in order, and
    only once the transaction commits."""
    import json
    import time

    import redis
    from django.conf import settings

    from rooms.events import live_channel, room_group

    room, users = _room(make_user, "4")
    listener = redis.Redis.from_url(settings.REDIS_URL).pubsub(ignore_subscribe_messages=True)
    listener.subscribe(live_channel(room_group(room.id)))
    try:
        while listener.get_message(timeout=0.5) is not None:  # the subscription's confirmation
            pass
        with django_capture_on_commit_callbacks(execute=True):
            do_send_messages(room, [Post(users["bob"], f"m{i}") for i in range(5)])
            time.sleep(0.2)
            assert listener.get_message(timeout=0.2) is None  # nothing before the commit
        frames: list[dict[str, Any]] = []
        deadline = time.monotonic() + 5
        while len(frames) < 5 and time.monotonic() < deadline:
            message = listener.get_message(timeout=0.5)
            if message is not None:
                frames.append(json.loads(message["data"]))
    finally:
        listener.close()
    assert [(f["type"], f["data"]["msg"]) for f in frames] == [("message.new", f"m{i}") for i in range(5)]
    assert {f["room_id"] for f in frames} == {room.id}


def test_publishing_together_holds_two_rooms_events_until_the_block_ends(
        make_user: Callable[..., Any], django_capture_on_commit_callbacks: Any) -> None:
    """Inside ``publishing_together`` (a federated delivery's block), committed posts to two rooms
    publish nothing until the block ends; then everything goes out, each room's in order, even
    when the block raised."""
    import json
    import time

    import redis
    from django.conf import settings

    from rooms.events import live_channel, publishing_together, room_group

    (one, users), (two, others) = _room(make_user, "5"), _room(make_user, "6")
    listener = redis.Redis.from_url(settings.REDIS_URL).pubsub(ignore_subscribe_messages=True)
    listener.subscribe(live_channel(room_group(one.id)), live_channel(room_group(two.id)))

    def received(n: int) -> list[tuple[str, str]]:
        frames: list[tuple[str, str]] = []
        deadline = time.monotonic() + 5
        while len(frames) < n and time.monotonic() < deadline:
            message = listener.get_message(timeout=0.5)
            if message is not None:
                frame = json.loads(message["data"])
                frames.append((frame["room_id"], frame["data"]["msg"]))
        return frames

    try:
        while listener.get_message(timeout=0.5) is not None:  # the subscriptions' confirmations
            pass
        with pytest.raises(RuntimeError), publishing_together():
            with django_capture_on_commit_callbacks(execute=True):
                do_send_messages(one, [Post(users["bob"], f"a{i}") for i in range(3)])
            with publishing_together(), django_capture_on_commit_callbacks(execute=True):  # nested: held too
                do_send_message(others["bob"], two, "b0")
            time.sleep(0.2)
            assert listener.get_message(timeout=0.2) is None  # committed, but held
            raise RuntimeError("the block fails after its commits")
        frames = received(4)
    finally:
        listener.close()
    assert [m for r, m in frames if r == one.id] == ["a0", "a1", "a2"]
    assert [m for r, m in frames if r == two.id] == ["b0"]
