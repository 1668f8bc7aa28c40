"""REST routes of rooms: ``urls_rooms`` (channels, groups, DMs, membership) and ``urls_chat``
(messages, rooms.*, subscriptions.*)."""

from django.urls import include, path

urlpatterns = [
    path("", include("rooms.api.urls_rooms")),
    path("", include("rooms.api.urls_chat")),
]
