"""Live frames written several per ``write()`` under uvicorn (rooms.ws_batch), and the per-frame
fallback for any other ASGI server."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import pytest
from websockets.sync.client import connect as ws_connect

from accounts.actions import do_login
from rooms.actions.rooms import do_create_room
from rooms.events import LiveEvent, _send_now, room_group
from rooms.live_fanout import _hubs
from rooms.ws_batch import text_writer

TIMEOUT = 20


def _sinks() -> list[Any]:
    return [sink for _, hub in _hubs.values() for members in hub.groups.values() for sink in members]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("compression", ["deflate", None])
def test_a_burst_reaches_uvicorn_sockets_whole_and_in_order_through_the_batched_writer(
        live_url: str, make_user: Any, compression: str | None) -> None:
    alice = make_user("alice")
    room = do_create_room(alice, "c", f"burst-{compression}")
    ws_url = live_url.replace("http", "ws") + "/websocket"
    with ws_connect(f"{ws_url}?token={do_login(alice, 'w')}&user_id={alice.id}", max_size=None,
                    compression=compression) as ws:
        assert json.loads(ws.recv(timeout=TIMEOUT))["type"] == "ready"
        sinks = _sinks()
        assert sinks and all(getattr(s._write, "batched", False) for s in sinks)  # below ASGI
        for i in range(500):
            _send_now(room_group(room.id), LiveEvent("typing", room.id, {"n": i, "text": "é" * (i % 7)}))
        numbers = []
        while len(numbers) < 500:
            event = json.loads(ws.recv(timeout=TIMEOUT))
            if "n" in event["data"]:
                assert event["data"]["text"] == "é" * (event["data"]["n"] % 7)
                numbers.append(event["data"]["n"])
        assert numbers == list(range(500))


def test_any_other_send_gets_one_websocket_send_per_frame() -> None:
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    write = text_writer(send)
    assert not getattr(write, "batched", False)
    # A loop of its own in a thread of its own: independent of whatever loop the suite left around.
    worker = threading.Thread(target=asyncio.run, args=(write(["a", "b", "c"]),))
    worker.start()
    worker.join(TIMEOUT)
    assert sent == [{"type": "websocket.send", "text": t} for t in "abc"]


def test_a_bound_send_of_an_unknown_class_is_not_taken_for_uvicorn() -> None:
    class Impostor:
        conn = transport = writable = disconnected = close_sent = initial_response = handshake_complete = None

        async def send(self, message: dict[str, Any]) -> None:
            raise AssertionError("never called here")

    assert not getattr(text_writer(Impostor().send), "batched", False)
