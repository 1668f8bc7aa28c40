"""Routes of the room-level REST API: ``channels.*``, ``groups.*``, ``dm.*`` + ``im.*``, and room
moderation (``rooms.muteUser``, ``rooms.unmuteUser``, ``rooms.banUser``, ``rooms.unbanUser``).

The same views serve each family, told apart by ``kind`` (see :mod:`rooms.api.room_common`).
"""

from __future__ import annotations

from typing import Any

from django.urls import URLPattern, path

from rooms.api import channels as v
from rooms.api import dm, moderation, room_settings
from rooms.api.room_common import CHANNELS, DMS, GROUPS, RoomKind


def _shared(prefix: str, kind: RoomKind) -> list[URLPattern]:
    """Routes every family has (channels, groups and DMs)."""
    def route(name: str, view: Any, **attrs: Any) -> URLPattern:
        return path(f"{prefix}.{name}", view.as_view(kind=kind, **attrs))

    return [
        route("history", v.HistoryView),
        route("messages", v.MessagesView),
        route("members", v.MembersView),
        route("counters", v.CountersView),
        route("files", v.FilesView),
        route("open", v.OpenView, is_open=True),
        route("close", v.OpenView, is_open=False),
    ]


def _rooms(prefix: str, kind: RoomKind) -> list[URLPattern]:
    """Routes of the named-room families (channels and groups)."""
    def route(name: str, view: Any, **attrs: Any) -> URLPattern:
        return path(f"{prefix}.{name}", view.as_view(kind=kind, **attrs))

    routes = [
        route("create", v.CreateView),
        route("info", v.InfoView),
        route("leave", v.LeaveView),
        route("invite", v.InviteView),
        route("kick", v.KickView),
        route("roles", v.RolesView),
        route("moderators", v.ModeratorsView),
        route("setTopic", v.TextSettingView, field="topic"),
        route("setDescription", v.TextSettingView, field="description"),
        route("setAnnouncement", v.TextSettingView, field="announcement"),
        route("rename", v.RenameView),
        route("setReadOnly", v.ReadOnlyView),
        route("setDefault", v.SetDefaultView),
        route("setPurpose", v.TextSettingView, field="description", answer="purpose", param_name="purpose"),
        route("online", v.OnlineView),
        route("setCustomFields", v.SetCustomFieldsView),
        route("setType", v.SetTypeView),
        route("archive", v.ArchiveView, archived=True),
        route("unarchive", v.ArchiveView, archived=False),
        route("delete", v.DeleteView),
    ]
    for role in ("owner", "moderator", "leader"):
        title = role.title()
        routes.append(route(f"add{title}", v.RoomRoleView, role=role, granted=True))
        routes.append(route(f"remove{title}", v.RoomRoleView, role=role, granted=False))
    return routes + _shared(prefix, kind)


def _dms(prefix: str) -> list[URLPattern]:
    def route(name: str, view: Any, **attrs: Any) -> URLPattern:
        return path(f"{prefix}.{name}", view.as_view(kind=DMS, **attrs))

    return [
        route("create", dm.DmCreateView),
        route("list", dm.DmListView, everyone=False),
        route("list.everyone", dm.DmListView, everyone=True),
        route("setTopic", dm.DmSetTopicView),
        route("delete", v.DeleteView),
    ] + _shared(prefix, DMS)


urlpatterns: list[URLPattern] = [
    path("channels.list", v.PublicListView.as_view(kind=CHANNELS)),
    path("channels.list.joined", v.JoinedListView.as_view(kind=CHANNELS)),
    path("channels.join", v.JoinView.as_view(kind=CHANNELS)),
    path("channels.setJoinCode", v.SetJoinCodeView.as_view(kind=CHANNELS)),
    path("channels.addAll", v.AddAllView.as_view(kind=CHANNELS)),
    *_rooms("channels", CHANNELS),
    path("groups.list", v.JoinedListView.as_view(kind=GROUPS)),
    path("groups.listAll", v.AllListView.as_view(kind=GROUPS)),
    *_rooms("groups", GROUPS),
    *_dms("dm"),
    *_dms("im"),
    path("rooms.muteUser", moderation.MuteView.as_view(muted=True)),
    path("rooms.unmuteUser", moderation.MuteView.as_view(muted=False)),
    path("rooms.banUser", moderation.BanView.as_view(banned=True)),
    path("rooms.unbanUser", moderation.BanView.as_view(banned=False)),
    path("rooms.saveRoomSettings", room_settings.SaveRoomSettingsView.as_view()),
    path("rooms.bannedUsers", room_settings.BannedUsersView.as_view()),
]
