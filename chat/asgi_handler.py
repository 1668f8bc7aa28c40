"""Django's ASGI handler with the middleware chain run synchronously, in one thread hop per request.

Django's own ASGI handler builds the middleware chain in async mode. Our middleware (Django's
security, session, common, CSRF, auth, messages and clickjacking middleware, and WhiteNoise) are
synchronous underneath: in async mode each of them runs its ``process_request`` and
``process_response`` through ``sync_to_async`` (and WhiteNoise, sync-only, sends the rest of the
chain back through ``async_to_sync``), about fifteen thread hand-offs per request before the
(synchronous) view runs in yet another. Measured with py-spy under the chat bench, those hand-offs
(condition variables, executor submits, context copies) were about a quarter of a web process's
interpreter time.

:class:`SyncChainASGIHandler` builds the chain in sync mode and calls it in one ``sync_to_async``
hop, in the request's thread-sensitive context: the same thread Django would have used for the
sync middleware and the view, so database connections, ``request_started``/``request_finished``
and everything else keep Django's semantics. Only views and middleware written as coroutines
would lose by it, and the project has none (the WebSocket consumer is not behind this handler).
"""

from __future__ import annotations

from typing import Any

from asgiref.sync import sync_to_async
from django.core.handlers import base
from django.core.handlers.asgi import ASGIHandler


class SyncChainASGIHandler(ASGIHandler):
    """An ASGI handler whose middleware chain and view run in one thread hop."""

    def __init__(self) -> None:
        base.BaseHandler.__init__(self)
        self.load_middleware(is_async=False)

    async def get_response_async(self, request: Any) -> Any:
        # BaseHandler.get_response: sets the URLconf, runs the chain, logs 4xx/5xx, closes the request.
        return await sync_to_async(self.get_response, thread_sensitive=True)(request)
