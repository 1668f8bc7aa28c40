"""Rooms across servers between two Concords: this test run's Concord (in-process, on the test
database, its outbox delivered by :class:`~tests.federation.rooms_helpers.OutboxPump`) and a second
Concord (:class:`~tests.federation.peer_concord.ConcordPeer`: web and Celery worker subprocesses
with their own data directory, database and Redis prefix), both on loopback with TLS from the test
CA. The second Concord is driven only through its REST API (``rocketchat_API``) and its WebSocket.

Scenarios: public join without invite (history backfilled), invite + accept both ways, messages
both ways (REST history on both sides, the live WebSocket on the receiving side), name and topic
both ways, leave, an outage of the other Concord (20 messages, in order, once), and the other
Concord's Celery worker SIGKILLed while a transaction is in flight. Marked ``synapse`` (they run
where the Synapse scenarios run).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from rocketchat_API.APIExceptions.RocketExceptions import RocketApiException
from rocketchat_API.rocketchat import RocketChat

from tests.federation.conftest import ConcordTLS
from tests.federation.peer_concord import ConcordPeer
from tests.federation.rooms_helpers import live_socket, wait_for

pytestmark = [pytest.mark.synapse, pytest.mark.django_db(transaction=True)]


def _uid() -> str:
    """A suffix that keeps names unique: the second Concord's database lives for the whole session."""
    return uuid.uuid4().hex[:6]


def _history(rc: RocketChat, rid: str, kind: str = "channels") -> list[dict[str, Any]]:
    """User messages of a room through ``<kind>.history``, oldest first."""
    answer = rc.call_api_get(f"{kind}.history", roomId=rid, count=200)
    return [m for m in reversed(answer.get("messages", [])) if not m.get("t")]


def _texts(rc: RocketChat, rid: str, kind: str = "channels") -> list[str]:
    return [str(m["msg"]) for m in _history(rc, rid, kind)]


def _members(rc: RocketChat, rid: str, kind: str = "channels") -> set[str]:
    answer = rc.call_api_get(f"{kind}.members", roomId=rid, count=200)
    return {m["username"] for m in answer.get("members", [])}


def _main_state(rid: str, username: str) -> str | None:
    from rooms.models import Membership

    return Membership.objects.filter(room_id=rid, user__username=username).values_list("state", flat=True).first()


def _peer_sub(rc: RocketChat, predicate: Callable[[dict[str, Any]], bool]) -> dict[str, Any] | None:
    for sub in rc.call_api_get("subscriptions.get").get("update", []):
        if predicate(sub):
            return dict(sub)
    return None


def _main_public_room(rc: RocketChat, name: str, version: str) -> tuple[str, str]:
    """A public channel on our Concord, federated in ``version``: (chat room ID, alias)."""
    rid = rc.channels_create(name)["channel"]["_id"]
    info = rc.call_api_post("rooms.federation", roomId=rid, roomVersion=version)["federation"]
    assert info["roomVersion"] == version
    rc.chat_post_message("said before anyone joined", room_id=rid)
    return rid, info["alias"]


@pytest.mark.parametrize("version", ["10", "11", "12"])
def test_peer_joins_public_room_messages_both_ways_name_topic_leave(
        version: str, fed: ConcordTLS, concord_peer: ConcordPeer, outbox_pump: Any, make_user: Any,
        rc_client: Callable[..., RocketChat], live_url: str) -> None:
    from federation.bridge.portals import portal_of
    from federation.store.room_state import joined_servers
    from rooms.models import Room

    uid = _uid()
    make_user(f"ma{uid}", name="Main Alice")
    alice = rc_client(f"ma{uid}")
    rid, alias = _main_public_room(alice, f"pub{uid}", version)
    bob = concord_peer.register(f"pb{uid}", "Peer Bob")
    bob_mxid = concord_peer.mxid(f"pb{uid}")
    alice_mxid = f"@ma{uid}:{fed.server_name}"

    # public join without an invite, by alias; history backfilled on join
    joined = bob.channels_join(alias, None)
    assert joined.get("success"), joined
    peer_rid = joined["channel"]["_id"]
    assert _main_state(rid, bob_mxid) == "joined"
    assert "said before anyone joined" in _texts(bob, peer_rid)
    assert alice_mxid in _members(bob, peer_rid)

    # messages both ways: REST history on both sides, the WebSocket of the receiving side
    with live_socket(concord_peer.base_url, bob, ssl=concord_peer.ssl_context()) as bob_ws, \
            live_socket(live_url, alice) as alice_ws:
        alice.chat_post_message("hello *peer*", room_id=rid)
        wait_for(lambda: "hello *peer*" in _texts(bob, peer_rid), what="main -> peer (REST)")
        wait_for(lambda: "hello *peer*" in bob_ws.messages(peer_rid), what="main -> peer (WebSocket)")
        peer_msg = [m for m in _history(bob, peer_rid) if m["msg"] == "hello *peer*"][0]
        assert peer_msg["u"]["username"] == alice_mxid and "<em>peer</em>" in peer_msg.get("html", "")

        bob.chat_post_message("hello main <b>x</b>", room_id=peer_rid)
        wait_for(lambda: "hello main <b>x</b>" in _texts(alice, rid), what="peer -> main (REST)")
        wait_for(lambda: "hello main <b>x</b>" in alice_ws.messages(rid), what="peer -> main (WebSocket)")
        main_msg = [m for m in _history(alice, rid) if m["msg"].startswith("hello main")][0]
        assert main_msg["u"]["username"] == bob_mxid and "<b>" not in main_msg.get("html", "")

    # name and topic: main -> peer
    assert alice.channels_rename(rid, f"ren{uid}")["success"]
    assert alice.channels_set_topic(rid, f"topic {uid}")["success"]
    wait_for(lambda: bob.channels_info(peer_rid)["channel"].get("fname") == f"ren{uid}", what="name on the peer")
    wait_for(lambda: bob.channels_info(peer_rid)["channel"].get("topic") == f"topic {uid}", what="topic on the peer")

    # leave: peer -> main; the peer server then no longer gets the room's events
    assert bob.channels_leave(peer_rid)["success"]
    wait_for(lambda: _main_state(rid, bob_mxid) == "left", what="bob left on main")
    mroom = portal_of(Room.objects.get(id=rid))
    assert mroom is not None and concord_peer.server_name not in joined_servers(mroom)


@pytest.mark.parametrize("version", ["10", "11", "12"])
def test_peer_invites_main_user_accept_name_topic_from_peer(
        version: str, fed: ConcordTLS, concord_peer: ConcordPeer, outbox_pump: Any, make_user: Any,
        rc_client: Callable[..., RocketChat]) -> None:
    from rooms.models import Membership, Room

    uid = _uid()
    make_user(f"mx{uid}", name="Main Xena")
    xena = rc_client(f"mx{uid}")
    xena_mxid = f"@mx{uid}:{fed.server_name}"
    carl = concord_peer.register(f"pc{uid}", "Peer Carl")
    peer_rid = carl.groups_create(f"grp{uid}")["group"]["_id"]
    assert carl.call_api_post("rooms.federation", roomId=peer_rid, roomVersion=version)["success"]
    carl.chat_post_message("early words", room_id=peer_rid)
    invited = carl.call_api_post("groups.invite", roomId=peer_rid, username=xena_mxid)
    assert invited.get("success"), invited

    sub = wait_for(lambda: Membership.objects.filter(user__username=f"mx{uid}", state=Membership.INVITED).first(),
                   what="pending invitation on main")
    rid = sub.room_id
    accepted = xena.call_api_post("rooms.invite", roomId=rid, action="accept")
    assert accepted.get("success"), accepted
    assert _main_state(rid, f"mx{uid}") == "joined"
    wait_for(lambda: xena_mxid in _members(carl, peer_rid, "groups"), what="xena joined on the peer")
    assert "early words" in _texts(xena, rid, "groups")

    # name and topic: peer -> main
    assert carl.groups_rename(peer_rid, f"gren{uid}")["success"]
    assert carl.groups_set_topic(peer_rid, f"peer topic {uid}")["success"]
    wait_for(lambda: Room.objects.get(id=rid).fname == f"gren{uid}", what="name on main")
    wait_for(lambda: Room.objects.get(id=rid).topic == f"peer topic {uid}", what="topic on main")

    xena.chat_post_message("thanks carl", room_id=rid)
    wait_for(lambda: "thanks carl" in _texts(carl, peer_rid, "groups"), what="main -> peer in a peer room")
    carl.chat_post_message("welcome xena", room_id=peer_rid)
    wait_for(lambda: "welcome xena" in _texts(xena, rid, "groups"), what="peer -> main in a peer room")

    assert xena.groups_leave(rid)["success"]
    wait_for(lambda: xena_mxid not in _members(carl, peer_rid, "groups"), what="xena left on the peer")


def test_main_invites_peer_user_who_accepts(
        fed: ConcordTLS, concord_peer: ConcordPeer, outbox_pump: Any, make_user: Any,
        rc_client: Callable[..., RocketChat]) -> None:
    uid = _uid()
    make_user(f"mo{uid}", name="Main Olga")
    olga = rc_client(f"mo{uid}")
    rid = olga.groups_create(f"priv{uid}")["group"]["_id"]
    dora = concord_peer.register(f"pd{uid}", "Peer Dora")
    dora_mxid = concord_peer.mxid(f"pd{uid}")
    invited = olga.call_api_post("groups.invite", roomId=rid, username=dora_mxid)
    assert invited.get("success"), invited
    assert _main_state(rid, dora_mxid) == "invited"

    sub = wait_for(lambda: _peer_sub(dora, lambda s: s.get("state") == "invited"), what="invitation on the peer")
    accepted = dora.call_api_post("rooms.invite", roomId=sub["rid"], action="accept")
    assert accepted.get("success"), accepted
    wait_for(lambda: _main_state(rid, dora_mxid) == "joined", what="dora joined on main")
    dora.chat_post_message("hi olga", room_id=sub["rid"])
    wait_for(lambda: "hi olga" in _texts(olga, rid, "groups"), what="peer -> main after accepting")


def test_outage_of_the_peer_twenty_messages_in_order(
        fed: ConcordTLS, concord_peer: ConcordPeer, outbox_pump: Any, make_user: Any,
        rc_client: Callable[..., RocketChat]) -> None:
    uid = _uid()
    make_user(f"ms{uid}", name="Main Sender")
    sender = rc_client(f"ms{uid}")
    rid, alias = _main_public_room(sender, f"out{uid}", "12")
    eve = concord_peer.register(f"pe{uid}")
    peer_rid = eve.channels_join(alias, None)["channel"]["_id"]
    concord_peer.stop()
    try:
        for i in range(20):
            sender.chat_post_message(f"o{i:02d}", room_id=rid)
    finally:
        concord_peer.start()
    want = [f"o{i:02d}" for i in range(20)]
    got = wait_for(lambda: (lambda t: t if all(w in t for w in want) else None)(_texts(eve, peer_rid)),
                   timeout=60, what="all 20 messages on the peer")
    assert [t for t in got if t in want] == want  # in order, each once


def test_peer_worker_killed_mid_send_delivers_once_in_order(
        fed: ConcordTLS, concord_peer: ConcordPeer, outbox_pump: Any, make_user: Any,
        rc_client: Callable[..., RocketChat], monkeypatch: pytest.MonkeyPatch) -> None:
    """The peer's Celery worker is SIGKILLed while our server holds its first transaction open."""
    import federation.api.server as inbound  # the /send endpoint's binding of receive_transaction
    from rooms.models import Message

    uid = _uid()
    make_user(f"mr{uid}", name="Main Receiver")
    receiver = rc_client(f"mr{uid}")
    rid, alias = _main_public_room(receiver, f"kill{uid}", "12")
    fay = concord_peer.register(f"pf{uid}")
    peer_rid = fay.channels_join(alias, None)["channel"]["_id"]
    fay_mxid = concord_peer.mxid(f"pf{uid}")

    original = inbound.receive_transaction
    in_flight, release = threading.Event(), threading.Event()
    seen: list[tuple[str, int]] = []

    def holding(origin: str, txn_id: str, body: Any) -> Any:
        if origin == concord_peer.server_name and isinstance(body, dict) and body.get("pdus"):
            seen.append((txn_id, len(body["pdus"])))
            if not in_flight.is_set():
                in_flight.set()
                release.wait(30)  # the sender is killed while we hold its request
        return original(origin, txn_id, body)

    monkeypatch.setattr(inbound, "receive_transaction", holding)
    fay.chat_post_message("k00", room_id=peer_rid)
    assert in_flight.wait(20), "the peer never sent its transaction"
    for i in range(1, 20):
        fay.chat_post_message(f"k{i:02d}", room_id=peer_rid)
    concord_peer.kill_worker()
    release.set()
    concord_peer.start_worker()

    want = [f"k{i:02d}" for i in range(20)]

    def received() -> list[str] | None:
        texts = list(Message.objects.filter(room_id=rid, user__username=fay_mxid, type="").order_by("created_at", "id")
                     .values_list("text", flat=True))
        return texts if len(texts) >= 20 else None

    got = wait_for(received, timeout=60, what="the 20 messages after the worker restart")
    time.sleep(1.5)  # anything re-sent late would show up now
    got = received() or got
    assert got == want, got  # all, in order, none twice
    first_txn = seen[0][0]
    assert [t for t, _ in seen].count(first_txn) >= 2, seen  # the killed transaction was retried as is


def test_peer_scrolls_back_past_the_join_backfill(
        fed: ConcordTLS, concord_peer: ConcordPeer, outbox_pump: Any, make_user: Any,
        rc_client: Callable[..., RocketChat]) -> None:
    """Our server serves ``backfill``; the other Concord fetches older pages as its user scrolls back."""
    uid = _uid()
    make_user(f"mh{uid}", name="Main Historian")
    historian = rc_client(f"mh{uid}")
    rid, alias = _main_public_room(historian, f"hist{uid}", "12")
    want = [f"p{i:02d}" for i in range(70)]
    for text in want:
        historian.chat_post_message(text, room_id=rid)
    gus = concord_peer.register(f"pg{uid}")
    peer_rid = gus.channels_join(alias, None)["channel"]["_id"]
    held = gus.call_api_get("channels.messages", roomId=peer_rid, count=200)["messages"]  # (no backfill here)
    assert 0 < len([m for m in held if m["msg"] in want]) < len(want)  # the join brought recent history only

    seen: list[str] = []
    latest: str | None = None
    for _ in range(20):
        page = gus.call_api_get("channels.history", roomId=peer_rid, count=20, **({"latest": latest} if latest else {}))
        if not page["messages"]:
            break
        seen.extend(m["msg"] for m in page["messages"] if not m.get("t"))
        latest = page["messages"][-1]["ts"]
    assert [t for t in reversed(seen) if t in want] == want


def _find(rc: RocketChat, rid: str, text: str) -> dict[str, Any] | None:
    return next((m for m in _history(rc, rid) if m["msg"] == text), None)


@pytest.mark.parametrize("version", ["10", "12"])
def test_edits_quotes_reactions_and_mentions_between_two_concords(
        version: str, fed: ConcordTLS, concord_peer: ConcordPeer, outbox_pump: Any, make_user: Any,
        rc_client: Callable[..., RocketChat]) -> None:
    from rooms.models import Membership

    uid = _uid()
    alice_user = make_user(f"ea{uid}", name="Edit Alice")
    alice = rc_client(f"ea{uid}")
    rid, alias = _main_public_room(alice, f"edits{uid}", version)
    bob = concord_peer.register(f"eb{uid}", "Edit Bob")
    bob_mxid = concord_peer.mxid(f"eb{uid}")
    peer_rid = bob.channels_join(alias, None)["channel"]["_id"]
    wait_for(lambda: _main_state(rid, bob_mxid) == "joined", what="bob joined on main")

    # main -> peer: a message, then its edit; a quote of bob's message; a reaction
    first = alice.chat_post_message("frist post", room_id=rid)["message"]
    peer_first = wait_for(lambda: _find(bob, peer_rid, "frist post"), what="first post on peer")
    alice.chat_update(room_id=rid, msg_id=first["_id"], text="first post")
    wait_for(lambda: _find(bob, peer_rid, "first post"), what="edit on peer")
    assert _find(bob, peer_rid, "first post")["_id"] == peer_first["_id"]  # the same message, edited
    assert _find(bob, peer_rid, "first post").get("editedAt")

    # peer -> main: bob reacts, replies with a quote, edits his reply, mentions alice
    bob.chat_react(msg_id=peer_first["_id"], emoji=":tada:")
    wait_for(lambda: bob_mxid in (alice.chat_get_message(msg_id=first["_id"])["message"]
                                  .get("reactions", {}).get(":tada:", {}).get("usernames", [])),
             what="bob's reaction on main")
    reply = bob.call_api_post("chat.sendMessage", message={"rid": peer_rid, "msg": "agreed, @ea" + uid,
                                                           "quote": peer_first["_id"]})["message"]
    main_reply = wait_for(lambda: _find(alice, rid, "agreed, @ea" + uid), what="bob's reply on main")
    assert main_reply["quote"]["_id"] == first["_id"]
    wait_for(lambda: Membership.objects.get(room_id=rid, user=alice_user).user_mentions == 1,
             what="alice mentioned on main")
    bob.chat_update(room_id=peer_rid, msg_id=reply["_id"], text="agreed!")
    wait_for(lambda: _find(alice, rid, "agreed!"), what="bob's edit on main")
    bob.chat_react(msg_id=peer_first["_id"], emoji=":tada:")  # taken back
    wait_for(lambda: not alice.chat_get_message(msg_id=first["_id"])["message"].get("reactions"),
             what="bob's reaction removed on main")

    # main -> peer: alice's reaction shows on bob's copy with the same shortcode
    alice.chat_react(msg_id=main_reply["_id"], emoji=":thumbsup:")
    wait_for(lambda: f"@ea{uid}:{fed.server_name}" in (
        bob.chat_get_message(msg_id=reply["_id"])["message"].get("reactions", {})
        .get(":thumbsup:", {}).get("usernames", [])), what="alice's reaction on peer")


def test_files_between_two_concords(fed: ConcordTLS, concord_peer: ConcordPeer, outbox_pump: Any, make_user: Any,
                                    rc_client: Callable[..., RocketChat]) -> None:
    """An image each way: the receiving Concord fetches it from the other one (authenticated
    media) and serves it itself."""
    import io

    from PIL import Image

    from rooms.models import Message

    def png(colour: tuple[int, int, int]) -> bytes:
        out = io.BytesIO()
        Image.new("RGB", (120, 90), colour).save(out, format="PNG")
        return out.getvalue()

    uid = _uid()
    make_user(f"fa{uid}", name="File Alice")
    alice = rc_client(f"fa{uid}")
    rid, alias = _main_public_room(alice, f"files{uid}", "12")
    bob = concord_peer.register(f"fb{uid}", "File Bob")
    peer_rid = bob.channels_join(alias, None)["channel"]["_id"]
    wait_for(lambda: _main_state(rid, concord_peer.mxid(f"fb{uid}")) == "joined", what="bob joined on main")

    ours = png((200, 0, 0))
    up = alice.rooms_media(rid, ("red.png", io.BytesIO(ours), "image/png"))["file"]["_id"]
    alice.rooms_media_confirm(rid, up, msg="red one")
    arrived = wait_for(lambda: next((m for m in _history(bob, peer_rid) if m.get("file")), None),
                       what="alice's image on peer")
    assert arrived["msg"] == "red one" and arrived["file"]["name"] == "red.png"
    got = concord_peer.session().get(concord_peer.base_url + arrived["attachments"][0]["image_url"],
                                     headers={"X-User-Id": bob.headers["X-User-Id"],
                                              "X-Auth-Token": bob.headers["X-Auth-Token"]}, timeout=10)
    assert got.status_code == 200 and got.content == ours

    theirs = png((0, 0, 200))
    up = bob.rooms_media(peer_rid, ("blue.png", io.BytesIO(theirs), "image/png"))["file"]["_id"]
    bob.rooms_media_confirm(peer_rid, up)
    stored = wait_for(lambda: Message.objects.filter(room_id=rid, file__name="blue.png").first(),
                      what="bob's image on main")
    with Image.open(stored.file.file.open("rb")) as img:
        assert img.size == (120, 90)


def test_typing_and_read_receipts_between_two_concords(
        fed: ConcordTLS, concord_peer: ConcordPeer, outbox_pump: Any, make_user: Any,
        rc_client: Callable[..., RocketChat]) -> None:
    from rooms.actions.typing import do_set_typing
    from rooms.models import Room

    uid = _uid()
    alice_user = make_user(f"ta{uid}", name="Typing Alice")
    alice = rc_client(f"ta{uid}")
    rid, alias = _main_public_room(alice, f"typing{uid}", "11")
    bob = concord_peer.register(f"tb{uid}", "Typing Bob")
    bob_mxid = concord_peer.mxid(f"tb{uid}")
    peer_rid = bob.channels_join(alias, None)["channel"]["_id"]
    wait_for(lambda: _main_state(rid, bob_mxid) == "joined", what="bob joined on main")
    alice_mxid = f"@ta{uid}:{fed.server_name}"

    with live_socket(concord_peer.base_url, bob, ssl=concord_peer.ssl_context()) as bob_ws:
        do_set_typing(alice_user, Room.objects.get(id=rid), True)
        wait_for(lambda: any(e.get("type") == "typing" and e.get("room_id") == peer_rid
                             and e["data"].get("username") == alice_mxid and e["data"].get("typing")
                             for e in list(bob_ws.events)), what="alice typing on peer")
        do_set_typing(alice_user, Room.objects.get(id=rid), False)
        wait_for(lambda: any(e.get("type") == "typing" and e.get("room_id") == peer_rid
                             and e["data"].get("username") == alice_mxid and not e["data"].get("typing")
                             for e in list(bob_ws.events)), what="alice stopped typing on peer")

    said = alice.chat_post_message("please read", room_id=rid)["message"]
    wait_for(lambda: "please read" in _texts(bob, peer_rid), what="message on peer")
    assert bob.call_api_post("subscriptions.read", rid=peer_rid)["success"]
    receipts = wait_for(lambda: alice.call_api_get("chat.getMessageReadReceipts", messageId=said["_id"])["receipts"],
                        what="bob's read receipt on main")
    assert [r["user"]["username"] for r in receipts] == [bob_mxid]


def _peer_member_id(rc: RocketChat, rid: str, username: str, kind: str = "channels") -> str:
    answer = rc.call_api_get(f"{kind}.members", roomId=rid, count=200)
    return str(next(m["_id"] for m in answer.get("members", []) if m["username"] == username))


@pytest.mark.parametrize("version", ["10", "12"])
def test_governance_between_two_concords(
        version: str, fed: ConcordTLS, concord_peer: ConcordPeer, outbox_pump: Any, make_user: Any,
        rc_client: Callable[..., RocketChat]) -> None:
    """Roles, mutes, read-only, history visibility, bans both ways between two Concords; the peer's
    directory browsed from main; an invite the peer withdraws disappears on main."""
    from rooms.models import Membership, Room

    uid = _uid()
    make_user(f"ga{uid}", name="Gov Alice")
    alice = rc_client(f"ga{uid}")
    alice_mxid = f"@ga{uid}:{fed.server_name}"
    rid, alias = _main_public_room(alice, f"gov{uid}", version)
    bob = concord_peer.register(f"gb{uid}", "Gov Bob")
    bob_mxid = concord_peer.mxid(f"gb{uid}")
    peer_rid = bob.channels_join(alias, None)["channel"]["_id"]
    bob_id = Membership.objects.get(room_id=rid, user__username=bob_mxid).user_id

    def peer_roles() -> list[str]:
        sub = _peer_sub(bob, lambda s: s.get("rid") == peer_rid) or {}
        return sorted(sub.get("roles") or [])

    def bob_post(text: str) -> dict[str, Any]:
        try:
            return dict(bob.call_api_post("chat.postMessage", roomId=peer_rid, text=text))
        except RocketApiException as exc:  # the client raises Rocket.Chat's errors: "API error (<type>): ..."
            return {"errorType": str(exc).split("(", 1)[1].split(")", 1)[0]}

    # Main's owner: moderator -> owner -> member, shown on the peer.
    assert alice.channels_add_moderator(rid, bob_id)["success"]
    wait_for(lambda: peer_roles() == ["moderator"], what="moderator on the peer")
    assert alice.channels_remove_moderator(rid, bob_id)["success"]
    wait_for(lambda: peer_roles() == [], what="plain member on the peer")
    # Mute: the peer refuses bob's posts; unmuted, they reach main.
    assert alice.call_api_post("rooms.muteUser", roomId=rid, userId=bob_id)["success"]
    wait_for(lambda: bob_post("muted?").get("errorType") == "error-user-muted", what="muted on the peer")
    assert alice.call_api_post("rooms.unmuteUser", roomId=rid, userId=bob_id)["success"]
    wait_for(lambda: bob_post(f"free {uid}").get("success") is True, what="unmuted on the peer")
    wait_for(lambda: f"free {uid}" in _texts(alice, rid), what="bob's post on main")
    # Read-only and history visibility follow.
    assert alice.channels_set_read_only(rid, True)["success"]
    wait_for(lambda: bob.channels_info(peer_rid)["channel"].get("ro") is True, what="read-only on the peer")
    assert bob_post("ro?").get("errorType") == "error-room-read-only"
    assert alice.channels_set_read_only(rid, False)["success"]
    wait_for(lambda: bob.channels_info(peer_rid)["channel"].get("ro") is False, what="writable on the peer")
    assert alice.call_api_post("rooms.saveRoomSettings", rid=rid, historyVisibility="invited")["success"]
    wait_for(lambda: bob.channels_info(peer_rid)["channel"].get("historyVisibility") == "invited",
             what="history visibility on the peer")
    # Ban and unban: bob is out on the peer, then may come back.
    assert alice.call_api_post("rooms.banUser", roomId=rid, userId=bob_id)["success"]
    wait_for(lambda: _peer_sub(bob, lambda s: s.get("rid") == peer_rid and s.get("state") == "joined") is None,
             what="bob out on the peer")
    assert alice.call_api_post("rooms.unbanUser", roomId=rid, userId=bob_id)["success"]

    def bob_rejoins() -> bool:
        try:
            return bool(bob.channels_join(alias, None).get("success"))
        except RocketApiException as exc:  # the unban has not reached the peer yet: it still refuses
            assert "error-user-banned" in str(exc)
            return False
    wait_for(bob_rejoins, what="bob back after the unban")

    # The peer's own room: its owner mutes alice and makes the room read-only; main follows.
    their = bob.channels_create(f"peergov{uid}")["channel"]["_id"]
    assert bob.call_api_post("rooms.federation", roomId=their, roomVersion=version)["success"]
    # Main browses the peer's directory and joins from it.
    found = alice.call_api_get("federation/searchPublicRooms", serverName=concord_peer.server_name,
                               roomName=f"peergov{uid}")
    assert [r["name"] for r in found["rooms"]] == [f"peergov{uid}"], found
    joined = alice.call_api_post("federation/joinExternalPublicRoom", externalRoomId=found["rooms"][0]["id"],
                                 serverName=concord_peer.server_name)
    assert joined["success"], joined
    main_rid = joined["room"]["_id"]
    wait_for(lambda: alice_mxid in _members(bob, their), what="alice joined on the peer")
    alice_there = _peer_member_id(bob, their, alice_mxid)
    assert bob.call_api_post("rooms.muteUser", roomId=their, userId=alice_there)["success"]
    wait_for(lambda: Membership.objects.get(room_id=main_rid, user__username=f"ga{uid}").muted, what="muted on main")
    assert bob.call_api_post("rooms.unmuteUser", roomId=their, userId=alice_there)["success"]
    assert bob.channels_set_read_only(their, True)["success"]
    wait_for(lambda: Room.objects.get(id=main_rid).read_only, what="read-only on main")
    assert not Membership.objects.get(room_id=main_rid, user__username=f"ga{uid}").muted

    # An invite the peer withdraws is gone on main.
    group = bob.groups_create(f"wd{uid}")["group"]["_id"]
    assert bob.call_api_post("rooms.federation", roomId=group, roomVersion=version)["success"]
    assert bob.call_api_post("groups.invite", roomId=group, username=alice_mxid)["success"]
    sub = wait_for(lambda: Membership.objects.filter(user__username=f"ga{uid}", state=Membership.INVITED).first(),
                   what="invitation on main")
    assert bob.call_api_post("groups.kick", roomId=group, username=alice_mxid)["success"]
    wait_for(lambda: _main_state(sub.room_id, f"ga{uid}") == "left", what="withdrawn invite gone on main")


def test_presence_crosses_and_the_switches_stop_it(
        fed: ConcordTLS, concord_peer: ConcordPeer, outbox_pump: Any, make_user: Any,
        rc_client: Callable[..., RocketChat], settings: Any) -> None:
    """A status set on main shows on the peer (busy as away: Matrix's "unavailable");
    with ``CONCORD_FEDERATION_PRESENCE`` off nothing more crosses, and nothing is taken in."""
    uid = _uid()
    make_user(f"pa{uid}", name="Presence Alice")
    alice = rc_client(f"pa{uid}")
    alice_mxid = f"@pa{uid}:{fed.server_name}"
    rid, alias = _main_public_room(alice, f"presence{uid}", "11")
    bob = concord_peer.register(f"pb{uid}", "Presence Bob")
    peer_rid = bob.channels_join(alias, None)["channel"]["_id"]
    alice_there = _peer_member_id(bob, peer_rid, alice_mxid)

    def peer_status() -> str:
        return str(bob.call_api_get("users.getStatus", userId=alice_there)["status"])

    alice.users_set_status("in a meeting", status="busy")
    wait_for(lambda: peer_status() == "away", what="busy on main shows as away on the peer")
    alice.users_set_status("", status="online")
    wait_for(lambda: peer_status() == "online", what="online on the peer")
    settings.CONCORD_FEDERATION_PRESENCE = False
    alice.users_set_status("", status="busy")
    time.sleep(3)
    assert peer_status() == "online"
    # Incoming too: the peer's user going away does not change anything here.
    from accounts.models import User

    bob.users_set_status("", status="away")
    time.sleep(3)
    assert User.objects.get(username=concord_peer.mxid(f"pb{uid}")).status != "away"
