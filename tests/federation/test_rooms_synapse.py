"""Rooms across servers, Concord <-> a real Synapse on loopback: joins, invites, messages, name and
topic, leaves and kicks, history, in room versions 10, 11 and 12. Marked ``synapse``."""

from __future__ import annotations

from typing import Any

import pytest

from tests.federation.conftest import ConcordTLS
from tests.federation.rooms_helpers import ConcordApi, SynapseUser, wait_for
from tests.federation.synapse_harness import SynapseServer

pytestmark = [pytest.mark.synapse, pytest.mark.django_db(transaction=True)]

VERSIONS = ["10", "11", "12"]


def _texts(room_id: str) -> list[str]:
    from rooms.models import Message

    return list(Message.objects.filter(room_id=room_id, type="").order_by("created_at").values_list("text", flat=True))


def _member_state(room_id: str, username: str) -> str | None:
    from rooms.models import Membership

    return Membership.objects.filter(room_id=room_id, user__username=username).values_list(
        "state", flat=True).first()


@pytest.mark.parametrize("version", VERSIONS)
def test_synapse_user_joins_public_concord_room_and_messages_flow(
        version: str, fed: ConcordTLS, synapse: SynapseServer, outbox_pump: Any, make_user: Any,
        live_url: str) -> None:
    make_user(f"owner{version}", name="Owner")
    api = ConcordApi(live_url, f"owner{version}")
    created = api.post("channels.create", name=f"pub{version}")
    assert created["success"], created
    rid = created["channel"]["_id"]
    api.post("chat.postMessage", roomId=rid, text="before the join")
    fedinfo = api.post("rooms.federation", roomId=rid, roomVersion=version)["federation"]
    assert fedinfo["roomVersion"] == version and fedinfo["alias"] == f"#pub{version}:{fed.server_name}"
    api.post("chat.postMessage", roomId=rid, text="history **one**")

    bob = SynapseUser(synapse, f"bob{version}")
    r = bob.join(fedinfo["alias"])  # no invite: a public room, by alias
    assert r.status_code == 200, r.text
    room_id = r.json()["room_id"]
    assert room_id == fedinfo["roomId"]
    wait_for(lambda: _member_state(rid, bob.user_id) == "joined", what="bob joined in Concord")
    # history visible after join (Synapse backfills from us)
    wait_for(lambda: "history **one**" in bob.texts(room_id), what="history in Synapse")

    api.post("chat.postMessage", roomId=rid, text="hello *Synapse*")
    msgs = wait_for(lambda: [e for e in bob.messages(room_id) if e["content"].get("body") == "hello *Synapse*"],
                    what="Concord message in Synapse")
    assert msgs[0]["content"]["format"] == "org.matrix.custom.html"
    assert "<em>Synapse</em>" in msgs[0]["content"]["formatted_body"]
    assert msgs[0]["sender"] == f"@owner{version}:{fed.server_name}"

    bob.send(room_id, "hello Concord <script>x</script>")
    wait_for(lambda: "hello Concord <script>x</script>" in _texts(rid), what="Synapse message in Concord")
    history = api.get("channels.history", roomId=rid)
    mine = [m for m in history["messages"] if m["msg"].startswith("hello Concord")]
    assert mine and mine[0]["u"]["username"] == bob.user_id and "<script>" not in mine[0].get("html", "")

    # name and topic: Concord -> Synapse
    api.post("channels.rename", roomId=rid, name=f"renamed{version}")
    api.post("channels.setTopic", roomId=rid, topic="a topic from Concord")
    wait_for(lambda: (bob.state(room_id, "m.room.name") or {}).get("name") == f"renamed{version}",
             what="name in Synapse")
    wait_for(lambda: (bob.state(room_id, "m.room.topic") or {}).get("topic") == "a topic from Concord",
             what="topic in Synapse")
    # topic: Synapse -> Concord (topic needs no power in our rooms)
    bob.put_state(room_id, "m.room.topic", {"topic": "a topic from Synapse"})
    wait_for(lambda: api.get("channels.info", roomId=rid)["channel"].get("topic") == "a topic from Synapse",
             what="topic in Concord")

    # leave: Synapse -> Concord
    assert bob.leave(room_id).status_code == 200
    wait_for(lambda: _member_state(rid, bob.user_id) == "left", what="bob left in Concord")
