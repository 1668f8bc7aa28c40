"""Helpers for the rooms-across-servers scenarios: a Concord REST client, a Synapse client-API
client, a Concord user's live WebSocket, an outbox pump standing in for the Celery worker, and
polling."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

import requests
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection
from websockets.sync.client import connect as ws_connect

from tests.federation.synapse_harness import SynapseServer


def wait_for(check: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    """Poll ``check`` until it returns something truthy; fail with ``what`` after ``timeout``."""
    deadline = time.time() + timeout
    last: Any = None
    while time.time() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


class ConcordApi:
    """A logged-in Concord REST client (Rocket.Chat API shapes)."""

    def __init__(self, base_url: str, username: str, password: str = "password123") -> None:
        self.base = base_url.rstrip("/") + "/api/v1/"
        self.s = requests.Session()
        self.s.trust_env = False
        r = self.s.post(self.base + "login", json={"user": username, "password": password}, timeout=30)
        r.raise_for_status()
        data = r.json()["data"]
        self.s.headers.update({"X-Auth-Token": data["authToken"], "X-User-Id": data["userId"]})

    @property
    def headers(self) -> Any:
        """The Rocket.Chat auth headers (``X-Auth-Token``, ``X-User-Id``)."""
        return self.s.headers

    def post(self, method: str, **body: Any) -> dict[str, Any]:
        r = self.s.post(self.base + method, json=body, timeout=90)
        return {"_status": r.status_code, **r.json()}

    def get(self, method: str, **params: Any) -> dict[str, Any]:
        r = self.s.get(self.base + method, params=params, timeout=30)
        return {"_status": r.status_code, **r.json()}


class LiveSocket:
    """A user's live-event WebSocket (``/websocket?token=..&user_id=..``), read from a thread."""

    def __init__(self, conn: ClientConnection) -> None:
        self.conn = conn
        self.events: list[dict[str, Any]] = []
        ready = json.loads(conn.recv(timeout=10))
        assert ready["type"] == "ready", ready
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            for frame in self.conn:
                self.events.append(json.loads(frame))
        except ConnectionClosed:  # closed by the test (or the server); anything else is a failure to see
            pass

    def messages(self, rid: str) -> list[str]:
        return [str(e["data"].get("msg")) for e in list(self.events)
                if e.get("type") == "message.new" and e.get("room_id") == rid]


@contextmanager
def live_socket(base_url: str, client: Any, **kw: Any) -> Iterator[LiveSocket]:
    """The live WebSocket of the user logged in with ``client`` (anything with Rocket.Chat auth
    ``headers``: a ``rocketchat_API`` client or a :class:`ConcordApi` session); ``kw`` go to
    ``websockets`` (e.g. ``ssl``)."""
    headers = client.headers
    url = base_url.replace("https://", "wss://").replace("http://", "ws://") + (
        f"/websocket?token={headers['X-Auth-Token']}&user_id={headers['X-User-Id']}")
    with ws_connect(url, open_timeout=10, **kw) as conn:
        yield LiveSocket(conn)


class SynapseUser:
    """One Synapse user driven through the client-server API."""

    def __init__(self, synapse: SynapseServer, name: str) -> None:
        self.synapse = synapse
        self.token = synapse.register(name, displayname=name.title())
        self.user_id = f"@{name}:{synapse.server_name}"
        self._txn = 0
        self._since = ""
        self._ephemeral: dict[str, list[dict[str, Any]]] = {}

    def _req(self, method: str, path: str, body: Any = None, **params: Any) -> requests.Response:
        return self.synapse.session().request(method, self.synapse.base_url + "/_matrix/client/v3" + path, json=body,
                                              params=params or None, timeout=60,
                                              headers={"Authorization": f"Bearer {self.token}"})

    def create_room(self, **body: Any) -> str:
        r = self._req("POST", "/createRoom", body)
        assert r.status_code == 200, r.text
        return str(r.json()["room_id"])

    def join(self, room: str, via: list[str] | None = None) -> requests.Response:
        return self._req("POST", "/join/" + quote(room, safe=""), {}, **({"server_name": via} if via else {}))

    def leave(self, room_id: str) -> requests.Response:
        return self._req("POST", f"/rooms/{quote(room_id, safe='')}/leave", {})

    def invite(self, room_id: str, user_id: str) -> requests.Response:
        return self._req("POST", f"/rooms/{quote(room_id, safe='')}/invite", {"user_id": user_id})

    def kick(self, room_id: str, user_id: str) -> requests.Response:
        return self._req("POST", f"/rooms/{quote(room_id, safe='')}/kick", {"user_id": user_id})

    def send(self, room_id: str, body: str) -> str:
        self._txn += 1
        r = self._req("PUT", f"/rooms/{quote(room_id, safe='')}/send/m.room.message/t{time.time_ns()}{self._txn}",
                      {"msgtype": "m.text", "body": body})
        assert r.status_code == 200, r.text
        return str(r.json()["event_id"])

    def send_event(self, room_id: str, event_type: str, content: dict[str, Any]) -> str:
        """Any room event (a reaction, an edit, a reply); returns its event ID."""
        self._txn += 1
        r = self._req("PUT", f"/rooms/{quote(room_id, safe='')}/send/{event_type}/t{time.time_ns()}{self._txn}",
                      content)
        assert r.status_code == 200, r.text
        return str(r.json()["event_id"])

    def redact(self, room_id: str, event_id: str) -> str:
        self._txn += 1
        r = self._req("PUT", f"/rooms/{quote(room_id, safe='')}/redact/{quote(event_id, safe='')}"
                             f"/t{time.time_ns()}{self._txn}", {})
        assert r.status_code == 200, r.text
        return str(r.json()["event_id"])

    def set_typing(self, room_id: str, typing: bool) -> None:
        r = self._req("PUT", f"/rooms/{quote(room_id, safe='')}/typing/{quote(self.user_id, safe='')}",
                      {"typing": typing, "timeout": 30000} if typing else {"typing": False})
        assert r.status_code == 200, r.text

    def send_receipt(self, room_id: str, event_id: str) -> None:
        r = self._req("POST", f"/rooms/{quote(room_id, safe='')}/receipt/m.read/{quote(event_id, safe='')}", {})
        assert r.status_code == 200, r.text

    def ephemeral(self, room_id: str) -> list[dict[str, Any]]:
        """The room's ephemeral events (typing, receipts) seen so far, oldest first.

        Incremental syncs from the last ``next_batch``: Synapse caches identical sync requests for a
        while, so repeating an initial sync would keep answering what it answered first.
        """
        params = {"timeout": "0", **({"since": self._since} if self._since else {})}
        r = self._req("GET", "/sync", **params)
        if r.status_code == 200:
            body = r.json()
            self._since = body.get("next_batch", self._since)
            for rid, room in body.get("rooms", {}).get("join", {}).items():
                self._ephemeral.setdefault(rid, []).extend(room.get("ephemeral", {}).get("events", []))
        return list(self._ephemeral.get(room_id, []))

    def upload(self, data: bytes, content_type: str, filename: str) -> str:
        """Upload media to Synapse; returns its ``mxc://`` URI."""
        r = self.synapse.session().post(self.synapse.base_url + "/_matrix/media/v3/upload", data=data,
                                        params={"filename": filename}, timeout=60,
                                        headers={"Authorization": f"Bearer {self.token}", "Content-Type": content_type})
        assert r.status_code == 200, r.text
        return str(r.json()["content_uri"])

    def set_avatar(self, mxc: str) -> None:
        r = self._req("PUT", f"/profile/{quote(self.user_id, safe='')}/avatar_url", {"avatar_url": mxc})
        assert r.status_code == 200, r.text

    def profile(self, user_id: str) -> dict[str, Any]:
        r = self._req("GET", f"/profile/{quote(user_id, safe='')}")
        return dict(r.json()) if r.status_code == 200 else {}

    def download(self, mxc: str, *, thumbnail: bool = False) -> requests.Response:
        """Authenticated client media: Synapse fetches remote media over federation."""
        server, media_id = mxc.removeprefix("mxc://").split("/", 1)
        kind = "thumbnail" if thumbnail else "download"
        params = {"width": "64", "height": "64", "method": "scale"} if thumbnail else None
        return self.synapse.session().get(
            self.synapse.base_url + f"/_matrix/client/v1/media/{kind}/{quote(server, safe='')}/{media_id}",
            params=params, timeout=60, headers={"Authorization": f"Bearer {self.token}"})

    def event(self, room_id: str, event_id: str) -> dict[str, Any] | None:
        r = self._req("GET", f"/rooms/{quote(room_id, safe='')}/event/{quote(event_id, safe='')}")
        return r.json() if r.status_code == 200 else None

    def put_state(self, room_id: str, event_type: str, content: dict[str, Any], state_key: str = "") -> None:
        r = self._req("PUT", f"/rooms/{quote(room_id, safe='')}/state/{event_type}/{quote(state_key, safe='')}",
                      content)
        assert r.status_code == 200, r.text

    def state(self, room_id: str, event_type: str, state_key: str = "") -> dict[str, Any] | None:
        r = self._req("GET", f"/rooms/{quote(room_id, safe='')}/state/{event_type}/{quote(state_key, safe='')}")
        return r.json() if r.status_code == 200 else None

    def messages(self, room_id: str) -> list[dict[str, Any]]:
        r = self._req("GET", f"/rooms/{quote(room_id, safe='')}/messages", dir="b", limit="100")
        if r.status_code != 200:
            return []
        return list(reversed(r.json().get("chunk", [])))

    def texts(self, room_id: str) -> list[str]:
        return [e["content"].get("body", "") for e in self.messages(room_id) if e.get("type") == "m.room.message"]

    def membership(self, room_id: str, user_id: str) -> str | None:
        st = self.state(room_id, "m.room.member", user_id)
        return st.get("membership") if st else None

    def invited_rooms(self) -> list[str]:
        r = self._req("GET", "/sync", timeout="0")
        return list(r.json().get("rooms", {}).get("invite", {}).keys()) if r.status_code == 200 else []


class OutboxPump(threading.Thread):
    """Stands in for the Celery worker: sends whatever is due and fetches remote files that are
    due (the tasks' own functions), every 100 ms."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.stopped = threading.Event()

    def run(self) -> None:
        from django.db import close_old_connections

        from federation.bridge.remote_media import process_pending_media
        from federation.handlers.sender import send_pending
        from federation.store.outbox import due_destinations

        while not self.stopped.is_set():
            try:
                for server in due_destinations():
                    send_pending(server)
                process_pending_media()
            except Exception:  # a test database being torn down, a peer going away: try again
                pass
            finally:
                close_old_connections()
            self.stopped.wait(0.1)

    def stop(self) -> None:
        self.stopped.set()
        self.join(timeout=10)
