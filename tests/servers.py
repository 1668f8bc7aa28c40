"""Loopback servers for the tests: a free port, and ``chat.asgi`` served by uvicorn in a thread.

Used by the session fixtures of ``tests/conftest.py`` (plain HTTP) and ``tests/federation/conftest.py``
(TLS). The thread serves the test database of the pytest process, so it sees the test's settings.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from pathlib import Path
from typing import Any


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class UvicornThread(threading.Thread):
    """``chat.asgi.application`` on ``127.0.0.1:<port>``; over TLS when ``cert`` and ``key`` are given.

    :meth:`start_and_wait` returns once the port accepts connections and fails if it never does.
    """

    def __init__(self, cert: Path | None = None, key: Path | None = None) -> None:
        super().__init__(daemon=True)
        self.port = free_port()
        self.cert, self.key = cert, key
        self.server: Any = None

    def run(self) -> None:
        import uvicorn

        from chat.asgi import application

        tls = {"ssl_certfile": str(self.cert), "ssl_keyfile": str(self.key)} if self.cert and self.key else {}
        config = uvicorn.Config(application, host="127.0.0.1", port=self.port, log_level="warning",
                                lifespan="off", ws="websockets-sansio", **tls)
        self.server = uvicorn.Server(config)
        asyncio.run(self.server.serve())

    def start_and_wait(self, timeout: float = 20.0) -> None:
        self.start()
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"the test ASGI server did not listen on 127.0.0.1:{self.port} within {timeout} s")

    def stop(self) -> None:
        if self.server is not None:
            self.server.should_exit = True
        self.join(timeout=5)
