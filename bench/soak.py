"""Soak: mixed load for ``--minutes`` (default 30) against Concord in production shape and a Synapse.

Concord runs as in production (uvicorn over TLS, a Celery worker with its prefork children and
Celery beat, on PostgreSQL + Redis); Synapse from the test harness, on loopback, sharing a
federated channel with Concord. For the whole run, at once:

* ``--posters`` REST clients post into the channel (``chat.postMessage``, ``--rate`` messages/s in
  all), and one more reads its history every second;
* ``--listeners`` WebSocket clients receive its ``message.new`` events;
* a Synapse user sends a message every ``--synapse-interval`` seconds (federation in), while every
  Concord message crosses to Synapse (federation out).

Every 30 s it samples each Concord process's RSS and PSS. At the end it waits for delivery and
prints, then checks: every message exists exactly once, in its sender's order, on both servers;
every listener saw every message (a listener that was dropped reconnects and catches up over
``channels.history``, as clients do); no ``ERROR`` or traceback in Concord's logs; and each
process's PSS grew by less than 10% from the first sample after warm-up (``--warmup`` minutes,
default 2) to the last. The exit code is 1 when a check fails. This is a benchmark run, not a
test: ``make soak`` runs it; ``bench/README.md`` records its figures.

    .venv/bin/python -m bench.soak [--minutes 30] [--rate 4] [--posters 3] [--listeners 10]
        [--database-url postgres://postgres@127.0.0.1:5432/concord_soak] [--redis-url redis://127.0.0.1:6379/4]
"""

from __future__ import annotations

import argparse
import json
import os
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

from bench.federation_bench import ROOT, Concord, _concord_api, concord_user, prepare_database, wait_until
from tests.federation.synapse_harness import SynapseServer, make_ca


def pss_rss_mb(pid: int) -> tuple[float, float]:
    """(PSS, RSS) of one process in MB, from /proc/<pid>/smaps_rollup (0, 0 when it is gone)."""
    pss = rss = 0.0
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                pss = int(line.split()[1]) / 1024
            elif line.startswith("Rss:"):
                rss = int(line.split()[1]) / 1024
    except OSError:
        pass
    return pss, rss


class Beat:
    """Celery beat beside the bench's web and worker, as the Procfile runs it."""

    def __init__(self, concord: Concord) -> None:
        self.proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "celery"), "-A", "chat", "beat", "--loglevel", "WARNING",
             "--schedule", str(concord.workdir / "celerybeat-schedule")],
            cwd=ROOT, env=concord.env, stdout=open(concord.workdir / "concord.log", "ab"), stderr=subprocess.STDOUT)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=20)


def processes(concord: Concord, beat: Beat) -> dict[str, int]:
    import psutil

    out: dict[str, int] = {}
    for label, proc in (("web", concord.web), ("worker", concord.worker), ("beat", beat.proc)):
        if proc is not None and proc.poll() is None:
            out[label] = proc.pid
            for i, child in enumerate(psutil.Process(proc.pid).children(recursive=True)):
                out[f"{label} child {i + 1}"] = child.pid
    return out


class Listener(threading.Thread):
    """A WebSocket client counting the room's ``message.new`` texts; after a drop it reconnects and
    fetches what it missed with ``channels.history`` (``oldest``: the last message it saw)."""

    def __init__(self, base_url: str, ca: Path, api: Any, room_id: str, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.url = base_url.replace("https://", "wss://") + "/websocket"
        self.ca, self.api, self.room_id, self.stop_event = ca, api, room_id, stop
        self.seen: set[str] = set()
        self.duplicates = 0  # live frames of a message already seen
        self.last_ts = ""
        self.reconnects = 0

    def _note(self, msg: dict[str, Any]) -> None:
        self.seen.add(msg["_id"])
        self.last_ts = max(self.last_ts, msg["ts"])

    def _catch_up(self) -> None:
        if not self.last_ts:
            return
        while True:
            page = self.api.get("channels.history", roomId=self.room_id, oldest=self.last_ts, count=100)
            msgs = [m for m in page.get("messages", []) if m["_id"] not in self.seen and not m.get("t")]
            for m in msgs:
                self._note(m)
            if len(page.get("messages", [])) < 100:
                return

    def run(self) -> None:
        from websockets.sync.client import connect

        ctx = ssl.create_default_context(cafile=str(self.ca))
        headers = self.api.s.headers
        query = f"?token={headers['X-Auth-Token']}&user_id={headers['X-User-Id']}"
        while not self.stop_event.is_set():
            try:
                with connect(self.url + query, ssl=ctx, open_timeout=10, max_size=None) as ws:
                    ready = json.loads(ws.recv(timeout=10))
                    if ready.get("type") != "ready":
                        raise RuntimeError(f"no ready frame: {ready}")
                    self._catch_up()
                    while not self.stop_event.is_set():
                        try:
                            frame = json.loads(ws.recv(timeout=1))
                        except TimeoutError:
                            continue
                        if frame.get("type") == "message.new" and frame.get("room_id") == self.room_id \
                                and not frame["data"].get("t"):
                            if frame["data"]["_id"] in self.seen:
                                self.duplicates += 1
                            self._note(frame["data"])
            except Exception:  # dropped: reconnect and catch up, as the web client does
                if self.stop_event.is_set():
                    return
                self.reconnects += 1
                time.sleep(1)


def synapse_texts(synapse: SynapseServer, ca_cert: Path, token: str, room_id: str) -> list[str]:
    """Every ``m.room.message`` body of the room in Synapse, oldest first (paged client API)."""
    import requests

    s = requests.Session()
    s.trust_env = False
    s.verify = str(ca_cert)
    s.headers["Authorization"] = f"Bearer {token}"
    out: list[str] = []
    since = None
    while True:
        params: dict[str, Any] = {"dir": "b", "limit": 1000}
        if since:
            params["from"] = since
        r = s.get(f"{synapse.base_url}/_matrix/client/v3/rooms/{quote(room_id, safe='')}/messages",
                  params=params, timeout=60)
        r.raise_for_status()
        data = r.json()
        out.extend(e["content"].get("body", "") for e in data.get("chunk", []) if e.get("type") == "m.room.message")
        if not data.get("chunk") or not data.get("end"):
            return out[::-1]
        since = data["end"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--warmup", type=float, default=2, help="minutes before the memory baseline")
    parser.add_argument("--rate", type=float, default=4, help="Concord messages per second, all posters together")
    parser.add_argument("--posters", type=int, default=3)
    parser.add_argument("--listeners", type=int, default=10)
    parser.add_argument("--synapse-interval", type=float, default=1.0)
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/concord_soak")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/4")
    args = parser.parse_args()

    from tests.federation.rooms_helpers import SynapseUser

    workdir = Path(tempfile.mkdtemp(prefix="concord-soak-"))
    os.environ.update({
        "DJANGO_SETTINGS_MODULE": "chat.settings", "DATABASE_URL": args.database_url, "REDIS_URL": args.redis_url,
        "CONCORD_REDIS_PREFIX": "concord-soak", "CONCORD_DATA_DIR": str(workdir / "data"),
        "CONCORD_OPEN_REGISTRATION": "0", "CONCORD_LOG_LEVEL": "WARNING",
    })
    (workdir / "data").mkdir()
    ca = make_ca(workdir / "ca")
    concord = Concord(ca, workdir)
    prepare_database(args.database_url)
    users = ["soakowner", *[f"soakposter{i}" for i in range(args.posters)],
             *[f"soaklistener{i}" for i in range(args.listeners)]]
    for name in users:
        concord_user(name, "soak-password")
    synapse = SynapseServer(workdir / "synapse", ca)
    beat: Beat | None = None
    stop = threading.Event()  # listeners
    traffic_over = threading.Event()  # posters, reader, Synapse sender
    failures: list[str] = []
    try:
        concord.start()
        beat = Beat(concord)
        synapse.start()
        owner = _concord_api(concord.base_url, ca, "soakowner", "soak-password")
        rid = owner.post("channels.create", name="soak", members=users[1:])["channel"]["_id"]
        alias = owner.post("rooms.federation", roomId=rid)["federation"]["alias"]
        sam = SynapseUser(synapse, f"soaksam{int(time.time())}")
        matrix_room = sam.join(alias).json()["room_id"]
        time.sleep(3)
        apis = [_concord_api(concord.base_url, ca, f"soakposter{i}", "soak-password") for i in range(args.posters)]
        listeners = [Listener(concord.base_url, ca.ca_cert, _concord_api(concord.base_url, ca, f"soaklistener{i}",
                                                                          "soak-password"), rid, stop)
                     for i in range(args.listeners)]
        for listener in listeners:
            listener.start()
        time.sleep(2)

        posted: dict[int, list[str]] = {i: [] for i in range(args.posters)}
        synapse_sent: list[str] = []
        errors = {"post": 0, "read": 0, "synapse": 0}

        def poster(i: int) -> None:
            interval = args.posters / args.rate
            n = 0
            while not traffic_over.is_set():
                text = f"soak c{i} #{n}"
                try:
                    if apis[i].post("chat.postMessage", roomId=rid, text=text).get("success"):
                        posted[i].append(text)
                        n += 1
                    else:
                        errors["post"] += 1
                except Exception:
                    errors["post"] += 1
                time.sleep(interval)

        def reader() -> None:
            while not traffic_over.is_set():
                try:
                    owner.get("channels.history", roomId=rid, count=50)
                except Exception:
                    errors["read"] += 1
                time.sleep(1)

        def remote() -> None:
            n = 0
            while not traffic_over.is_set():
                text = f"soak s #{n}"
                try:
                    sam.send(matrix_room, text)
                    synapse_sent.append(text)
                    n += 1
                except Exception:
                    errors["synapse"] += 1
                time.sleep(args.synapse_interval)

        threads = [threading.Thread(target=poster, args=(i,), daemon=True) for i in range(args.posters)]
        threads += [threading.Thread(target=reader, daemon=True), threading.Thread(target=remote, daemon=True)]
        for t in threads:
            t.start()
        started = time.time()
        samples: list[tuple[float, dict[str, tuple[float, float]]]] = []
        while time.time() - started < args.minutes * 60:
            samples.append((time.time() - started, {k: pss_rss_mb(p) for k, p in processes(concord, beat).items()}))
            last = samples[-1][1]
            total_pss = sum(v[0] for v in last.values())
            print(f"{samples[-1][0] / 60:5.1f} min: {sum(len(v) for v in posted.values())} posted, "
                  f"{len(synapse_sent)} from Synapse, PSS {total_pss:.0f} MB, errors {errors}", flush=True)
            time.sleep(min(30.0, max(0.0, args.minutes * 60 - (time.time() - started))))
        samples.append((time.time() - started, {k: pss_rss_mb(p) for k, p in processes(concord, beat).items()}))
        traffic_over.set()
        for t in threads:
            t.join(timeout=30)

        # Delivery: everything on both servers, exactly once, in each sender's order.
        import django

        django.setup()
        from rooms.models import Message

        concord_expected = [t for i in range(args.posters) for t in posted[i]]
        everything = set(concord_expected) | set(synapse_sent)

        def concord_texts() -> list[str]:
            return list(Message.objects.filter(room_id=rid, type="").order_by("created_at", "id")
                        .values_list("text", flat=True))

        def in_synapse() -> list[str]:
            return synapse_texts(synapse, ca.ca_cert, sam.token, matrix_room)

        try:
            wait_until(lambda: everything <= set(concord_texts()), 300, "every message in Concord")
            wait_until(lambda: set(concord_expected) <= set(in_synapse()), 300, "every Concord message in Synapse")
        except Exception as exc:
            failures.append(str(exc))
        for label, texts in (("Concord", concord_texts()), ("Synapse", in_synapse())):
            mine = [t for t in texts if t in everything]
            if len(mine) != len(set(mine)):
                failures.append(f"{label}: {len(mine) - len(set(mine))} messages twice")
            for i in range(args.posters):
                order = [t for t in mine if t.startswith(f"soak c{i} ")]
                if order != [t for t in posted[i] if t in set(order)]:
                    failures.append(f"{label}: poster {i}'s messages out of order")
            order = [t for t in mine if t.startswith("soak s ")]
            if order != [t for t in synapse_sent if t in set(order)]:
                failures.append(f"{label}: Synapse's messages out of order")
        time.sleep(3)
        stop.set()
        total = len(everything)
        for k, listener in enumerate(listeners):
            listener.join(timeout=15)
            if len(listener.seen) < total:
                failures.append(f"listener {k} saw {len(listener.seen)} of {total} messages")
            if listener.duplicates:
                failures.append(f"listener {k} got {listener.duplicates} messages twice")
        log_text = (workdir / "concord.log").read_text(errors="replace")
        bad_lines = [line for line in log_text.splitlines() if "ERROR" in line or "Traceback" in line]
        if bad_lines:
            failures.append(f"{len(bad_lines)} error lines in Concord's log, first: {bad_lines[0][:200]}")

        # Memory: growth of each process from the first sample after warm-up to the last.
        base = next((s for s in samples if s[0] >= args.warmup * 60), samples[0])
        final = samples[-1]
        print(f"\nsoak: {args.minutes} min, {len(concord_expected)} Concord messages ({args.rate}/s), "
              f"{len(synapse_sent)} from Synapse, {args.listeners} listeners "
              f"(reconnects: {sum(x.reconnects for x in listeners)}), client errors {errors}")
        print("process              PSS at warm-up   PSS at end   growth   RSS at end")
        for label, (pss, rss) in sorted(final[1].items()):
            before = base[1].get(label, (0.0, 0.0))[0]
            growth = (pss - before) / before * 100 if before else 0.0
            print(f"{label:20s} {before:10.1f} MB {pss:10.1f} MB {growth:7.1f}% {rss:9.1f} MB")
            if before and growth >= 10:
                failures.append(f"{label}: PSS grew {growth:.1f}%")
        print("load average (1, 5, 15 min): " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))
        print("result: " + ("OK" if not failures else "FAILED\n  " + "\n  ".join(failures)))
        return 0 if not failures else 1
    finally:
        traffic_over.set()
        stop.set()
        if beat is not None:
            beat.stop()
        concord.stop()
        synapse.stop()


if __name__ == "__main__":
    sys.exit(main())
