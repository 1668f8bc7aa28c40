"""REST routes of rooms: ``urls_rooms`` (channels, groups, DMs, membership) and ``urls_chat``
(messages, rooms.*, subscriptions.*) and ``urls_teams`` (teams.*, discussions)."""

from django.urls import include, path

from federation.api import admin_rest
from federation.api.rest import (
    InviteAnswerView,
    JoinExternalPublicRoomView,
    RoomFederationView,
    RoomServerAclView,
    SearchPublicRoomsView,
)

urlpatterns = [
    path("rooms.invite", InviteAnswerView.as_view()),
    path("rooms.federation", RoomFederationView.as_view()),
    path("rooms.setServerAcl", RoomServerAclView.as_view()),
    path("federation/admin.status", admin_rest.StatusView.as_view()),
    path("federation/admin.addRule", admin_rest.AddRuleView.as_view()),
    path("federation/admin.removeRule", admin_rest.RemoveRuleView.as_view()),
    path("federation/admin.retry", admin_rest.RetryView.as_view()),
    path("federation/admin.check", admin_rest.CheckView.as_view()),
    path("federation/searchPublicRooms", SearchPublicRoomsView.as_view()),
    path("federation/joinExternalPublicRoom", JoinExternalPublicRoomView.as_view()),
    path("", include("rooms.api.urls_rooms")),
    path("", include("rooms.api.urls_chat")),
    path("", include("rooms.api.urls_teams")),
]
