"""Chat benchmark: N REST clients post into one channel while M WebSocket listeners receive.

Starts a real Concord (uvicorn with ``--workers W``) on PostgreSQL + Redis, creates the users and the
room through the real actions, connects M listeners to ``/websocket`` (in ``--listener-procs``
separate processes, so that decoding their frames does not slow the posting clients), then has N
concurrent clients post ``--messages`` messages in total through ``POST /api/v1/chat.postMessage``.
It prints:

* messages/s accepted by the REST API (first request to last answer);
* delivery latency from the moment a client sent the request to the moment a listener received the
  ``message.new`` frame, p50 / p99 / max over every (message, listener) pair;
* how many deliveries were missing (should be 0), and the machine's load average.

``--profile N`` instead posts N messages in-process through Django's test client and prints the CPU
milliseconds and SQL queries per request: figures that do not depend on the machine's load.

Usage::

    .venv/bin/python -m bench.chat_bench [--clients 20] [--listeners 50] [--messages 3000] [--workers 2]
        [--listener-procs 1] [--database-url postgres://postgres@127.0.0.1:5432/concord_bench]
        [--redis-url redis://127.0.0.1:6379/5]
    .venv/bin/python -m bench.chat_bench --profile 500 [--show-queries] [--pyinstrument]

``--database-url sqlite:////tmp/concord-bench.sqlite3`` runs it on SQLite (the embedded default);
the database is flushed first either way. The server inherits the environment, so settings such as
``CONCORD_DB_SYNCHRONOUS_COMMIT=off`` or ``CONCORD_DB_POOL_SIZE`` can be compared.

This is a benchmark, not a test: it asserts nothing about speed. See bench/README.md ("Chat").
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _prepare(args: argparse.Namespace) -> tuple[str, list[tuple[str, str]], list[tuple[str, str]]]:
    """Migrate a clean bench database and create users, tokens and the room. Returns (room, posters, listeners)."""
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    call_command("flush", "--noinput", verbosity=0)
    from django.contrib.auth.hashers import make_password

    from accounts.actions import do_login
    from accounts.defaults import ensure_default_roles_and_permissions
    from accounts.models import Role, User
    from rooms.actions.memberships import do_add_member
    from rooms.actions.rooms import do_create_room

    ensure_default_roles_and_permissions()
    user_role = Role.objects.get(id="user")
    password = make_password("bench-password")
    users = []
    for i in range(args.clients + args.listeners):
        u = User.objects.create(username=f"bench{i}", email=f"bench{i}@example.test", password=password)
        u.roles.add(user_role)
        users.append(u)
    room = do_create_room(users[0], "c", "bench")
    for u in users[1:]:
        do_add_member(room, u, system_message=False)
    tokens = [(u.id, do_login(u)) for u in users]
    return room.id, tokens[: args.clients], tokens[args.clients:]


_MSG_MARK = '"msg":"bench '


def _bench_index(raw: str | bytes) -> int | None:
    """The ``i`` of a ``message.new`` frame for ``bench i``, found without decoding the whole frame.

    Events are compact JSON made once by the server; a frame without the compact marker is decoded
    the slow way, so a change of encoding costs speed here, never correctness.
    """
    if isinstance(raw, bytes):
        raw = raw.decode()
    if '"message.new"' not in raw:
        return None
    at = raw.find(_MSG_MARK)
    if at >= 0:
        end = raw.find('"', at + len(_MSG_MARK))
        digits = raw[at + len(_MSG_MARK):end]
        if digits.isdigit():
            return int(digits)
    frame = json.loads(raw)
    text = frame.get("data", {}).get("msg", "") if frame.get("type") == "message.new" else ""
    return int(text[6:]) if text.startswith("bench ") and text[6:].isdigit() else None


async def _listen(url: str, uid: str, token: str, received: list[tuple[int, float]], ready: list[int],
                  all_ready: asyncio.Event, total: int) -> None:
    import websockets

    async with websockets.connect(f"{url}/websocket?token={token}&user_id={uid}", max_size=2**22,
                                  compression=None) as ws:
        async for raw in ws:
            i = _bench_index(raw)
            if i is not None:
                received.append((i, time.time()))
            elif '"ready"' in raw and json.loads(raw).get("type") == "ready":
                ready[0] += 1
                if ready[0] == total:
                    all_ready.set()


def _listener_process(ws_base: str, listeners: list[tuple[str, str]], conn: Any) -> None:
    """Child process: hold the WebSocket listeners, report ``ready``, then the receive times.

    Runs apart from the posters so that decoding tens of thousands of frames per second does not
    slow the clients down (each process has its own interpreter lock and event loop). After the
    parent sends ``("done", expected)``, it waits until every listener got its ``expected``
    deliveries or 10 s pass, and sends back, per listener, ``[(message index, receive time), ...]``.
    """
    async def main() -> None:
        received: list[list[tuple[int, float]]] = [[] for _ in listeners]
        ready = [0]
        all_ready = asyncio.Event()
        tasks = [asyncio.create_task(_listen(ws_base, uid, tok, received[k], ready, all_ready, len(listeners)))
                 for k, (uid, tok) in enumerate(listeners)]
        try:
            await asyncio.wait_for(all_ready.wait(), timeout=60)
        except TimeoutError:
            conn.send(("error", f"{ready[0]} of {len(listeners)} listeners ready"))
            return
        conn.send(("ready", None))
        loop = asyncio.get_running_loop()
        _kind, expected = await loop.run_in_executor(None, conn.recv)
        deadline = time.time() + 10
        while time.time() < deadline and any(len(r) < expected for r in received):
            await asyncio.sleep(0.05)
        for t in tasks:
            t.cancel()
        conn.send(("results", received))

    asyncio.run(main())


def _tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and its descendants (from /proc; 0 where unreadable)."""
    tick = os.sysconf("SC_CLK_TCK")
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
            for task in Path(f"/proc/{p}/task").iterdir():
                todo.extend(int(c) for c in (task / "children").read_text().split())
        except (OSError, ValueError, IndexError):
            continue
    return total


async def _run(args: argparse.Namespace, base: str, room_id: str, posters: list[tuple[str, str]],
               listeners: list[tuple[str, str]], server_pid: int = 0) -> None:
    import multiprocessing

    import aiohttp

    ws_base = base.replace("http://", "ws://")
    ctx = multiprocessing.get_context("spawn")
    procs = max(0, min(args.listener_procs, len(listeners)))
    children = []
    for p in range(procs):
        parent_end, child_end = ctx.Pipe()
        proc = ctx.Process(target=_listener_process, args=(ws_base, listeners[p::procs], child_end), daemon=True)
        proc.start()
        children.append((proc, parent_end))
    loop = asyncio.get_running_loop()
    for _proc, pipe in children:
        kind, detail = await loop.run_in_executor(None, pipe.recv)
        if kind != "ready":
            raise RuntimeError(f"listeners did not start: {detail}")
    sent_at = [0.0] * args.messages
    errors = [0]
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(args.messages):
        queue.put_nowait(i)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def poster(uid: str, token: str) -> None:
            headers = {"X-User-Id": uid, "X-Auth-Token": token, "Content-Type": "application/json"}
            while True:
                try:
                    i = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                body = json.dumps({"roomId": room_id, "text": f"bench {i}"})
                sent_at[i] = time.time()
                async with session.post(f"{base}/api/v1/chat.postMessage", data=body, headers=headers) as resp:
                    if resp.status != 200:
                        errors[0] += 1
                    await resp.read()

        start = time.time()
        cpu_before = _tree_cpu_seconds(server_pid) if server_pid else 0.0
        await asyncio.gather(*(poster(uid, tok) for uid, tok in posters))
        elapsed = time.time() - start
    per_listener: list[list[tuple[int, float]]] = []
    for _proc, pipe in children:
        pipe.send(("done", args.messages))
    for proc, pipe in children:
        _kind, received = await loop.run_in_executor(None, pipe.recv)
        per_listener.extend(received)
        proc.join(timeout=10)
    server_cpu = _tree_cpu_seconds(server_pid) - cpu_before if server_pid else 0.0
    latencies = [(recv - sent_at[i]) * 1000 for r in per_listener for i, recv in r if 0 <= i < args.messages]
    missing = args.messages * len(listeners) - len(latencies)
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(len(latencies) * p))] if latencies else float("nan")

    print(f"clients={args.clients} listeners={args.listeners} messages={args.messages} workers={args.workers} "
          f"listener processes={procs}")
    print(f"posted: {args.messages - errors[0]} ok, {errors[0]} errors in {elapsed:.2f} s "
          f"-> {args.messages / elapsed:.0f} messages/s")
    print(f"delivery latency over {len(latencies)} deliveries: p50 {pct(0.50):.1f} ms, p99 {pct(0.99):.1f} ms, "
          f"max {latencies[-1] if latencies else 0:.1f} ms, "
          f"mean {statistics.fmean(latencies) if latencies else 0:.1f} ms")
    print(f"missing deliveries: {missing}")
    if server_pid:
        # Load-independent: what the server processes spent, posting and fanning out, per message.
        print(f"server CPU: {server_cpu:.2f} s -> {server_cpu * 1000 / args.messages:.2f} ms per message "
              f"(its post and {len(listeners)} deliveries)")
    print("load average (1, 5, 15 min): " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))


def _profile(args: argparse.Namespace, room_id: str, posters: list[tuple[str, str]]) -> None:
    """In-process figures that do not depend on machine load: queries and CPU ms per ``chat.postMessage``.

    Posts ``--profile`` messages through Django's test client (the full middleware and DRF stack,
    without the ASGI server or the network) and prints the median CPU time (``time.process_time``)
    and the number of SQL queries per request; with ``--pyinstrument`` also a call-tree profile.
    """
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client()
    uid, token = posters[0]
    headers = {"HTTP_X_USER_ID": uid, "HTTP_X_AUTH_TOKEN": token}
    body = {"roomId": room_id, "text": "profile"}

    def post(i: int) -> None:
        resp = client.post("/api/v1/chat.postMessage", data={**body, "text": f"profile {i}"},
                           content_type="application/json", **headers)
        if resp.status_code != 200:
            raise RuntimeError(f"chat.postMessage answered {resp.status_code}: {resp.content[:200]!r}")

    for i in range(20):  # warm up imports, the connection pool and caches
        post(i)
    cpu: list[float] = []
    queries: list[int] = []
    for i in range(args.profile):
        with CaptureQueriesContext(connection) as ctx:
            t0 = time.process_time()
            post(i)
            cpu.append((time.process_time() - t0) * 1000)
        queries.append(len(ctx.captured_queries))
    print(f"chat.postMessage in-process over {args.profile} requests: CPU median {statistics.median(cpu):.2f} ms, "
          f"mean {statistics.fmean(cpu):.2f} ms; queries per request {statistics.median(queries):.0f} "
          f"(min {min(queries)}, max {max(queries)})")
    if args.show_queries:
        for q in ctx.captured_queries:
            print("  ", q["sql"][:300])
    if args.pyinstrument:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.0002)
        profiler.start()
        for i in range(args.profile):
            post(i)
        profiler.stop()
        print(profiler.output_text(unicode=True, color=False, show_all=False))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--listeners", type=int, default=50)
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--listener-procs", type=int, default=1,
                        help="processes holding the WebSocket listeners (apart from the posting clients)")
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL",
                                                                 "postgres://postgres@127.0.0.1:5432/concord_bench"))
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/5"))
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="instead of the benchmark, post N messages in-process and print CPU ms and queries "
                             "per request (load-independent figures)")
    parser.add_argument("--show-queries", action="store_true", help="with --profile: print the last request's SQL")
    parser.add_argument("--pyinstrument", action="store_true", help="with --profile: print a pyinstrument profile")
    args = parser.parse_args()

    os.environ["DJANGO_SETTINGS_MODULE"] = "chat.settings"
    os.environ["DATABASE_URL"] = args.database_url
    os.environ["REDIS_URL"] = args.redis_url
    os.environ["CONCORD_REDIS_PREFIX"] = "concord-bench"
    os.environ.setdefault("CONCORD_DB_POOL_SIZE", "16")
    os.environ.setdefault("CONCORD_RATE_LIMITS", "off")  # the bench measures throughput, not the limits
    os.environ.setdefault("CONCORD_DATA_DIR", str(ROOT / "data" / "bench"))
    _ensure_database(args.database_url)
    room_id, posters, listeners = _prepare(args)
    if args.profile:
        _profile(args, room_id, posters)
        return 0
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "chat.asgi:application", "--host", "127.0.0.1", "--port", str(port),
         "--workers", str(args.workers), "--log-level", "warning", "--no-access-log", "--ws", "websockets-sansio",
         *os.environ.get("BENCH_UVICORN_ARGS", "").split()],
        cwd=ROOT, env=os.environ.copy())
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.time() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if time.time() > deadline or server.poll() is not None:
                    raise RuntimeError("the bench server did not start") from None
                time.sleep(0.1)
        asyncio.run(_run(args, base, room_id, posters, listeners, server.pid))
    finally:
        server.terminate()
        server.wait(timeout=20)
    return 0


def _ensure_database(url: str) -> None:
    """Create the PostgreSQL bench database when missing (SQLite needs nothing)."""
    if not url.startswith("postgres"):
        return
    import psycopg

    name = url.rsplit("/", 1)[1].split("?")[0]
    admin_url = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')


if __name__ == "__main__":
    sys.exit(main())
