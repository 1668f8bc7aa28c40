from django.urls import path

from rooms.consumers import LiveEventsConsumer

websocket_urlpatterns = [path("websocket", LiveEventsConsumer.as_asgi())]
