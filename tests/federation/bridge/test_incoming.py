"""Matrix -> chat for message content, through the event store as a transaction would deliver it:
edits (by their author only), rich replies as quotes, reactions and their redactions, and the bad
input that must be ignored without touching the chat."""

from __future__ import annotations

from typing import Any

import pytest

from federation.models import BridgedMessage, BridgedReaction, MatrixRoom
from federation.protocol.events import Event
from federation.store.events import Arrival, persist_event
from tests.federation.test_event_store import REMOTE, Room

pytestmark = pytest.mark.django_db(transaction=True)

BOB = f"@bob:{REMOTE}"
CAROL = f"@carol:{REMOTE}"


@pytest.fixture
def portal(settings: Any, make_user: Any) -> tuple[Room, MatrixRoom, Any]:
    from rooms.actions.rooms import do_create_room

    settings.CONCORD_SERVER_NAME = "concord.test"
    owner = make_user("owner")
    chat_room = do_create_room(owner, "c", "content-here")
    room = Room()
    mroom = MatrixRoom.objects.create(room_id=room.create.room_id, room_version="11", chat_room=chat_room)
    for user in (BOB, CAROL):
        live(mroom, room, room.send("m.room.member", {"membership": "join"}, sender=user, state_key=user))
    return room, mroom, chat_room


def live(mroom: MatrixRoom, room: Room, event: Event) -> Event:
    persist_event(mroom, event, arrival=Arrival.LIVE, state_after=room.state)
    return event


def message_of(event: Event) -> Any:
    from rooms.models import Message

    link = BridgedMessage.objects.filter(event_id=event.event_id).first()
    return Message.objects.get(id=link.message_id) if link is not None else None


def test_an_edit_by_its_author_replaces_the_text_and_keeps_the_history(portal: tuple[Room, MatrixRoom, Any]) -> None:
    room, mroom, _ = portal
    original = live(mroom, room, room.send("m.room.message", {"msgtype": "m.text", "body": "teh plan"}, sender=BOB))
    edit = {"msgtype": "m.text", "body": "* the plan", "m.new_content": {"msgtype": "m.text", "body": "the **plan**"},
            "m.relates_to": {"rel_type": "m.replace", "event_id": original.event_id}}
    live(mroom, room, room.send("m.room.message", edit, sender=BOB))
    msg = message_of(original)
    assert msg.text == "the **plan**" and "<strong>plan</strong>" in msg.html
    assert msg.edited_at is not None and msg.edited_by.username == BOB
    assert list(msg.edits.values_list("previous_text", flat=True)) == ["teh plan"]
    # Someone else's replacement is ignored (Matrix's rule), and so is an edit of an unknown event.
    forged = dict(edit, **{"m.new_content": {"msgtype": "m.text", "body": "carol was here"}})
    live(mroom, room, room.send("m.room.message", forged, sender=CAROL))
    unknown = dict(edit, **{"m.relates_to": {"rel_type": "m.replace", "event_id": "$nothing"}})
    live(mroom, room, room.send("m.room.message", unknown, sender=BOB))
    msg.refresh_from_db()
    assert msg.text == "the **plan**" and msg.edits.count() == 1
    from rooms.models import Message

    assert Message.objects.filter(room=msg.room, text__contains="carol was here").count() == 0


def test_a_rich_reply_becomes_a_quote_without_its_fallback(portal: tuple[Room, MatrixRoom, Any]) -> None:
    room, mroom, _ = portal
    question = live(mroom, room, room.send("m.room.message", {"msgtype": "m.text", "body": "lunch?"}, sender=BOB))
    answer = live(mroom, room, room.send("m.room.message", {
        "msgtype": "m.text", "body": f"> <{BOB}> lunch?\n\nyes, at noon",
        "m.relates_to": {"m.in_reply_to": {"event_id": question.event_id}}}, sender=CAROL))
    msg = message_of(answer)
    assert msg.text == "yes, at noon" and msg.quoted_id == message_of(question).id
    stray = live(mroom, room, room.send("m.room.message", {
        "msgtype": "m.text", "body": "to nothing", "m.relates_to": {"m.in_reply_to": {"event_id": "$gone"}}},
        sender=CAROL))
    assert message_of(stray).quoted_id is None


def test_reactions_and_their_redactions_toggle_the_chat_reaction(portal: tuple[Room, MatrixRoom, Any]) -> None:
    from rooms.models import Reaction

    room, mroom, _ = portal
    target = live(mroom, room, room.send("m.room.message", {"msgtype": "m.text", "body": "ship it"}, sender=BOB))
    annotate = {"m.relates_to": {"rel_type": "m.annotation", "event_id": target.event_id, "key": "👍"}}
    thumbs = live(mroom, room, room.send("m.reaction", annotate, sender=CAROL))
    duck = live(mroom, room, room.send("m.reaction", {"m.relates_to": dict(annotate["m.relates_to"], key="🦆")},
                                      sender=CAROL))
    msg = message_of(target)
    assert sorted(Reaction.objects.filter(message=msg).values_list("user__username", "emoji")) == [
        (CAROL, ":thumbsup:"), (CAROL, ":🦆:")]
    assert BridgedReaction.objects.get(event_id=thumbs.event_id).emoji == ":thumbsup:"
    # Only the reaction's sender can take it back; then it is gone on our side too.
    live(mroom, room, room.send("m.room.redaction", {}, sender=BOB, redacts=duck.event_id))
    live(mroom, room, room.send("m.room.redaction", {}, sender=CAROL, redacts=thumbs.event_id))
    assert list(Reaction.objects.filter(message=msg).values_list("emoji", flat=True)) == [":🦆:"]
    assert not BridgedReaction.objects.filter(event_id=thumbs.event_id).exists()
    assert BridgedReaction.objects.filter(event_id=duck.event_id).exists()
    # Reactions to unknown events and malformed ones change nothing.
    live(mroom, room, room.send("m.reaction", {"m.relates_to": dict(annotate["m.relates_to"], event_id="$x")},
                                sender=CAROL))
    live(mroom, room, room.send("m.reaction", {"m.relates_to": {"rel_type": "m.annotation",
                                                                "event_id": target.event_id, "key": 7}}, sender=BOB))
    live(mroom, room, room.send("m.reaction", {"m.relates_to": {"rel_type": "m.annotation",
                                                                "event_id": target.event_id, "key": "<b>"}},
                                sender=BOB))
    assert Reaction.objects.filter(message=msg).count() == 1


def test_m_mentions_raise_the_mentioned_local_users_counters(portal: tuple[Room, MatrixRoom, Any],
                                                              make_user: Any) -> None:
    from rooms.actions.memberships import do_add_member
    from rooms.models import Membership, Mention

    room, mroom, chat_room = portal
    alice = make_user("alice")
    do_add_member(chat_room, alice)
    event = live(mroom, room, room.send("m.room.message", {
        "msgtype": "m.text", "body": "Alice: are you there?",
        "m.mentions": {"user_ids": ["@alice:concord.test", "@nobody:concord.test", CAROL]}}, sender=BOB))
    msg = message_of(event)
    assert sorted(Mention.objects.filter(message=msg).values_list("user__username", flat=True)) == [CAROL, "alice"]
    assert Membership.objects.get(room=chat_room, user=alice).user_mentions == 1
    assert Membership.objects.get(room=chat_room, user__username="owner").user_mentions == 0


def test_power_levels_set_chat_roles_by_threshold(portal: tuple[Room, MatrixRoom, Any], make_user: Any) -> None:
    from rooms.actions.memberships import do_add_member
    from rooms.models import Membership

    room, mroom, chat_room = portal
    alice = make_user("alice")
    do_add_member(chat_room, alice)

    def roles(user: Any) -> list[str]:
        return sorted(Membership.objects.get(room=chat_room, user=user).roles)

    def levels(users: dict[str, int], **extra: Any) -> None:
        content = {"users": users, "users_default": 0, "ban": 50, "kick": 50, "state_default": 50,
                   "events": {"m.room.power_levels": 100}, **extra}
        live(mroom, room, room.send("m.room.power_levels", content, sender=BOB, state_key=""))

    levels({BOB: 100, "@alice:concord.test": 50})
    assert roles(alice) == ["moderator"]
    levels({BOB: 100, "@alice:concord.test": 75})  # a custom level between: still a moderator
    assert roles(alice) == ["moderator"]
    levels({BOB: 100, "@alice:concord.test": 100})
    assert roles(alice) == ["owner"]
    levels({BOB: 100, "@alice:concord.test": 20}, kick=10, ban=20)  # the thresholds move with the levels
    assert roles(alice) == ["moderator"]
    owner = Membership.objects.get(room=chat_room, user__username="owner").user
    assert roles(owner) == []  # level 0 in this room's power levels: the chat creator is no owner here
    bob = Membership.objects.get(room=chat_room, user__username=BOB).user
    assert roles(bob) == ["owner"]  # level 100: a remote owner
    levels({BOB: 100})
    assert roles(alice) == []
    levels({})  # nobody above 0 any more: the last owner is kept (the chat's rule), whatever Matrix says
    assert roles(bob) == ["owner"]


def test_member_events_cannot_reach_users_they_must_not(portal: tuple[Room, MatrixRoom, Any],
                                                        make_user: Any) -> None:
    """Found in review: an invite inside a transaction skipped ``access-federation``; a state key
    that is a bare local username reached that local user through the puppet lookup."""
    from accounts.models import Permission
    from rooms.models import Membership

    room, mroom, chat_room = portal
    make_user("quiet")
    Permission.objects.get(id="access-federation").roles.clear()
    live(mroom, room, room.send("m.room.member", {"membership": "invite"}, sender=BOB,
                                state_key="@quiet:concord.test"))
    assert not Membership.objects.filter(room=chat_room, user__username="quiet").exists()
    live(mroom, room, room.send("m.room.member", {"membership": "ban"}, sender=BOB, state_key="owner"))
    owner = Membership.objects.get(room=chat_room, user__username="owner")
    assert not owner.banned and owner.state == Membership.JOINED


def test_a_remote_event_naming_our_own_media_is_not_fetched(portal: tuple[Room, MatrixRoom, Any]) -> None:
    from federation.models import PendingMedia

    room, mroom, _ = portal
    event = live(mroom, room, room.send("m.room.message", {
        "msgtype": "m.image", "body": "yours.png", "url": "mxc://concord.test/someuploadid"}, sender=BOB))
    assert message_of(event) is not None
    assert not PendingMedia.objects.exists()
    from federation.bridge.media import media_for
    from federation.transport.errors import MatrixError

    with pytest.raises(MatrixError) as refused:
        media_for("concord.test", "someuploadid", thumbnail=False)
    assert refused.value.status == 404


def test_power_levels_mute_and_make_read_only_and_a_muted_members_message_is_refused(
        portal: tuple[Room, MatrixRoom, Any]) -> None:
    from rooms.models import Membership, Message

    room, mroom, chat_room = portal

    def sub(mxid: str) -> Any:
        return Membership.objects.get(room=chat_room, user__username=mxid)

    pl = {"users": {room.creator: 100, BOB: -1, CAROL: 50}, "users_default": 0, "events_default": 0,
          "state_default": 50, "ban": 50, "kick": 50, "events": {"m.room.power_levels": 100}}
    live(mroom, room, room.send("m.room.power_levels", pl, state_key=""))
    assert sub(BOB).muted and not sub(CAROL).muted and sub(CAROL).roles == ["moderator"]
    chat_room.refresh_from_db()
    assert not chat_room.read_only
    # A live message from the muted member is not shown (the chat's post check); from history it is.
    refused = live(mroom, room, room.send("m.room.message", {"msgtype": "m.text", "body": "shh"}, sender=BOB))
    assert message_of(refused) is None
    old = room.send("m.room.message", {"msgtype": "m.text", "body": "said before the mute"}, sender=BOB)
    persist_event(mroom, old, arrival=Arrival.HISTORY)
    assert message_of(old).text == "said before the mute"
    # Read-only: messages need the moderators' level; the moderator still posts, members are not muted.
    live(mroom, room, room.send("m.room.power_levels", {**pl, "events_default": 50,
                                                         "users": {room.creator: 100, CAROL: 50}}, state_key=""))
    chat_room.refresh_from_db()
    assert chat_room.read_only and not sub(BOB).muted
    assert message_of(live(mroom, room, room.send("m.room.message", {"msgtype": "m.text", "body": "announce"},
                                                  sender=CAROL))).text == "announce"
    assert Message.objects.filter(room=chat_room, type="room-set-read-only").exists()
    # Writable again.
    live(mroom, room, room.send("m.room.power_levels", {**pl, "users": {room.creator: 100}}, state_key=""))
    chat_room.refresh_from_db()
    assert not chat_room.read_only and sub(CAROL).roles == [] and not sub(BOB).muted


def test_a_delivery_holding_an_already_bridged_message_bridges_only_the_new_one(
        portal: tuple[Room, MatrixRoom, Any]) -> None:
    from federation.models import MatrixEvent
    from federation.store import events as store
    from rooms.models import Message

    room, mroom, chat_room = portal
    one = live(mroom, room, room.send("m.room.message", {"msgtype": "m.text", "body": "one"}, sender=BOB))
    two = live(mroom, room, room.send("m.room.message", {"msgtype": "m.text", "body": "two"}, sender=CAROL))
    # As if "two"'s delivery had been lost after its commit: its chat message never came.
    Message.objects.filter(id=message_of(two).id).delete()
    BridgedMessage.objects.filter(event_id=two.event_id).delete()
    MatrixEvent.objects.filter(event_id__in=[one.event_id, two.event_id]).update(pending_arrival=Arrival.LIVE.value)
    persisted = [store.PersistedEvent(mroom.room_id, ev, Arrival.LIVE) for ev in (one, two)]
    batch = [(p, [fn for fn, wants in store._listeners if store._wants(wants, p)]) for p in persisted]
    store._deliver(batch)  # one delivery, both events: "one" is linked already, "two" is not
    texts = list(Message.objects.filter(room=chat_room).order_by("created_at").values_list("text", flat=True))
    assert texts.count("one") == 1 and texts.count("two") == 1
    assert message_of(two).text == "two"
    assert not MatrixEvent.objects.filter(event_id__in=[one.event_id, two.event_id], pending_arrival__gt="").exists()


def _thread(root: Event) -> dict[str, Any]:
    return {"rel_type": "m.thread", "event_id": root.event_id, "is_falling_back": True,
            "m.in_reply_to": {"event_id": root.event_id}}


Send = tuple[str, dict[str, Any], dict[str, Any]]


def _one_delivery(mroom: MatrixRoom, room: Room, sends: list[Send]) -> list[Event]:
    """Persist the events in one transaction, so that they reach the bridge in one delivery."""
    from django.db import transaction

    with transaction.atomic():
        return [live(mroom, room, room.send(t, content, **kw)) for t, content, kw in sends]


def _burst(room: Room) -> list[Send]:
    dave = f"@dave:{REMOTE}"
    text = {"msgtype": "m.text"}
    return [
        ("m.room.message", {**text, "body": "first"}, {"sender": BOB}),
        ("m.room.message", {**text, "body": "second"}, {"sender": CAROL}),
        ("m.room.message", {**text, "body": "third"}, {"sender": BOB}),
        ("m.room.member", {"membership": "join"}, {"sender": dave, "state_key": dave}),
        ("m.room.message", {**text, "body": "dave here"}, {"sender": dave}),
    ]


def test_a_burst_in_one_delivery_is_bridged_as_one_event_at_a_time_would_be(
        portal: tuple[Room, MatrixRoom, Any]) -> None:
    """Plain messages are posted together, and everything that reads what they wrote (a thread
    reply to one of them, an edit, a quote, a member joining) still sees them."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from rooms.models import Membership, Message

    room, mroom, chat_room = portal
    sends = _burst(room)
    with CaptureQueriesContext(connection) as queries:
        events = _one_delivery(mroom, room, sends)
        first = events[0]
        more = _one_delivery(mroom, room, [
            ("m.room.message", {"msgtype": "m.text", "body": "plain before the reply"}, {"sender": CAROL}),
            ("m.room.message", {"msgtype": "m.text", "body": "in the thread", "m.relates_to": _thread(first)},
             {"sender": CAROL}),
            ("m.room.message", {"msgtype": "m.text", "body": "* fixed", "m.new_content": {
                "msgtype": "m.text", "body": "first, edited"},
                "m.relates_to": {"rel_type": "m.replace", "event_id": first.event_id}}, {"sender": BOB}),
            ("m.room.message", {"msgtype": "m.text", "body": "after the edit"}, {"sender": BOB}),
        ])
    texts = list(Message.objects.filter(room=chat_room, type="").order_by("created_at").values_list("text", flat=True))
    assert texts == ["first, edited", "second", "third", "dave here", "plain before the reply", "in the thread",
                     "after the edit"]
    assert message_of(more[1]).thread_root_id == message_of(first).id
    assert Membership.objects.get(room=chat_room, user__username=f"@dave:{REMOTE}").state == Membership.JOINED
    assert all(message_of(e) is not None for e in events + more if e.type == "m.room.message" and e is not more[2])
    inserts = [q for q in queries.captured_queries if q["sql"].startswith('INSERT INTO "rooms_message"')]
    # Posted together: first..third in one INSERT, dave's after his join, the plain message before
    # the reply, the reply (alone), and the last; plus the join's system message.
    assert len(inserts) == 6, [q["sql"][:80] for q in inserts]


def test_when_the_bulk_form_fails_each_event_is_bridged_alone(
        portal: tuple[Room, MatrixRoom, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    from federation.bridge import incoming
    from rooms.models import Message

    room, mroom, chat_room = portal

    def broken(*args: Any, **kwargs: Any) -> Any:
        Message.objects.create(room=chat_room, text="half-written")  # rolled back with the savepoint
        raise RuntimeError("bulk form broken")

    monkeypatch.setattr(incoming, "do_send_messages_to_rooms", broken)
    events = _one_delivery(mroom, room, _burst(room))
    texts = list(Message.objects.filter(room=chat_room, type="").order_by("created_at").values_list("text", flat=True))
    assert texts == ["first", "second", "third", "dave here"]
    assert all(message_of(e) is not None for e in events if e.type == "m.room.message")


def test_a_delivery_reads_its_senders_at_once_and_still_refuses_who_may_not_post(
        portal: tuple[Room, MatrixRoom, Any]) -> None:
    """The senders and their memberships are read once for the delivery: a muted member's message
    and a stranger's are still refused, the others posted, in order."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from rooms.models import Message

    room, mroom, chat_room = portal
    zed = f"@zed:{REMOTE}"  # sends without ever joining (the auth rules would reject it; the chat's check too)
    pl = {"users": {room.creator: 100, BOB: -1}, "users_default": 0, "events_default": 0, "state_default": 50}
    live(mroom, room, room.send("m.room.power_levels", pl, state_key=""))  # BOB muted
    text = {"msgtype": "m.text"}
    with CaptureQueriesContext(connection) as queries:
        _one_delivery(mroom, room, [("m.room.message", {**text, "body": f"c{i}"}, {"sender": CAROL}) for i in range(3)]
                      + [("m.room.message", {**text, "body": "muted"}, {"sender": BOB}),
                         ("m.room.message", {**text, "body": "stranger"}, {"sender": zed}),
                         ("m.room.message", {**text, "body": "c3"}, {"sender": CAROL})])
    texts = list(Message.objects.filter(room=chat_room, type="").order_by("created_at").values_list("text", flat=True))
    assert texts == ["c0", "c1", "c2", "c3"]
    member_reads = [q for q in queries.captured_queries if q["sql"].startswith('SELECT "rooms_membership"')
                    and '"rooms_room"' not in q["sql"]]  # not SQLite's counter updates (with the room)
    assert len(member_reads) == 2, [q["sql"][:120] for q in member_reads]  # carol and bob at once; zed's own


def test_a_text_the_chat_refuses_in_a_burst_leaves_the_others_posted_once(
        portal: tuple[Room, MatrixRoom, Any], monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    from chat.api_errors import ApiError
    from rooms.actions import message_rules
    from rooms.models import Message

    room, mroom, chat_room = portal
    real = message_rules.filter_bad_words

    def refusing(text: str) -> str:
        if "forbidden" in text:
            raise ApiError("refused by this test", "error-invalid-params")
        return real(text)

    monkeypatch.setattr(message_rules, "filter_bad_words", refusing)
    text = {"msgtype": "m.text"}
    events = _one_delivery(mroom, room, [("m.room.message", {**text, "body": body}, {"sender": BOB})
                                         for body in ("one", "forbidden", "two")])
    texts = list(Message.objects.filter(room=chat_room, type="").order_by("created_at").values_list("text", flat=True))
    assert texts == ["one", "two"]
    assert message_of(events[1]) is None and message_of(events[0]).text == "one"
    assert "each is delivered alone" not in caplog.text  # handled inside the bulk form, not replayed
