"""Room lists (``rooms.get``, ``channels.list``) answer in a number of queries that does not grow
with the number of rooms, and say the same as ``rooms.info`` for each room."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

pytestmark = pytest.mark.django_db


def _queries(client: Client, url: str) -> tuple[int, Any]:
    with CaptureQueriesContext(connection) as ctx:
        r = client.get(url)
    assert r.status_code == 200, r.content[:300]
    return len(ctx.captured_queries), r.json()


def test_room_lists_take_a_fixed_number_of_queries(make_user: Any) -> None:
    from rooms.actions.memberships import do_set_muted
    from rooms.actions.rooms import do_create_room

    owner, other = make_user("lister"), make_user("listed")
    client = Client()
    client.force_login(owner)

    def make(n: int, start: int) -> None:
        for i in range(start, start + n):
            room = do_create_room(owner, "c", f"list-{i:02d}", members=[other])
            if i % 2:
                do_set_muted(room, other, True, by=owner)

    make(3, 0)
    few, _ = _queries(client, "/api/v1/rooms.get")
    few_list, _ = _queries(client, "/api/v1/channels.list?count=100")
    make(12, 3)
    many, answer = _queries(client, "/api/v1/rooms.get")
    many_list, listed = _queries(client, "/api/v1/channels.list?count=100")
    assert many == few and many_list == few_list
    rooms = {r["name"]: r for r in answer["update"]}
    assert len(rooms) == 15
    for name in ("list-00", "list-01"):
        info = client.get(f"/api/v1/rooms.info?roomName={name}").json()["room"]
        for key in ("usersCount", "muted", "federated"):
            assert rooms[name][key] == info[key], (name, key)
    assert rooms["list-01"]["muted"] == ["listed"] and rooms["list-00"]["muted"] == []
    assert {r["name"] for r in listed["channels"]} >= set(rooms)
