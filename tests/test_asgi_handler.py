"""chat.asgi_handler: each request is served whole by one pool thread, at most ``max_threads`` at
once, and every kind of response (plain, streaming, refused before the view) arrives intact.

The handler is driven two ways: through the session's real uvicorn server (``live_url``), and
directly as an ASGI application with a bounded pool, from a thread of its own (the web tests keep an
event loop running in the main thread).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from django.core import signals

from chat.asgi_handler import PooledThreadASGIHandler

STATIC_FILE = Path(__file__).resolve().parent.parent / "static" / "app" / "room.js"


def _scope(path: str, method: str = "GET", headers: list[tuple[bytes, bytes]] | None = None) -> dict[str, Any]:
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
            "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
            "root_path": "", "headers": headers or [(b"host", b"testserver")],
            "client": ("127.0.0.1", 40000), "server": ("127.0.0.1", 80)}


def _call(app: PooledThreadASGIHandler, requests_: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Run the requests concurrently on a fresh loop in a thread; each one's status, body and when
    it ended. A request is ``{"scope", "body"}`` plus, optionally, ``"after"`` (seconds to wait
    before sending it), ``"slow"`` (seconds each ``send`` takes: a slow reader) and ``"leave_after"``
    (the client disconnects once it has that many body messages)."""
    results: list[dict[str, Any]] = []

    async def one(req: dict[str, Any]) -> dict[str, Any]:
        sent: list[dict[str, Any]] = []
        delivered = False
        leave = asyncio.Event()
        await asyncio.sleep(req.get("after", 0))

        async def receive() -> dict[str, Any]:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": req.get("body", b""), "more_body": False}
            await leave.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            await asyncio.sleep(req.get("slow", 0))
            sent.append(message)
            if len(sent) - 1 >= req.get("leave_after", 1 << 30):
                leave.set()

        await app(req["scope"], receive, send)
        start = sent[0]
        return {"status": start["status"], "headers": dict(start["headers"]),
                "body": b"".join(m.get("body", b"") for m in sent[1:]), "ended": time.monotonic(),
                "body_messages": len(sent) - 1, "last_more_body": sent[-1].get("more_body", False)}

    async def main() -> None:
        results.extend(await asyncio.gather(*(one(r) for r in requests_)))

    worker = threading.Thread(target=lambda: asyncio.run(main()))
    worker.start()
    worker.join(60)
    assert not worker.is_alive()
    return results


@pytest.fixture
def make_app() -> Iterator[Any]:
    """Handlers with a pool of the given size, their threads stopped after the test."""
    apps: list[PooledThreadASGIHandler] = []

    def make(max_threads: int, chunk_size: int = 2 ** 16) -> PooledThreadASGIHandler:
        app = PooledThreadASGIHandler(max_threads=max_threads)
        app.chunk_size = chunk_size  # type: ignore[misc]
        apps.append(app)
        return app
    yield make
    for app in apps:
        app._executor.shutdown(wait=True)


@pytest.fixture
def request_log() -> Iterator[list[tuple[str, str]]]:
    """(signal, thread name) for every request_started / request_finished while the test runs."""
    log: list[tuple[str, str]] = []
    lock = threading.Lock()

    def started(**kwargs: Any) -> None:
        with lock:
            log.append(("started", threading.current_thread().name))

    def finished(**kwargs: Any) -> None:
        with lock:
            log.append(("finished", threading.current_thread().name))

    signals.request_started.connect(started, dispatch_uid="test-asgi-started")
    signals.request_finished.connect(finished, dispatch_uid="test-asgi-finished")
    yield log
    signals.request_started.disconnect(dispatch_uid="test-asgi-started")
    signals.request_finished.disconnect(dispatch_uid="test-asgi-finished")


def test_a_request_starts_and_finishes_on_one_pool_thread(live_url: str, request_log: list[tuple[str, str]]) -> None:
    for _ in range(3):
        r = requests.get(f"{live_url}/health", timeout=10)
        assert (r.status_code, r.json()) == (200, {"status": "ok"})
    assert [s for s, _ in request_log] == ["started", "finished"] * 3
    for i in range(0, 6, 2):
        assert request_log[i][1] == request_log[i + 1][1]
        assert request_log[i][1].startswith("http")


def test_api_errors_and_json_bodies_arrive_whole(live_url: str) -> None:
    r = requests.post(f"{live_url}/api/v1/login", json={"user": "nobody", "password": "wrong"}, timeout=10)
    assert r.status_code == 401
    assert r.json()["status"] == "error"
    r = requests.get(f"{live_url}/api/v1/me", timeout=10)
    assert r.status_code == 401 and r.json()["success"] is False


def test_a_download_through_the_server_arrives_whole(live_url: str, request_log: list[tuple[str, str]],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    expected = STATIC_FILE.read_bytes()
    monkeypatch.setattr(PooledThreadASGIHandler, "chunk_size", 4096)  # several chunks through the loop's send
    r = requests.get(f"{live_url}/static/app/room.js", timeout=10)
    assert r.status_code == 200
    assert len(expected) > 3 * 4096
    assert r.content == expected
    deadline = time.time() + 10  # the response is closed after the last chunk is taken
    while len(request_log) < 2 and time.time() < deadline:
        time.sleep(0.01)
    assert [s for s, _ in request_log] == ["started", "finished"]
    assert request_log[0][1].startswith("http_") and request_log[1][1].startswith("http-stream")


def test_requests_beyond_the_pool_wait_for_a_thread(db: None, request_log: list[tuple[str, str]],
                                                    make_app: Any) -> None:
    app = make_app(2)
    running = 0
    most = 0
    lock = threading.Lock()

    def slow(**kwargs: Any) -> None:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.2)
        with lock:
            running -= 1

    signals.request_started.connect(slow, dispatch_uid="test-asgi-slow")
    try:
        results = _call(app, [{"scope": _scope("/health")} for _ in range(6)])
    finally:
        signals.request_started.disconnect(dispatch_uid="test-asgi-slow")
    assert [r["status"] for r in results] == [200] * 6
    assert all(r["body"] == b'{"status": "ok"}' for r in results)
    assert most == 2
    threads = {name for _, name in request_log}
    assert len(threads) == 2
    assert "/health" in app._resolutions._answers  # resolved once, then remembered


def test_a_request_refused_before_the_view_gets_its_answer(db: None, make_app: Any,
                                                          request_log: list[tuple[str, str]]) -> None:
    app = make_app(1)
    bad_query = _scope("/health")
    bad_query["query_string"] = b"q=\xff"  # not UTF-8: Django cannot build the request
    [bad, good] = _call(app, [{"scope": bad_query}, {"scope": _scope("/health"), "after": 0.05}])
    assert bad["status"] == 400
    assert [s for s, _ in request_log] == ["started", "finished"] * 2
    assert (good["status"], good["body"]) == (200, b'{"status": "ok"}')  # the thread goes on serving


def test_a_streaming_response_goes_out_chunk_by_chunk(db: None, make_app: Any,
                                                      request_log: list[tuple[str, str]]) -> None:
    app = make_app(1, chunk_size=4096)
    [r] = _call(app, [{"scope": _scope("/static/app/room.js")}])
    expected = STATIC_FILE.read_bytes()
    assert (r["status"], r["body"]) == (200, expected)
    assert r["body_messages"] == -(-len(expected) // 4096) + 1  # the chunks, then the closing message
    assert r["last_more_body"] is False
    assert [s for s, _ in request_log] == ["started", "finished"]
    assert request_log[0][1].startswith("http_") and request_log[1][1].startswith("http-stream")


def test_a_slow_download_does_not_hold_a_pool_thread(db: None, make_app: Any) -> None:
    app = make_app(1, chunk_size=4096)  # one thread: a download holding it would hold up everything
    download, health = _call(app, [{"scope": _scope("/static/app/room.js"), "slow": 0.1},
                                   {"scope": _scope("/health"), "after": 0.2}])
    assert download["body"] == STATIC_FILE.read_bytes()
    assert health["status"] == 200
    assert health["ended"] < download["ended"]  # answered while the download was still going out


def test_a_download_stops_being_read_when_the_client_goes_away(db: None, make_app: Any,
                                                               request_log: list[tuple[str, str]]) -> None:
    app = make_app(1, chunk_size=1024)
    [r] = _call(app, [{"scope": _scope("/static/app/room.js"), "leave_after": 2, "slow": 0.01}])
    chunks = -(-len(STATIC_FILE.read_bytes()) // 1024)
    assert chunks > 20
    assert 2 <= r["body_messages"] <= 4  # what was in flight when it left, no more
    assert [s for s, _ in request_log] == ["started", "finished"]  # the file was closed all the same
