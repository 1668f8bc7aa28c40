"""The OpenAPI schema (``/api/schema``, drf-spectacular) is generated without errors and lists the
REST calls, including those added for Rocket.Chat compatibility and federation."""

from __future__ import annotations

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def test_the_schema_lists_the_rest_calls() -> None:
    r = Client().get("/api/schema", HTTP_ACCEPT="application/json")
    assert r.status_code == 200, r.content[:300]
    paths = r.json()["paths"] if r["Content-Type"].startswith("application/json") else None
    if paths is None:  # served as YAML
        import yaml

        paths = yaml.safe_load(r.content)["paths"]
    for call in ("users.delete", "users.generatePersonalAccessToken", "users.setPreferences", "chat.starMessage",
                 "chat.reportMessage", "rooms.favorite", "channels.setDefault", "federation/searchPublicRooms",
                 "federation/admin.status", "rooms.setServerAcl", "rooms.invitations", "chat.postMessage",
                 "settings", "settings.public", "settings/{setting_id}", "integrations.create", "integrations.list",
                 "integrations.get", "integrations.update", "integrations.remove", "integrations.history",
                 "rooms.isMember", "rooms.images", "rooms.open", "rooms.hide"):
        assert f"/api/v1/{call}" in paths, call


def test_the_schema_lists_teams_and_discussions() -> None:
    r = Client().get("/api/schema", HTTP_ACCEPT="application/json")
    assert r.status_code == 200, r.content[:300]
    if r["Content-Type"].startswith("application/json"):
        paths = r.json()["paths"]
    else:  # served as YAML
        import yaml

        paths = yaml.safe_load(r.content)["paths"]
    for call in ("teams.create", "teams.list", "teams.listAll", "teams.info", "teams.members", "teams.addMembers",
                 "teams.updateMember", "teams.removeMember", "teams.leave", "teams.addRooms", "teams.removeRoom",
                 "teams.updateRoom", "teams.listRooms", "teams.delete", "teams.autocomplete",
                 "rooms.createDiscussion", "rooms.getDiscussions"):
        assert f"/api/v1/{call}" in paths, call
