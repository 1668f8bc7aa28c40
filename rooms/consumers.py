"""The live-event WebSocket at ``/websocket``.

Protocol (JSON text frames):

1. Authenticate with the session cookie of the web client, or with ``?token=<auth token>&user_id=<id>``
   in the URL, or by sending ``{"type": "auth", "token": ..., "user_id": ...}`` first. The server
   answers ``{"type": "ready", "user": {...}, "rooms": [room ids]}`` or closes with code 4001.
2. The server then pushes the events documented in :mod:`rooms.events`.
3. The client may send ``{"type": "typing", "room_id": ..., "typing": true|false}``,
   ``{"type": "read", "room_id": ...}`` and ``{"type": "ping"}`` (answered ``{"type": "pong"}``).

After a reconnect, clients catch up through the REST API (``subscriptions.get`` with ``updatedSince``
and ``channels.history`` with ``oldest``) and carry on with live events.

Fan-out: events do not pass through this consumer at all. The process's hub
(:mod:`rooms.live_fanout`) writes each event's text, made once by the publisher, to the socket's
:class:`~rooms.live_fanout.SocketSink`; the consumer only authenticates, puts the sink in its
groups and answers the client's own frames. It opens no channel-layer channel of its own.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from rooms.events import room_group, user_group
from rooms.live_fanout import SocketSink, hub


class LiveEventsConsumer(AsyncJsonWebsocketConsumer):
    # No per-socket channel-layer channel: live events arrive through the process's hub.
    channel_layer_alias = "no-channel-layer"
    user: Any = None
    sink: SocketSink | None = None

    @property
    def rooms(self) -> set[str]:
        """The rooms whose events this socket receives now."""
        if self.sink is None:
            return set()
        return {g.removeprefix("room.") for g in self.sink.groups if g.startswith("room.")}

    async def connect(self) -> None:
        await self.accept()
        qs = parse_qs(self.scope.get("query_string", b"").decode())
        token = (qs.get("token") or [None])[0]
        user_id = (qs.get("user_id") or qs.get("userId") or [None])[0]
        user = await self._user_from_token(user_id, token) if token else await self._user_from_session()
        if user is not None:
            await self._start(user)

    @database_sync_to_async
    def _user_from_token(self, user_id: str | None, token: str | None) -> Any:
        from accounts.authentication import user_for_token

        return user_for_token(user_id, token)

    @database_sync_to_async
    def _user_from_session(self) -> Any:
        from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
        from django.contrib.sessions.backends.db import SessionStore
        from django.utils.crypto import constant_time_compare

        from accounts.models import User

        cookies = {}
        for name, value in self.scope.get("headers", []):
            if name == b"cookie":
                for part in value.decode("latin-1").split(";"):
                    if "=" in part:
                        k, v = part.strip().split("=", 1)
                        cookies[k] = v
        key = cookies.get("sessionid")
        if not key:
            return None
        session = SessionStore(session_key=key)
        uid = session.get(SESSION_KEY)
        if not uid or BACKEND_SESSION_KEY not in session:
            return None
        user = User.objects.filter(pk=uid, is_active=True).first()
        if user is None:
            return None
        if not constant_time_compare(session.get(HASH_SESSION_KEY, ""), user.get_session_auth_hash()):
            return None
        return user

    @database_sync_to_async
    def _joined_room_ids(self) -> list[str]:
        from rooms.models import Membership

        return list(Membership.objects.filter(user=self.user, state=Membership.JOINED)
                    .values_list("room_id", flat=True))

    async def _start(self, user: Any) -> None:
        self.user = user
        self.sink = SocketSink(self.base_send)
        h = hub()
        await h.add(user_group(user.id), self.sink)
        for room_id in await self._joined_room_ids():
            await h.add(room_group(room_id), self.sink)
        # ``ready`` goes first; events published since the groups were joined follow it, in order.
        self.sink.start(json.dumps({"type": "ready", "user": {"_id": user.id, "username": user.username,
                                                              "name": user.display_name},
                                    "rooms": sorted(self.rooms)}))

    async def disconnect(self, code: int) -> None:
        if self.sink is not None:
            await self.sink.stop()

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        if not isinstance(content, dict):
            await self.send_json({"type": "error", "error": "Frames must be JSON objects"})
            return
        kind = content.get("type")
        if self.user is None:
            if kind == "auth":
                user = await self._user_from_token(content.get("user_id") or content.get("userId"),
                                                   content.get("token"))
                if user is not None:
                    await self._start(user)
                    return
            await self.send_json({"type": "error", "error": "You must be logged in to do this."})
            await self.close(code=4001)
            return
        if kind == "ping":
            await self.send_json({"type": "pong"})
        elif kind in ("typing", "read"):
            room_id = content.get("room_id")
            if not isinstance(room_id, str) or room_id not in self.rooms:
                await self.send_json({"type": "error", "error": "Unknown room"})
                return
            await self._room_action(kind, room_id, bool(content.get("typing", True)))
        else:
            await self.send_json({"type": "error", "error": f"Unknown frame type {kind!r}"})

    @database_sync_to_async
    def _room_action(self, kind: str, room_id: str, typing: bool) -> None:
        from rooms.actions.messages import do_mark_read
        from rooms.actions.typing import do_set_typing
        from rooms.models import Room

        room = Room.objects.filter(id=room_id).first()
        if room is None:
            return
        if kind == "typing":
            do_set_typing(self.user, room, typing)
        else:
            do_mark_read(self.user, room)
