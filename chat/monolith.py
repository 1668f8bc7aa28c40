"""Web, Celery worker and Celery beat in one process: the embedded default of ``make run``.

Why one process. Each Python process that loads Django and the apps costs 70-90 MB of private
memory (the objects of ~1,500 modules; shared libraries are a few MB), and forked Celery children
share little of it once they run (reference counts dirty the pages). The ``Procfile`` runs web,
worker (main + prefork children) and beat as separate processes: about 390 MB PSS at idle, where
Synapse, which runs its background work in its main process, needs about 100 MB. One process with
the worker and beat as threads loads the code once.

How. :func:`serve` loads Django (``chat.asgi``), starts a Celery :class:`~celery.worker.WorkController`
with the ``threads`` pool in a thread (as ``celery.contrib.testing`` embeds one), beat as a thread
(Celery's threaded :func:`~celery.beat.EmbeddedService`), and runs uvicorn in the main thread,
which handles SIGTERM/SIGINT. Tasks are I/O bound (federation HTTP, the database): the pool's
``concurrency`` threads run that many at once, so a slow peer holds one thread while the others
send to other peers (each send task is one destination; see ``federation.handlers.sender``).
Workers in other processes (the ``Procfile``'s, on other machines) may consume the same queue: the
outbox lease makes that safe.

Guarantees: when :func:`serve` returns, uvicorn has shut down gracefully, beat has stopped and the
worker has finished the tasks it was running (warm shutdown, at most ``STOP_TIMEOUT`` s, e.g. while
the broker is unreachable; an unfinished task is redelivered, acks are late); if the worker
thread dies, the web server is stopped too, so the process never serves without a worker.

Production keeps the ``Procfile`` (separate processes, scaled independently): see the README,
"Running in production".
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
from typing import Any

log = logging.getLogger("concord.monolith")

# Seconds a warm shutdown may wait for running tasks (an outbound federation request times out
# after 30 s by default). The tasks are safe to lose: their work is in the database and beat
# re-drives it.
STOP_TIMEOUT = 35


def serve(host: str, port: int, *, concurrency: int = 4, ssl_certfile: str = "", ssl_keyfile: str = "",
          log_level: str = "info") -> int:
    """Serve web + worker + beat until SIGTERM/SIGINT; returns an exit status (0 after a signal)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chat.settings")
    import uvicorn
    from celery.beat import EmbeddedService
    from celery.worker import WorkController

    from chat.asgi import application
    from chat.celery import app

    # uvicorn re-raises the signal that stopped it once it is done; with these handlers that
    # re-raise is harmless and the worker and beat still get their orderly stop below.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, frame: None)

    hostname = f"celery@{socket.gethostname()}"

    def on_ready(consumer: Any) -> None:
        from celery import signals

        signals.worker_ready.send(sender=consumer)
        log.info("%s ready (threads pool, concurrency %d, beat embedded)", hostname, concurrency)

    worker = WorkController(app=app, hostname=hostname, pool="threads", concurrency=concurrency,
                            loglevel="INFO", ready_callback=on_ready, without_mingle=True, without_gossip=True)
    config = uvicorn.Config(application, host=host, port=port, workers=1, ws="websockets-sansio",
                            proxy_headers=True, log_level=log_level, lifespan="off",
                            ssl_certfile=ssl_certfile or None, ssl_keyfile=ssl_keyfile or None)
    server = uvicorn.Server(config)
    worker_failed = threading.Event()

    def run_worker() -> None:
        try:
            worker.start()
        finally:
            if not server.should_exit:  # the worker stopped on its own: stop serving too
                log.error("the Celery worker stopped; stopping the web server")
                worker_failed.set()
                server.should_exit = True

    worker_thread = threading.Thread(target=run_worker, name="celery-worker", daemon=True)
    worker_thread.start()
    beat = EmbeddedService(app, thread=True, schedule_filename=app.conf.beat_schedule_filename)
    beat.start()
    try:
        server.run()
    finally:
        server.should_exit = True
        beat.stop()
        worker.stop(in_sighandler=False)
        worker_thread.join(STOP_TIMEOUT)
        if worker_thread.is_alive():
            log.warning("the Celery worker did not stop within %d s; exiting anyway", STOP_TIMEOUT)
    return 1 if worker_failed.is_set() else 0
