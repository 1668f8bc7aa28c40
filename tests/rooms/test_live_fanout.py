"""The per-process fan-out (:mod:`rooms.live_fanout`): order per room, leaving a room, a slow client
dropped with a resync hint while the others keep up, and a Redis subscriber failure turned into a
resync of every local socket. Real Redis, real consumer; the slow client is a real TCP socket
that stops reading."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from typing import Any

import pytest
import redis
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import override_settings
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.sync.client import connect as ws_connect
from websockets.uri import parse_uri

from accounts.actions import do_create_user, do_login
from chat.asgi import application
from rooms.actions.memberships import do_leave
from rooms.actions.rooms import do_create_room
from rooms.events import LiveEvent, _send_now, room_group
from rooms.live_fanout import CLOSE_RESYNC, subscriber_name

TIMEOUT = 10.0


async def connect(user: Any) -> WebsocketCommunicator:
    token = await database_sync_to_async(do_login)(user, "fanout-test")
    comm = WebsocketCommunicator(application, f"/websocket?token={token}&user_id={user.id}")
    connected, _ = await comm.connect(timeout=TIMEOUT)
    assert connected
    ready = await comm.receive_json_from(timeout=TIMEOUT)
    assert ready["type"] == "ready", ready
    return comm


async def frames_until(comm: WebsocketCommunicator, done: Any) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []
    while not done(got):
        got.append(await comm.receive_json_from(timeout=TIMEOUT))
    return got


@database_sync_to_async
def two_members_and_a_room() -> tuple[Any, Any, Any]:
    alice = do_create_user("alice", "alice@example.test", "password123", "Alice")
    bob = do_create_user("bob", "bob@example.test", "password123", "Bob")
    room = do_create_room(alice, "c", "fanout", members=[bob])
    return alice, bob, room


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_events_of_a_room_reach_every_socket_in_order() -> None:
    alice, bob, room = await two_members_and_a_room()
    sockets = [await connect(alice), await connect(bob), await connect(bob)]
    try:
        for i in range(300):
            await database_sync_to_async(_send_now)(room_group(room.id), LiveEvent("typing", room.id, {"n": i}))
        for comm in sockets:
            got = await frames_until(comm, lambda g: len([e for e in g if "n" in e.get("data", {})]) == 300)
            assert [e["data"]["n"] for e in got if "n" in e.get("data", {})] == list(range(300))
    finally:
        for comm in sockets:
            await comm.disconnect()


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_a_socket_stops_getting_a_room_it_left() -> None:
    alice, bob, room = await two_members_and_a_room()
    bob_ws = await connect(bob)
    try:
        await database_sync_to_async(do_leave)(room, bob)
        await frames_until(bob_ws, lambda g: any(e["type"] == "subscription.removed" for e in g))
        await database_sync_to_async(_send_now)(room_group(room.id), LiveEvent("typing", room.id, {"after": 1}))
        assert await bob_ws.receive_nothing(timeout=0.5)
    finally:
        await bob_ws.disconnect()


class RawClient:
    """A WebSocket client on a plain TCP socket with a tiny receive buffer, read only when asked."""

    def __init__(self, url: str) -> None:
        uri = parse_uri(url)
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.connect((uri.host, uri.port))
        self.proto = ClientProtocol(uri)
        self.proto.send_request(self.proto.connect())
        self.sock.sendall(b"".join(self.proto.data_to_send()))
        self.events: list[Any] = []

    def read(self, until: Any, timeout: float) -> list[Any]:
        self.sock.settimeout(timeout)
        deadline = time.monotonic() + timeout
        while not until(self.events) and time.monotonic() < deadline:
            data = self.sock.recv(65536)
            if not data:
                self.proto.receive_eof()
            else:
                self.proto.receive_data(data)
            self.events.extend(self.proto.events_received())
            self.sock.sendall(b"".join(self.proto.data_to_send()))
            if not data:
                break
        return self.events

    def texts(self) -> list[str]:
        return [e.data.decode() for e in self.events if isinstance(e, Frame) and e.opcode == Opcode.TEXT]

    def close_code(self) -> int | None:
        for e in self.events:
            if isinstance(e, Frame) and e.opcode == Opcode.CLOSE:
                return int.from_bytes(e.data[:2], "big")
        return None


@pytest.mark.django_db(transaction=True)
def test_a_client_that_stops_reading_is_dropped_with_a_resync_while_others_get_everything(
        live_url: str, make_user: Any) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    room = do_create_room(alice, "c", "slowroom", members=[bob])
    ws_url = live_url.replace("http", "ws") + "/websocket"
    with override_settings(CONCORD_LIVE_MAX_BUFFERED=50):  # read when a socket's sink is made
        fast = ws_connect(f"{ws_url}?token={do_login(alice, 'fast')}&user_id={alice.id}", max_size=None)
        slow = RawClient(f"{ws_url}?token={do_login(bob, 'slow')}&user_id={bob.id}")
        try:
            assert json.loads(fast.recv(timeout=TIMEOUT))["type"] == "ready"  # the sinks exist now
            slow.read(lambda ev: any(isinstance(e, Frame) for e in ev), TIMEOUT)
            assert json.loads(slow.texts()[0])["type"] == "ready"
        except BaseException:
            fast.close()
            slow.sock.close()
            raise
    try:
        big = "x" * 65536
        # ~26 MB: far more than the kernel's socket buffers plus 50 frames can hold for bob.
        for i in range(400):
            _send_now(room_group(room.id), LiveEvent("typing", room.id, {"n": i, "pad": big}))
        numbers = []
        while len(numbers) < 400:
            event = json.loads(fast.recv(timeout=TIMEOUT))
            if "n" in event["data"]:
                numbers.append(event["data"]["n"])
        assert numbers == list(range(400))  # the fast client missed nothing, in order
        slow.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)  # now read what is left quickly
        slow.read(lambda ev: slow.close_code() is not None, 30)
        texts = slow.texts()
        assert slow.close_code() == CLOSE_RESYNC
        assert json.loads(texts[-1])["type"] == "resync"
        received = [json.loads(t)["data"]["n"] for t in texts[1:-1]]
        assert 0 < len(received) < 400 and received == list(range(len(received)))  # a prefix, in order
    finally:
        fast.close()
        slow.sock.close()


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_a_failed_subscriber_connection_makes_every_local_socket_resync() -> None:
    alice, bob, room = await two_members_and_a_room()
    first = await connect(bob)
    try:
        client = redis.Redis.from_url(settings.REDIS_URL)
        ours = [c for c in client.client_list() if c.get("name") == subscriber_name()]
        assert ours, "the hub's subscriber connection carries its name"
        for c in ours:
            client.client_kill_filter(_id=c["id"])
        assert (await first.receive_json_from(timeout=TIMEOUT))["type"] == "resync"
        closed = await first.receive_output(timeout=TIMEOUT)
        assert closed == {"type": "websocket.close", "code": CLOSE_RESYNC}
        # The hub reconnects: a new socket gets the room's events again.
        second = await connect(bob)
        try:
            await asyncio.sleep(0.2)
            await database_sync_to_async(_send_now)(room_group(room.id), LiveEvent("typing", room.id, {"n": 1}))
            got = await frames_until(second, lambda g: any(e.get("data", {}).get("n") == 1 for e in g))
            assert got[-1]["room_id"] == room.id
        finally:
            await second.disconnect()
    finally:
        await first.disconnect()
