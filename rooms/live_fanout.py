"""Per-process live fan-out: one Redis subscriber per process writes each event's text to the local
WebSockets of its group.

Publishers (:func:`rooms.events.send_to_room`, any process, after commit) ``PUBLISH`` the event's JSON
text on ``<prefix>:live:<group>``. In every web process, one :class:`Hub` per event loop holds one
Redis pub/sub connection, subscribed to exactly the groups that have a local socket, and pushes
each text as it arrives into the :class:`SocketSink` of every local socket in the group. A sink
writes its frames to its socket from its own task, all the frames pending at that moment in one
``write()`` under uvicorn (:mod:`rooms.ws_batch`). Nothing on the way decodes or re-encodes the
event (the text was made once by the publisher), and there is no per-socket channel, queue in
Redis or Channels dispatch.

Guarantees:

* **Order.** One connection reads every group of the process in Redis's delivery order, and each
  socket's frames leave in the order they were pushed: the events of a room reach a socket in the
  order they were published.
* **Joins and leaves.** A socket is in its user's group and in the group of each joined room. The
  hub follows the user's ``subscription`` (state ``joined``: add the room) and
  ``subscription.removed`` / the room's ``room.deleted`` (deliver, then drop the room) as they pass,
  so a join takes effect for the events published after the one that announced it.
* **Slow clients.** A sink buffers at most ``CONCORD_LIVE_MAX_BUFFERED`` frames (default 1000) that
  its socket has not taken yet (uvicorn stops taking them while the client's TCP window is full).
  One more and the sink drops the buffer, leaves every group, queues
  ``{"type": "resync"}`` and closes the socket with code :data:`CLOSE_RESYNC`: one slow client
  costs bounded memory and never delays the others. Clients reconnect and catch up over the REST
  API, as after any reconnect.
* **Redis outages.** When the subscriber's connection fails, every local socket gets the same
  resync-and-close (events published meanwhile cannot be replayed), and the hub reconnects with
  back-off, subscribing again to every group that still has a socket.

Live events stay at-most-once by design: what a client missed it fetches after reconnecting
(``subscriptions.get`` with ``updatedSince``, ``channels.history`` with ``oldest``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from django.conf import settings

from rooms.events import live_channel, room_group
from rooms.ws_batch import text_writer

log = logging.getLogger(__name__)

CLOSE_RESYNC = 4008
"""Close code of a socket dropped by the server (too slow, or events lost): reconnect and catch up."""

RESYNC_FRAME = json.dumps({"type": "resync", "room_id": None, "data": {}}, separators=(",", ":"))

_ROOM_DELETED = '{"type":"room.deleted"'
_RECONNECT_DELAYS = (0.2, 0.5, 1.0, 2.0, 5.0)
_BATCH = 256
"""At most this many of a socket's pending frames go out in one write (:mod:`rooms.ws_batch`)."""

Send = Callable[[dict[str, Any]], Awaitable[None]]


def subscriber_name() -> str:
    """The Redis client name of this process's subscriber connections (``CLIENT LIST`` shows it)."""
    return f"{settings.REDIS_PREFIX}:live-hub:{os.getpid()}"


def max_buffered() -> int:
    return int(getattr(settings, "CONCORD_LIVE_MAX_BUFFERED", 1000))


class SocketSink:
    """The frames owed to one WebSocket, written in order by one task.

    :meth:`push` never blocks and never awaits: the hub calls it for every local socket of a group.
    Until :meth:`start`, pushed frames wait behind the first frame ``start`` is given.
    """

    def __init__(self, send: Send, *, limit: int | None = None) -> None:
        self._send = send
        self._write = text_writer(send)
        self._limit = max_buffered() if limit is None else limit
        self._frames: deque[str] = deque()
        self._wake: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._close_code: int | None = None
        self.groups: set[str] = set()
        self.closed = False
        self.hub: Hub | None = None

    def start(self, first: str | None = None) -> None:
        """Begin writing: ``first`` (e.g. the ``ready`` frame), then whatever was pushed meanwhile."""
        if first is not None:
            self._frames.appendleft(first)
        self._task = asyncio.get_running_loop().create_task(self._run())

    def push(self, text: str) -> None:
        if self.closed:
            return
        if len(self._frames) >= self._limit:
            self.resync("slow client")
            return
        self._frames.append(text)
        self._wakeup()

    def resync(self, why: str) -> None:
        """Drop what is buffered, leave every group, send ``resync`` and close with :data:`CLOSE_RESYNC`."""
        if self.closed:
            return
        log.info("live socket dropped for resync (%s, %d frames buffered)", why, len(self._frames))
        self.closed = True
        if self.hub is not None:
            self.hub.discard_all(self)
        self._frames.clear()
        self._frames.append(RESYNC_FRAME)
        self._close_code = CLOSE_RESYNC
        self._wakeup()

    def _wakeup(self) -> None:
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(None)

    async def _run(self) -> None:
        try:
            while True:
                while self._frames:
                    frames = self._frames
                    batch = [frames.popleft() for _ in range(min(len(frames), _BATCH))]
                    await self._write(batch)
                if self._close_code is not None:
                    await self._send({"type": "websocket.close", "code": self._close_code})
                    return
                self._wake = asyncio.get_running_loop().create_future()
                await self._wake
                self._wake = None
        except asyncio.CancelledError:
            raise
        except Exception:  # the socket went away under us (ClientDisconnected and the like)
            log.debug("live socket writer stopped", exc_info=True)
            self.closed = True
            if self.hub is not None:
                self.hub.discard_all(self)

    async def stop(self) -> None:
        """Stop writing (the socket is closing): leave every group, cancel the writer."""
        self.closed = True
        if self.hub is not None:
            self.hub.discard_all(self)
        if self._task is not None and self._task is not asyncio.current_task():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task


class Hub:
    """The groups with a local socket in this event loop, and the one subscriber that feeds them."""

    def __init__(self) -> None:
        self.groups: dict[str, set[SocketSink]] = {}
        self._pubsub: Any = None
        self._reader: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()

    # -- membership -------------------------------------------------------------------------

    async def add(self, group: str, sink: SocketSink) -> None:
        """Put ``sink`` in ``group``; returns once this process is subscribed to the group."""
        self.add_now(group, sink)
        await self._ensure_reader()
        if self._pubsub is not None and not self._subscribed(group):
            try:
                await self._pubsub.subscribe(live_channel(group))
            except Exception:  # the reader's reconnect subscribes to every group again
                log.warning("live: subscribing to %s failed; the reader will retry", group, exc_info=True)

    def add_now(self, group: str, sink: SocketSink) -> None:
        """Put ``sink`` in ``group`` now; the subscription (if new to the process) follows shortly."""
        if sink.closed:
            return
        sink.hub = self
        members = self.groups.get(group)
        if members is None:
            self.groups[group] = {sink}
            if self._pubsub is not None:
                asyncio.get_running_loop().create_task(self._subscribe_later(group))
        else:
            members.add(sink)
        sink.groups.add(group)

    def discard(self, group: str, sink: SocketSink) -> None:
        sink.groups.discard(group)
        members = self.groups.get(group)
        if members is None:
            return
        members.discard(sink)
        if not members:
            del self.groups[group]
            if self._pubsub is not None:
                asyncio.get_running_loop().create_task(self._unsubscribe_later(group))
        if not self.groups:
            self._stop_soon()

    def discard_all(self, sink: SocketSink) -> None:
        for group in list(sink.groups):
            self.discard(group, sink)

    # -- the subscriber ---------------------------------------------------------------------

    def _subscribed(self, group: str) -> bool:
        channels = getattr(self._pubsub, "channels", {}) or {}
        name = live_channel(group)
        return name in channels or name.encode() in channels

    async def _subscribe_later(self, group: str) -> None:
        if group in self.groups and self._pubsub is not None and not self._subscribed(group):
            with contextlib.suppress(Exception):
                await self._pubsub.subscribe(live_channel(group))

    async def _unsubscribe_later(self, group: str) -> None:
        if group not in self.groups and self._pubsub is not None and self._subscribed(group):
            with contextlib.suppress(Exception):
                await self._pubsub.unsubscribe(live_channel(group))

    async def _ensure_reader(self) -> None:
        if self._reader is None or self._reader.done():
            self._connected.clear()
            self._reader = asyncio.get_running_loop().create_task(self._read_forever())
        # Wait for the first connection (bounded: with Redis down, sockets still open and resync later).
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._connected.wait(), timeout=5.0)

    def _stop_soon(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None and not reader.done():
            reader.cancel()

    async def _connect(self) -> tuple[Any, Any]:
        # Imported on the first socket: worker and beat processes publish but never subscribe.
        import redis.asyncio as aioredis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        # No silent retries inside redis-py: a reconnect it did on its own would hide lost events.
        client = aioredis.Redis.from_url(settings.REDIS_URL, retry=Retry(NoBackoff(), 0), health_check_interval=0,
                                        client_name=subscriber_name())
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(*([live_channel(g) for g in self.groups] or [live_channel("_hub")]))
        except BaseException:
            await self._close(pubsub, client)
            raise
        return client, pubsub

    @staticmethod
    async def _close(pubsub: Any, client: Any) -> None:
        with contextlib.suppress(Exception):
            await pubsub.aclose()
        with contextlib.suppress(Exception):
            await client.aclose()

    def _resync_all(self, why: str) -> None:
        for sink in {s for members in self.groups.values() for s in members}:
            sink.resync(why)

    async def _read_forever(self) -> None:
        """Read the subscription until cancelled (the last local socket left), reconnecting after
        failures; the connection objects are this task's own, so a reader being cancelled never
        closes the connection of the one that replaced it."""
        attempt = 0
        while True:
            client = pubsub = None
            try:
                client, pubsub = await self._connect()
                self._pubsub = pubsub
                self._connected.set()
                if attempt:
                    log.warning("live: Redis subscriber reconnected; local sockets resync")
                    self._resync_all("Redis subscriber reconnected")
                attempt = 0
                while True:
                    message = await pubsub.get_message(timeout=None)
                    if message is not None and message.get("type") == "message":
                        self._deliver(message["channel"], message["data"])
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("live: Redis subscriber failed; local sockets resync", exc_info=True)
                self._resync_all("Redis subscriber failed")
                self._connected.set()  # nobody waits for a connection that is not coming now
                await asyncio.sleep(_RECONNECT_DELAYS[min(attempt, len(_RECONNECT_DELAYS) - 1)])
                attempt += 1
            finally:
                if self._pubsub is pubsub:
                    self._pubsub = None
                if pubsub is not None:
                    await self._close(pubsub, client)

    def _deliver(self, channel: bytes | str, data: bytes | str) -> None:
        name = channel.decode() if isinstance(channel, bytes) else channel
        group = name.rsplit(":live:", 1)[-1]
        members = self.groups.get(group)
        if not members:
            return
        text = data.decode() if isinstance(data, bytes) else data
        if group.startswith("user."):
            self._deliver_user_event(group, members, text)
            return
        for sink in list(members):
            sink.push(text)
        if text.startswith(_ROOM_DELETED):
            for sink in list(members):
                self.discard(group, sink)

    def _deliver_user_event(self, group: str, members: set[SocketSink], text: str) -> None:
        try:
            event = json.loads(text)
        except ValueError:
            log.warning("live: undecodable event on %s dropped", group)
            return
        kind, room_id = event.get("type"), event.get("room_id")
        joined = kind == "subscription" and room_id and (event.get("data") or {}).get("state") == "joined"
        for sink in list(members):
            if joined:
                self.add_now(room_group(room_id), sink)
            sink.push(text)
            if kind == "subscription.removed" and room_id:
                self.discard(room_group(room_id), sink)


_hubs: dict[int, tuple[asyncio.AbstractEventLoop, Hub]] = {}


def hub() -> Hub:
    """This event loop's hub (web processes have one loop; tests may run several, one at a time)."""
    loop = asyncio.get_running_loop()
    for key, (other, _) in list(_hubs.items()):
        if other.is_closed():
            del _hubs[key]
    entry = _hubs.get(id(loop))
    if entry is None or entry[0] is not loop:
        entry = (loop, Hub())
        _hubs[id(loop)] = entry
    return entry[1]


@contextlib.asynccontextmanager
async def tap(group: str, *, limit: int = 10_000) -> AsyncIterator[asyncio.Queue[dict[str, Any]]]:
    """Listen to ``group`` in this process as a socket would: a queue of the decoded events (for
    tools and tests that watch live traffic without a WebSocket)."""
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "websocket.send":
            queue.put_nowait(json.loads(message["text"]))

    sink = SocketSink(send, limit=limit)
    h = hub()
    await h.add(group, sink)
    sink.start()
    try:
        yield queue
    finally:
        await sink.stop()
