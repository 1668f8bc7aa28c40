"""Chat benchmark: N REST clients post into one channel while M WebSocket listeners receive.

Starts a real Concord (uvicorn with ``--workers W``) on PostgreSQL + Redis, creates the users and the
room through the real actions, connects M listeners to ``/websocket``, then has N concurrent clients
post ``--messages`` messages in total through ``POST /api/v1/chat.postMessage``. It prints:

* messages/s accepted by the REST API (first request to last answer);
* delivery latency from the moment a client sent the request to the moment a listener received the
  ``message.new`` frame, p50 / p99 / max over every (message, listener) pair;
* how many deliveries were missing (should be 0).

Usage::

    .venv/bin/python -m bench.chat_bench [--clients 20] [--listeners 50] [--messages 3000] [--workers 2]
        [--database-url postgres://postgres@127.0.0.1:5432/concord_bench] [--redis-url redis://127.0.0.1:6379/5]

This is a benchmark, not a test: it asserts nothing about speed.
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


async def _listener(url: str, uid: str, token: str, received: dict[str, float], ready: asyncio.Event,
                    counter: list[int], total: int, done: asyncio.Event) -> None:
    import websockets

    async with websockets.connect(f"{url}/websocket?token={token}&user_id={uid}", max_size=2**22) as ws:
        async for raw in ws:
            frame = json.loads(raw)
            if frame["type"] == "ready":
                counter[0] += 1
                if counter[0] == total:
                    ready.set()
            elif frame["type"] == "message.new" and frame["data"].get("msg", "").startswith("bench "):
                received[frame["data"]["msg"]] = time.time()
            if done.is_set():
                return


async def _run(args: argparse.Namespace, base: str, room_id: str, posters: list[tuple[str, str]],
               listeners: list[tuple[str, str]]) -> None:
    import aiohttp

    ws_base = base.replace("http://", "ws://")
    per_listener: list[dict[str, float]] = [{} for _ in listeners]
    ready = asyncio.Event()
    done = asyncio.Event()
    counter = [0]
    tasks = [asyncio.create_task(_listener(ws_base, uid, tok, per_listener[i], ready, counter, len(listeners), done))
             for i, (uid, tok) in enumerate(listeners)]
    await asyncio.wait_for(ready.wait(), timeout=60)
    sent_at: dict[str, float] = {}
    errors = [0]
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(args.messages):
        queue.put_nowait(i)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def poster(uid: str, token: str) -> None:
            headers = {"X-User-Id": uid, "X-Auth-Token": token}
            while True:
                try:
                    i = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                text = f"bench {i}"
                sent_at[text] = time.time()
                async with session.post(f"{base}/api/v1/chat.postMessage", json={"roomId": room_id, "text": text},
                                        headers=headers) as resp:
                    if resp.status != 200:
                        errors[0] += 1
                    await resp.read()

        start = time.time()
        await asyncio.gather(*(poster(uid, tok) for uid, tok in posters))
        elapsed = time.time() - start
    # Let the last deliveries arrive.
    deadline = time.time() + 10
    while time.time() < deadline and sum(len(r) for r in per_listener) < args.messages * len(listeners):
        await asyncio.sleep(0.1)
    done.set()
    for t in tasks:
        t.cancel()
    latencies = [(recv - sent_at[text]) * 1000 for r in per_listener for text, recv in r.items() if text in sent_at]
    missing = args.messages * len(listeners) - len(latencies)
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(len(latencies) * p))] if latencies else float("nan")

    print(f"clients={args.clients} listeners={args.listeners} messages={args.messages} workers={args.workers}")
    print(f"posted: {args.messages - errors[0]} ok, {errors[0]} errors in {elapsed:.2f} s "
          f"-> {args.messages / elapsed:.0f} messages/s")
    print(f"delivery latency over {len(latencies)} deliveries: p50 {pct(0.50):.1f} ms, p99 {pct(0.99):.1f} ms, "
          f"max {latencies[-1] if latencies else 0:.1f} ms, "
          f"mean {statistics.fmean(latencies) if latencies else 0:.1f} ms")
    print(f"missing deliveries: {missing}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--listeners", type=int, default=50)
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL",
                                                                 "postgres://postgres@127.0.0.1:5432/concord_bench"))
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/5"))
    args = parser.parse_args()

    os.environ["DJANGO_SETTINGS_MODULE"] = "chat.settings"
    os.environ["DATABASE_URL"] = args.database_url
    os.environ["REDIS_URL"] = args.redis_url
    os.environ["CONCORD_REDIS_PREFIX"] = "concord-bench"
    os.environ.setdefault("CONCORD_DB_POOL_SIZE", "16")
    os.environ.setdefault("CONCORD_DATA_DIR", str(ROOT / "data" / "bench"))
    _ensure_database(args.database_url)
    room_id, posters, listeners = _prepare(args)
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "chat.asgi:application", "--host", "127.0.0.1", "--port", str(port),
         "--workers", str(args.workers), "--log-level", "warning", "--no-access-log", "--ws", "websockets-sansio"],
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
        asyncio.run(_run(args, base, room_id, posters, listeners))
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
