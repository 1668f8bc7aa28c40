"""The long run of the federation fuzz campaigns (``tests/federation/test_fuzz_send.py`` and
``tests/federation/test_fuzz_queries.py``): the same properties as in the test suite, with
``--examples`` random examples per campaign instead of the suite's fixed few (each example is one
validly signed request: a mutated transaction, query or membership handshake).

The campaigns run at once, each in its own test process on its own database and Redis db. The
report says how many requests each sent, how long it took and what it found: hypothesis stops a
campaign at its first failing example and prints it, shrunk, which this script repeats; a clean
run prints "no findings". This is a benchmark-style run (``make bench-fuzz``), not part of CI.

    .venv/bin/python -m bench.fuzz_federation [--examples 34000] [--database-url-prefix postgres://postgres@127.0.0.1:5432/concord_fuzz]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CAMPAIGNS = {
    # name: (test node, requests per example)
    "send": ("tests/federation/test_fuzz_send.py::test_mutated_signed_pdus_and_edus_never_break_the_server", 1),
    "queries": ("tests/federation/test_fuzz_queries.py::test_mutated_signed_queries_never_break_the_server", 1),
    "handshakes": ("tests/federation/test_fuzz_queries.py::"
                   "test_mutated_signed_handshakes_never_break_the_server_nor_let_in_a_forgery", 1),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=34_000, help="examples per campaign")
    parser.add_argument("--database-url-prefix", default="postgres://postgres@127.0.0.1:5432/concord_fuzz")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379", help="without a db number")
    parser.add_argument("--first-redis-db", type=int, default=12)
    args = parser.parse_args()

    procs: dict[str, tuple[subprocess.Popen[bytes], Path, float]] = {}
    for i, (name, (node, _)) in enumerate(CAMPAIGNS.items()):
        log = Path(f"/tmp/concord-fuzz-{name}.log")
        env = {**os.environ, "CONCORD_FUZZ_EXAMPLES": str(args.examples),
               "DATABASE_URL": f"{args.database_url_prefix}_{name}",
               "REDIS_URL": f"{args.redis_url}/{args.first_redis_db + i}"}
        proc = subprocess.Popen([sys.executable, "-m", "chat.launcher", "test", "-q", "-p", "no:cacheprovider",
                                 "--hypothesis-show-statistics", node], cwd=ROOT, env=env,
                                stdout=log.open("wb"), stderr=subprocess.STDOUT)
        procs[name] = (proc, log, time.time())
    total_requests = 0
    findings = 0
    print(f"{args.examples} examples per campaign, {len(CAMPAIGNS)} campaigns at once")
    finished: dict[str, float] = {}
    while len(finished) < len(procs):  # each campaign's own duration (they end at different times)
        for name, (proc, _, _) in procs.items():
            if name not in finished and proc.poll() is not None:
                finished[name] = time.time()
        time.sleep(1)
    for name, (proc, log, started) in procs.items():
        code = proc.wait()
        elapsed = finished[name] - started
        text = log.read_text(errors="replace")
        # hypothesis' statistics, per phase: "- N passing, M failing, and K invalid test cases"
        counts = re.findall(r"(\d+) passing, (\d+) failing, and (\d+) invalid", text)
        passing = sum(int(p) for p, _, _ in counts)
        failing = sum(int(f) for _, f, _ in counts)
        invalid = sum(int(i) for _, _, i in counts)
        sent = passing + failing
        total_requests += sent * CAMPAIGNS[name][1]
        print(f"{name:11s} {sent:7d} requests ({invalid} generated inputs discarded as unsignable) "
              f"in {elapsed:6.0f} s -> {sent / elapsed if elapsed else 0:5.1f}/s: "
              f"{'no findings' if code == 0 else 'FINDING (see below)'}")
        if code != 0:
            findings += 1
            falsifying = text[text.find("Falsifying example"):][:3000] if "Falsifying example" in text else text[-3000:]
            print("    " + falsifying.replace("\n", "\n    "))
    print(f"total: {total_requests} requests, {findings} campaign(s) with findings; "
          "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
