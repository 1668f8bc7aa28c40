"""A scriptable remote homeserver for tests: its own signing key, an HTTPS server on loopback that
serves its keys (with a chosen validity) and the events of its rooms, and a room builder that uses
the protocol core (``build_create_event`` / ``build_event``) to make real signed events.

Its rooms can be joined (``make_join`` / ``v2/send_join``, answered from the room's state);
``tamper_send_join`` may rewrite a send_join answer before it goes out (forged events)."""

from __future__ import annotations

import json
import ssl
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

from federation.protocol import (
    CREATE_KEY,
    Event,
    RoomVersion,
    SigningKey,
    StateKey,
    build_create_event,
    build_event,
    get_room_version,
    select_auth_event_ids,
    sign_json,
)
from tests.federation.synapse_harness import TestCA
from tests.servers import free_port


class FakePeer:
    """A remote server named ``127.0.0.1:<port>``."""

    def __init__(self, ca: TestCA, *, key_validity_ms: int = 3600_000) -> None:
        self.port = free_port()
        self.server_name = f"127.0.0.1:{self.port}"
        self.key = SigningKey.generate(f"p{self.port}")
        self.key_validity_ms = key_validity_ms
        self.events: dict[str, Event] = {}
        self.transactions: list[tuple[str, dict[str, Any]]] = []
        self.fail_sends = 0  # answer 500 to this many /send requests
        self.requests: list[str] = []
        self.rooms: dict[str, PeerRoom] = {}
        self.tamper_send_join: Callable[[dict[str, Any]], None] | None = None
        cert, keyfile = ca.issue(f"peer-{self.port}")
        peer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, code: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                peer.requests.append("GET " + self.path)
                url = urlparse(self.path)
                if url.path == "/_matrix/key/v2/server":
                    return self._send(200, peer.key_response())
                if url.path.startswith("/_matrix/federation/v1/event/"):
                    ev = peer.events.get(unquote(url.path.rsplit("/", 1)[1]))
                    if ev is None:
                        return self._send(404, {"errcode": "M_NOT_FOUND"})
                    return self._send(200, {"origin": peer.server_name, "origin_server_ts": 0, "pdus": [ev.pdu]})
                if url.path.startswith("/_matrix/federation/v1/make_join/"):
                    room_id, user_id = (unquote(p) for p in url.path.split("/")[-2:])
                    room = peer.rooms.get(room_id)
                    if room is None:
                        return self._send(404, {"errcode": "M_NOT_FOUND"})
                    if room.rv.identifier not in parse_qs(url.query).get("ver", ["1"]):
                        return self._send(400, {"errcode": "M_INCOMPATIBLE_ROOM_VERSION"})
                    return self._send(200, {"room_version": room.rv.identifier, "event": room.join_template(user_id)})
                return self._send(404, {"errcode": "M_UNRECOGNIZED"})

            def do_PUT(self) -> None:
                peer.requests.append("PUT " + self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                url = urlparse(self.path)
                if url.path.startswith("/_matrix/federation/v1/send/"):
                    if peer.fail_sends > 0:
                        peer.fail_sends -= 1
                        return self._send(500, {"errcode": "M_UNKNOWN"})
                    peer.transactions.append((unquote(url.path.rsplit("/", 1)[1]), body))
                    return self._send(200, {"pdus": {}})
                if url.path.startswith("/_matrix/federation/v2/send_join/"):
                    room = peer.rooms.get(unquote(url.path.split("/")[-2]))
                    if room is None:
                        return self._send(404, {"errcode": "M_NOT_FOUND"})
                    answer = room.accept_join(Event(body, room.rv))
                    if peer.tamper_send_join is not None:
                        peer.tamper_send_join(answer)
                    return self._send(200, answer)
                return self._send(404, {"errcode": "M_UNRECOGNIZED"})

            def do_POST(self) -> None:
                peer.requests.append("POST " + self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                url = urlparse(self.path)
                if url.path.startswith("/_matrix/federation/v1/get_missing_events/"):
                    return self._send(200, {"events": peer.missing_events(body)})
                return self._send(404, {"errcode": "M_UNRECOGNIZED"})

        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(cert), str(keyfile))
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def key_response(self) -> dict[str, Any]:
        body = {"server_name": self.server_name, "valid_until_ts": int(time.time() * 1000) + self.key_validity_ms,
                "verify_keys": {self.key.key_id: {"key": self.key.verify_key.encode()}}, "old_verify_keys": {}}
        return sign_json(body, self.server_name, self.key)

    def missing_events(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        earliest = set(body.get("earliest_events", []))
        out: list[Event] = []
        frontier = list(body.get("latest_events", []))
        seen = set(frontier) | earliest
        while frontier and len(out) < int(body.get("limit", 10)):
            nxt = []
            for eid in frontier:
                ev = self.events.get(eid)
                for p in ev.prev_event_ids if ev else ():
                    if p not in seen and p in self.events:
                        seen.add(p)
                        out.append(self.events[p])
                        nxt.append(p)
            frontier = nxt
        return [e.pdu for e in sorted(out, key=lambda e: e.depth)]

    def user(self, name: str) -> str:
        return f"@{name}:{self.server_name}"


class PeerRoom:
    """A room built by a :class:`FakePeer`: linear history, state tracked."""

    def __init__(self, peer: FakePeer, version: str = "10", creator: str = "alice") -> None:
        self.peer = peer
        self.rv: RoomVersion = get_room_version(version)
        self.creator = peer.user(creator)
        self.ts = int(time.time() * 1000)
        room_id = None if self.rv.room_id_is_create_hash else f"!r{self.ts}:{peer.server_name}"
        self.create = build_create_event(self.rv, sender=self.creator, origin_server_ts=self.ts,
                                         server_name=peer.server_name, signing_key=peer.key, room_id=room_id)
        self.room_id = self.create.room_id
        self.state: dict[StateKey, str] = {CREATE_KEY: self.create.event_id}
        self.last = self.create
        peer.events[self.create.event_id] = self.create
        peer.rooms[self.room_id] = self
        self.timeline: list[Event] = [self.create]

    def send(self, event_type: str, content: dict[str, Any], *, sender: str | None = None,
             state_key: str | None = None, key: SigningKey | None = None, prev: list[Event] | None = None,
             advance: bool = True) -> Event:
        self.ts += 1
        ev = build_event(self.rv, room_id=self.room_id, event_type=event_type, sender=sender or self.creator,
                         content=content, prev_events=prev or [self.last], state=self.state,
                         origin_server_ts=self.ts, server_name=self.peer.server_name,
                         signing_key=key or self.peer.key, state_key=state_key)
        self.peer.events[ev.event_id] = ev
        if advance:
            self.last = ev
            self.timeline.append(ev)
            if state_key is not None:
                self.state[(event_type, state_key)] = ev.event_id
        return ev

    def standard(self) -> list[Event]:
        """create, creator join, power levels, public join rules, shared history."""
        evs = [self.create]
        evs.append(self.send("m.room.member", {"membership": "join"}, state_key=self.creator))
        users = {} if self.rv.room_id_is_create_hash else {self.creator: 100}  # v12: creators are implicit
        evs.append(self.send("m.room.power_levels", {"users": users}, state_key=""))
        evs.append(self.send("m.room.join_rules", {"join_rule": "public"}, state_key=""))
        evs.append(self.send("m.room.history_visibility", {"history_visibility": "shared"}, state_key=""))
        return evs

    def join_template(self, user_id: str) -> dict[str, Any]:
        """A ``make_join`` template on the room's last event."""
        content = {"membership": "join"}
        return {"room_id": self.room_id, "type": "m.room.member", "state_key": user_id, "sender": user_id,
                "content": content, "origin_server_ts": int(time.time() * 1000), "depth": self.last.depth + 1,
                "prev_events": [self.last.event_id],
                "auth_events": select_auth_event_ids(self.rv, "m.room.member", user_id, user_id, content,
                                                     self.state)}

    def accept_join(self, join: Event) -> dict[str, Any]:
        """Append a remote server's join; the ``send_join`` answer: the state before it and its auth chain."""
        before = dict(self.state)
        self.peer.events[join.event_id] = join
        self.last = join
        self.timeline.append(join)
        self.state[(join.type, join.state_key or "")] = join.event_id
        chain: dict[str, None] = {}
        frontier = [*before.values(), join.event_id]
        while frontier:
            nxt = []
            for eid in frontier:
                for a in self.peer.events[eid].auth_event_ids if eid in self.peer.events else ():
                    if a not in chain:
                        chain[a] = None
                        nxt.append(a)
            frontier = nxt
        if self.rv.room_id_is_create_hash:
            chain.setdefault(self.create.event_id, None)
        return {"origin": self.peer.server_name, "event": dict(join.pdu), "members_omitted": False,
                "servers_in_room": [self.peer.server_name],
                "state": [dict(self.peer.events[e].pdu) for e in before.values()],
                "auth_chain": [dict(self.peer.events[e].pdu) for e in chain]}
