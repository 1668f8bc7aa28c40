"""ASGI entry point: HTTP goes to Django, ``/websocket`` to the live-event consumer."""

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chat.settings")
django.setup(set_prefix=False)

from chat.asgi_handler import PooledThreadASGIHandler  # noqa: E402

# Requests served at once per web process (each on its own thread); more wait for a thread.
django_asgi_app = PooledThreadASGIHandler(max_threads=int(os.environ.get("CONCORD_WEB_THREADS", "32")))

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from rooms.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": URLRouter(websocket_urlpatterns),
    }
)
