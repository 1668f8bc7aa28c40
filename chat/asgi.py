"""ASGI entry point: HTTP goes to Django, ``/websocket`` to the live-event consumer.

HTTP requests run their whole middleware chain and view in one worker thread
(:class:`SyncChainASGIHandler`). Django's stock ASGI handler runs each sync-and-async-capable
middleware's hooks through ``sync_to_async`` separately and, around a sync-only middleware
(WhiteNoise), hops back to the event loop with ``async_to_sync``: about fifteen thread hand-offs per
request. Under load each hand-off waits for the GIL behind the event loop (which also fans live
events out to WebSockets), so the hops, not the work, dominated request latency. All our views are
sync, so nothing is lost by running the chain sync: per request there is one hop for the
``request_started`` signal, one for the chain and one for ``response.close()``, all on the request's
own thread (``thread_sensitive``, so the database connection stays on one thread).
"""

import os
import sys
from typing import Any

from asgiref.sync import sync_to_async
from django.core.asgi import get_asgi_application
from django.core.handlers.asgi import ASGIHandler

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chat.settings")


class SyncChainASGIHandler(ASGIHandler):
    """Django's ASGI handler with the middleware chain built in sync mode and entered once per request."""

    def load_middleware(self, is_async: bool = False) -> None:
        super().load_middleware(is_async=False)
        self._middleware_chain: Any = sync_to_async(self._middleware_chain, thread_sensitive=True)


# The event loop thread (WebSocket fan-out) and the request threads share the GIL. A thread whose
# database answer arrived waits for the GIL up to the switch interval (5 ms by default) while the
# loop is busy; while it waits it may hold the room's counter row locks, which every other post to
# the room needs. A shorter interval trades a little switching overhead for much shorter waits.
sys.setswitchinterval(float(os.environ.get("CONCORD_GIL_SWITCH_INTERVAL_MS", "1")) / 1000)

get_asgi_application()  # django.setup()
django_asgi_app = SyncChainASGIHandler()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from rooms.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": URLRouter(websocket_urlpatterns),
    }
)
