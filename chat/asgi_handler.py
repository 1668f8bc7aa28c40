"""Django's ASGI handler with each request served whole by one thread of a per-process pool.

Django's own ASGI handler builds the middleware chain in async mode. Our middleware (Django's
security, session, common, CSRF, auth, messages and clickjacking middleware, and WhiteNoise) are
synchronous underneath: in async mode each of them runs its ``process_request`` and
``process_response`` through ``sync_to_async`` (and WhiteNoise, sync-only, sends the rest of the
chain back through ``async_to_sync``), about fifteen thread hand-offs per request before the
(synchronous) view runs in yet another. Even with the chain built in sync mode, Django's handler
still makes three hops per request (``request_started``, the response, ``response.close()``), starts
a new thread for each request (its ``ThreadSensitiveContext``, torn down and joined at the end) and
two tasks to watch for a disconnect. Measured with py-spy under the chat bench, that machinery was
about a fifth of a web process's interpreter time.

:class:`PooledThreadASGIHandler` reads the body on the event loop, then hands the request to one
thread of a bounded per-process pool, which does everything Django's WSGI handler would do in its
thread: ``request_started``, the middleware chain and the view, and ``response.close()``
(``request_finished``, which returns the thread's database connection to the pool). The loop then
sends the response.

A streaming response (a file download: attachments, avatars, WhiteNoise's static files) must not
hold a pool thread while a slow client reads it. The serving thread returns its database
connections to the pool (``close_old_connections``, what ``request_finished`` does to them) and
hands the response over; the loop then sends it chunk by chunk, reading each chunk on a thread of
the response's own (so reads never block the loop and a generator's state stays on one thread),
waiting for the client to take each chunk before reading the next, and stops reading once the
client disconnects. ``response.close()`` (``request_finished``) runs on that thread at the end.

Guarantees:
- a request runs on one thread from ``request_started`` until its response is in hand, as under
  WSGI, and its context variables are a copy of the loop's at the time the request arrived;
- at most ``max_threads`` requests of a process run their views at once; more wait for a thread,
  in order (a view that calls back into its own process, e.g. an HTTP request to itself, needs a
  second free thread);
- a client that disconnects while its view runs does not stop the view (a synchronous view cannot
  be interrupted under Django's handler either); a download stops being read once it disconnects;
- every request that reached ``request_started`` gets ``request_finished``, even if building the
  request or the response raised.

Views run in plain threads, with no event loop of the request's to hand work back to: an
``async_to_sync`` call in a view would run on a loop of its own. The project's views make none.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers import base
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.db import close_old_connections
from django.http import FileResponse, HttpResponseBase
from django.urls import get_resolver, set_script_prefix
from django.urls.resolvers import ResolverMatch

from chat.url_cache import ResolutionMemo

Send = Callable[[dict[str, Any]], Coroutine[Any, Any, None]]


def _start_message(response: HttpResponseBase) -> dict[str, Any]:
    """The ``http.response.start`` message: the response's headers as bytes, cookies included."""
    headers = []
    for name, value in response.items():
        headers.append((name.encode("ascii") if isinstance(name, str) else bytes(name),
                        value.encode("latin1") if isinstance(value, str) else bytes(value)))
    for cookie in response.cookies.values():
        headers.append((b"Set-Cookie", cookie.output(header="").encode("ascii").strip()))
    return {"type": "http.response.start", "status": response.status_code, "headers": headers}


def _next_chunk(chunks: Iterator[bytes]) -> bytes | None:
    """The next part of a streaming response, None after the last."""
    return next(chunks, None)


class PooledThreadASGIHandler(ASGIHandler):
    """An ASGI handler that serves each HTTP request in one thread of a bounded pool."""

    def __init__(self, max_threads: int) -> None:
        base.BaseHandler.__init__(self)
        self.load_middleware(is_async=False)
        self._executor = ThreadPoolExecutor(max_workers=max_threads, thread_name_prefix="http")
        self._resolutions = ResolutionMemo()

    def resolve_request(self, request: Any) -> ResolverMatch:
        """Django's resolution, with the answers for literal routes remembered (chat/url_cache.py)."""
        if hasattr(request, "urlconf"):  # a middleware chose another URLconf for this request
            return super().resolve_request(request)
        match = self._resolutions.resolve(get_resolver(), request.path_info)
        request.resolver_match = match
        return match

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Send) -> None:
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        loop = asyncio.get_running_loop()
        context = contextvars.copy_context()
        response = await loop.run_in_executor(self._executor, context.run, self._serve, scope, body_file)
        if response.streaming:
            await self._stream(response, receive, send, context)
            return
        await send(_start_message(response))
        await send({"type": "http.response.body", "body": response.content})

    def _serve(self, scope: dict[str, Any], body_file: Any) -> HttpResponseBase:
        """Run in a pool thread: the whole request. A non-streaming response comes back closed (its
        content in hand); a streaming one open, with this thread's database connections released."""
        finished = False
        try:
            set_script_prefix(get_script_prefix(scope))
            signals.request_started.send(sender=self.__class__, scope=scope)
            request, response = self.create_request(scope, body_file)
            if request is not None:
                response = self.get_response(request)
            response._handler_class = self.__class__  # type: ignore[attr-defined]
            if response.streaming:
                if isinstance(response, FileResponse):
                    response.block_size = self.chunk_size
                close_old_connections()  # the download is read elsewhere; it needs no connection of ours
                finished = True  # request_finished comes with response.close(), after the last chunk
                return response
            try:
                response.content  # noqa: B018 (materialized before close())
            finally:
                finished = True
                response.close()  # request_finished
            return response
        finally:
            body_file.close()
            if not finished:  # something raised before there was a response to close
                signals.request_finished.send(sender=self.__class__)

    async def _stream(self, response: HttpResponseBase, receive: Any, send: Send,
                      context: contextvars.Context) -> None:
        """Send a streaming response from the loop, each chunk read on the response's own thread."""
        loop = asyncio.get_running_loop()
        reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="http-stream")
        gone = asyncio.Event()

        async def watch() -> None:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    gone.set()
                    return

        watcher = asyncio.create_task(watch())
        try:
            chunks = iter(response)
            await send(_start_message(response))
            while not gone.is_set():
                part = await loop.run_in_executor(reader, context.run, _next_chunk, chunks)
                if part is None:
                    await send({"type": "http.response.body"})
                    break
                for chunk, _last in self.chunk_bytes(part):
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
        finally:
            watcher.cancel()
            try:
                await loop.run_in_executor(reader, context.run, response.close)  # request_finished
            finally:
                reader.shutdown(wait=False)
