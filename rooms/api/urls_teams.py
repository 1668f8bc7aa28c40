"""Routes of ``teams.*`` and of discussions (``rooms.createDiscussion``, ``rooms.getDiscussions``)."""

from django.urls import path

from rooms.api import discussions as d
from rooms.api import teams as t

urlpatterns = [
    path("teams.create", t.CreateView.as_view()),
    path("teams.list", t.ListView.as_view()),
    path("teams.listAll", t.ListAllView.as_view()),
    path("teams.info", t.InfoView.as_view()),
    path("teams.members", t.MembersView.as_view()),
    path("teams.addMembers", t.AddMembersView.as_view()),
    path("teams.updateMember", t.UpdateMemberView.as_view()),
    path("teams.removeMember", t.RemoveMemberView.as_view()),
    path("teams.leave", t.LeaveView.as_view()),
    path("teams.addRooms", t.AddRoomsView.as_view()),
    path("teams.removeRoom", t.RemoveRoomView.as_view()),
    path("teams.updateRoom", t.UpdateRoomView.as_view()),
    path("teams.listRooms", t.ListRoomsView.as_view()),
    path("teams.delete", t.DeleteView.as_view()),
    path("teams.autocomplete", t.AutocompleteView.as_view()),
    path("rooms.createDiscussion", d.CreateDiscussionView.as_view()),
    path("rooms.getDiscussions", d.GetDiscussionsView.as_view()),
]
