"""Live events over the WebSocket (protocol in :mod:`rooms.consumers` and :mod:`rooms.events`).

(a) Channels' ``WebsocketCommunicator`` against ``chat.asgi.application`` with the real Redis layer:
members receive every kind of event after the actions commit; non-members of a private room
receive nothing from it. (b) A real socket against the running uvicorn server receives a message
posted through the unmodified ``rocketchat-api`` client.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from websockets.sync.client import connect as ws_connect

from accounts.actions import do_create_user, do_login
from chat.asgi import application
from rooms.actions.messages import (
    do_delete_message,
    do_edit_message,
    do_mark_read,
    do_send_message,
    do_toggle_reaction,
)
from rooms.actions.rooms import do_create_room
from rooms.actions.typing import do_set_typing
from rooms.models import Membership

TIMEOUT = 5.0


async def connect(user: Any) -> tuple[WebsocketCommunicator, dict[str, Any]]:
    """A communicator authenticated by query-string token, and its ``ready`` frame."""
    token = await database_sync_to_async(do_login)(user, "ws-test")
    comm = WebsocketCommunicator(application, f"/websocket?token={token}&user_id={user.id}")
    connected, _ = await comm.connect(timeout=TIMEOUT)
    assert connected
    ready = await comm.receive_json_from(timeout=TIMEOUT)
    assert ready["type"] == "ready", ready
    # A fresh backlog: ``id()`` of a communicator from an earlier test can be reused by this one, and
    # that test's unread events must not satisfy this one's expectations.
    _backlog[id(comm)] = []
    return comm, ready


_backlog: dict[int, list[dict[str, Any]]] = {}


async def expect(comm: WebsocketCommunicator, kind: str, pred: Callable[[dict[str, Any]], bool] = lambda e: True,
                 ) -> dict[str, Any]:
    """The first event of type ``kind`` matching ``pred``; other events are kept for later calls,
    since the order between room and user events of one action is not part of the protocol."""
    backlog = _backlog[id(comm)]
    for event in backlog:
        if event.get("type") == kind and pred(event):
            backlog.remove(event)
            return event
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        event = await comm.receive_json_from(timeout=max(0.05, deadline - time.monotonic()))
        if event.get("type") == kind and pred(event):
            return event
        backlog.append(event)
    raise AssertionError(f"no {kind} event; saw {[e.get('type') for e in backlog]}")


@database_sync_to_async
def setup_rooms() -> dict[str, Any]:
    alice = do_create_user("alice", "alice@example.test", "password123", "Alice")
    bob = do_create_user("bob", "bob@example.test", "password123", "Bob")
    carol = do_create_user("carol", "carol@example.test", "password123", "Carol")
    secret = do_create_room(alice, "p", "secret", members=[bob])
    return {"alice": alice, "bob": bob, "carol": carol, "secret": secret}


def run(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return database_sync_to_async(fn)(*args, **kwargs)


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_member_receives_message_lifecycle_and_counters() -> None:
    w = await setup_rooms()
    rid = w["secret"].id
    bob_ws, ready = await connect(w["bob"])
    assert ready["user"]["username"] == "bob" and rid in ready["rooms"]
    carol_ws, carol_ready = await connect(w["carol"])
    assert carol_ready["rooms"] == []
    try:
        msg = await run(do_send_message, w["alice"], w["secret"], "hello @bob")
        new = await expect(bob_ws, "message.new")
        assert new["room_id"] == rid and new["data"]["_id"] == msg.id and new["data"]["msg"] == "hello @bob"
        assert new["data"]["u"]["username"] == "alice"
        sub = await expect(bob_ws, "subscription", lambda e: e["room_id"] == rid)
        assert sub["data"]["unread"] == 1 and sub["data"]["userMentions"] == 1
        # "state fetched + events applied == state fetched again" for the counters.
        fetched = await run(lambda: Membership.objects.select_related("room").get(room=w["secret"], user=w["bob"]))
        assert (fetched.unread, fetched.user_mentions) == (sub["data"]["unread"], sub["data"]["userMentions"])

        await run(do_edit_message, w["alice"], msg, "hello again")
        edited = await expect(bob_ws, "message.updated", lambda e: e["data"]["_id"] == msg.id)
        assert edited["data"]["msg"] == "hello again" and edited["data"]["editedBy"]["username"] == "alice"

        await run(do_toggle_reaction, w["bob"], msg, "thumbsup")
        reaction = await expect(bob_ws, "reaction")
        assert reaction["data"] == {"_id": msg.id, "reactions": {":thumbsup:": {"usernames": ["bob"],
                                                                                  "names": ["Bob"]}},
                                    "emoji": ":thumbsup:", "username": "bob", "added": True}

        await run(do_mark_read, w["bob"], w["secret"])
        receipt = await expect(bob_ws, "receipt")
        assert receipt["data"]["user"]["username"] == "bob" and receipt["data"]["ts"]
        cleared = await expect(bob_ws, "subscription", lambda e: e["room_id"] == rid)
        assert cleared["data"]["unread"] == 0

        await run(do_set_typing, w["alice"], w["secret"], True)
        typing = await expect(bob_ws, "typing")
        assert typing["data"]["username"] == "alice" and typing["data"]["typing"] is True

        await run(do_delete_message, w["alice"], msg)
        deleted = await expect(bob_ws, "message.deleted")
        assert deleted["data"] == {"_id": msg.id, "rid": rid}

        # Carol is not in the private room: nothing of it reached her.
        assert await carol_ws.receive_nothing(timeout=0.3)
    finally:
        await bob_ws.disconnect()
        await carol_ws.disconnect()


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_client_frames_typing_read_ping_and_errors() -> None:
    w = await setup_rooms()
    rid = w["secret"].id
    alice_ws, _ = await connect(w["alice"])
    bob_ws, _ = await connect(w["bob"])
    carol_ws, _ = await connect(w["carol"])
    try:
        await bob_ws.send_json_to({"type": "typing", "room_id": rid, "typing": True})
        typing = await expect(alice_ws, "typing")
        assert typing["room_id"] == rid and typing["data"]["username"] == "bob" and typing["data"]["typing"] is True
        await bob_ws.send_json_to({"type": "typing", "room_id": rid, "typing": False})
        stopped = await expect(alice_ws, "typing")
        assert stopped["data"]["typing"] is False

        await bob_ws.send_json_to({"type": "read", "room_id": rid})
        receipt = await expect(alice_ws, "receipt")
        assert receipt["data"]["user"]["username"] == "bob"

        await bob_ws.send_json_to({"type": "ping"})
        assert await expect(bob_ws, "pong")

        # Carol cannot type into (or learn about) a room she is not in.
        await carol_ws.send_json_to({"type": "typing", "room_id": rid, "typing": True})
        error = await carol_ws.receive_json_from(timeout=TIMEOUT)
        assert error["type"] == "error"
        await carol_ws.send_json_to({"type": "nonsense"})
        assert (await carol_ws.receive_json_from(timeout=TIMEOUT))["type"] == "error"
        await carol_ws.send_to(text_data="[1, 2]")
        assert (await carol_ws.receive_json_from(timeout=TIMEOUT))["type"] == "error"
        assert await alice_ws.receive_nothing(timeout=0.3)
    finally:
        for comm in (alice_ws, bob_ws, carol_ws):
            await comm.disconnect()


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_joining_adds_room_and_bad_token_is_refused() -> None:
    w = await setup_rooms()
    carol_ws, _ = await connect(w["carol"])
    try:
        room = await run(do_create_room, w["alice"], "p", "later", members=[w["carol"]])
        sub = await expect(carol_ws, "subscription", lambda e: e["room_id"] == room.id)
        assert sub["data"]["state"] == "joined"
        await run(do_send_message, w["alice"], room, "welcome")
        new = await expect(carol_ws, "message.new", lambda e: e["room_id"] == room.id)
        assert new["data"]["msg"] == "welcome"
    finally:
        await carol_ws.disconnect()

    bad = WebsocketCommunicator(application, f"/websocket?token=wrong&user_id={w['carol'].id}")
    connected, _ = await bad.connect(timeout=TIMEOUT)
    assert connected  # accepted, but must authenticate before anything else
    await bad.send_json_to({"type": "ping"})
    assert (await bad.receive_json_from(timeout=TIMEOUT))["type"] == "error"
    assert (await bad.receive_output(timeout=TIMEOUT))["code"] == 4001


def test_real_socket_receives_message_posted_through_rest(live_url: str, make_user: Callable[..., Any],
                                                          rc_client: Callable[..., Any]) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    room = do_create_room(alice, "c", "general", members=[bob])
    rc_alice, rc_bob = rc_client("alice"), rc_client("bob")
    ws_url = live_url.replace("http://", "ws://") + (
        f"/websocket?token={rc_bob.headers['X-Auth-Token']}&user_id={rc_bob.headers['X-User-Id']}")
    with ws_connect(ws_url, open_timeout=TIMEOUT) as ws:
        ready = json.loads(ws.recv(timeout=TIMEOUT))
        assert ready["type"] == "ready" and room.id in ready["rooms"]
        posted = rc_alice.chat_post_message("over the wire", room_id=room.id)["message"]
        deadline = time.monotonic() + TIMEOUT
        while True:
            event = json.loads(ws.recv(timeout=max(0.05, deadline - time.monotonic())))
            if event["type"] == "message.new":
                break
        assert event["room_id"] == room.id
        assert event["data"]["_id"] == posted["_id"] and event["data"]["msg"] == "over the wire"
        ws.send(json.dumps({"type": "ping"}))
        while json.loads(ws.recv(timeout=TIMEOUT))["type"] != "pong":
            pass
