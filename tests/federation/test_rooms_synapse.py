"""Rooms across servers, Concord <-> a real Synapse on loopback: joins, invites, messages, name and
topic, leaves and kicks, history, in room versions 10, 11 and 12; Synapse messages reach a Concord
user's live WebSocket. Marked ``synapse``."""

from __future__ import annotations

from typing import Any

import pytest

from tests.federation.conftest import ConcordTLS
from tests.federation.rooms_helpers import ConcordApi, SynapseUser, live_socket, wait_for
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

    with live_socket(live_url, api) as ws:  # the owner's live WebSocket gets it too
        bob.send(room_id, "hello Concord <script>x</script>")
        wait_for(lambda: "hello Concord <script>x</script>" in _texts(rid), what="Synapse message in Concord")
        wait_for(lambda: "hello Concord <script>x</script>" in ws.messages(rid), what="Synapse message on the socket")
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


@pytest.mark.parametrize("version", VERSIONS)
def test_concord_invites_synapse_user_accept_decline_revoke(
        version: str, fed: ConcordTLS, synapse: SynapseServer, outbox_pump: Any, make_user: Any,
        live_url: str) -> None:
    make_user("inviter", name="Inviter")
    api = ConcordApi(live_url, "inviter")
    rid = api.post("groups.create", name="privgrp")["group"]["_id"]
    assert api.post("rooms.federation", roomId=rid, roomVersion=version)["federation"]["roomVersion"] == version
    carol, dan, erin = (SynapseUser(synapse, f"{n}{version}") for n in ("rcarol", "rdan", "rerin"))
    for u in (carol, dan, erin):
        r = api.post("groups.invite", roomId=rid, username=u.user_id)
        assert r["success"], r
    assert _member_state(rid, carol.user_id) == "invited"
    pending = api.get("rooms.invitations", roomId=rid)["invitations"]
    assert [(i["username"], i["invitedBy"]) for i in pending] == [(u.user_id, "inviter") for u in (carol, dan, erin)]
    room_id = api.get("rooms.federation", roomId=rid)["federation"]["roomId"]
    # accept
    wait_for(lambda: room_id in carol.invited_rooms(), what="invite in carol's sync")
    assert carol.join(room_id).status_code == 200
    wait_for(lambda: _member_state(rid, carol.user_id) == "joined", what="carol joined")
    # decline
    wait_for(lambda: room_id in dan.invited_rooms(), what="invite in dan's sync")
    assert dan.leave(room_id).status_code == 200
    wait_for(lambda: _member_state(rid, dan.user_id) == "left", what="dan declined")
    # revoke: erin can no longer join
    assert api.post("groups.kick", roomId=rid, username=erin.user_id)["success"]
    assert _member_state(rid, erin.user_id) == "left"
    wait_for(lambda: carol.membership(room_id, erin.user_id) == "leave", what="revoke seen in Synapse")
    assert erin.join(room_id).status_code != 200
    assert api.get("rooms.invitations", roomId=rid)["invitations"] == []
    # kick: Concord kicks carol
    assert api.post("groups.kick", roomId=rid, username=carol.user_id)["success"]
    assert _member_state(rid, carol.user_id) == "left"
    wait_for(lambda: carol.membership(room_id, carol.user_id) == "leave", what="kick in Synapse")


@pytest.mark.parametrize("version", ["10", "11", "12"])
def test_synapse_invites_concord_user_accept_and_decline(
        version: str, fed: ConcordTLS, synapse: SynapseServer, outbox_pump: Any, make_user: Any,
        live_url: str) -> None:
    from rooms.models import Membership

    make_user(f"ann{version}", name="Ann")
    make_user(f"ben{version}", name="Ben")
    ann, ben = ConcordApi(live_url, f"ann{version}"), ConcordApi(live_url, f"ben{version}")
    frank = SynapseUser(synapse, f"frank{version}")
    room_id = frank.create_room(preset="private_chat", name=f"Synapse room {version}", room_version=version)
    frank.send(room_id, "early history")
    for who in (f"ann{version}", f"ben{version}"):
        r = frank.invite(room_id, f"@{who}:{fed.server_name}")
        assert r.status_code == 200, r.text
    sub = Membership.objects.get(user__username=f"ann{version}", state=Membership.INVITED)
    rid = sub.room_id
    r = ann.post("rooms.invite", roomId=rid, action="accept")
    assert r["success"], r
    assert _member_state(rid, f"ann{version}") == "joined"
    wait_for(lambda: frank.membership(room_id, f"@ann{version}:{fed.server_name}") == "join", what="ann in Synapse")
    assert "early history" in _texts(rid)  # backfilled on join
    frank.send(room_id, "welcome ann")
    wait_for(lambda: "welcome ann" in _texts(rid), what="message after join")
    ann.post("chat.postMessage", roomId=rid, text="thanks frank")
    wait_for(lambda: "thanks frank" in frank.texts(room_id), what="Concord message in Synapse room")
    # name both ways: Synapse renames; Concord user given power renames the topic
    frank.put_state(room_id, "m.room.name", {"name": f"Renamed {version}"})
    wait_for(lambda: _room_fname(rid) == f"Renamed {version}", what="name in Concord")
    # decline
    ben_sub = Membership.objects.get(user__username=f"ben{version}", room_id=rid)
    assert ben_sub.state == Membership.INVITED
    r = ben.post("rooms.invite", roomId=rid, action="reject")
    assert r["success"], r
    wait_for(lambda: frank.membership(room_id, f"@ben{version}:{fed.server_name}") == "leave", what="ben declined")
    # kick: Synapse kicks ann
    assert frank.kick(room_id, f"@ann{version}:{fed.server_name}").status_code == 200
    wait_for(lambda: _member_state(rid, f"ann{version}") == "left", what="ann kicked in Concord")


def _room_fname(rid: str) -> str:
    from rooms.models import Room

    return str(Room.objects.get(id=rid).fname)


def test_concord_user_joins_public_synapse_room_by_alias(
        fed: ConcordTLS, synapse: SynapseServer, outbox_pump: Any, make_user: Any, live_url: str) -> None:
    make_user("joiner", name="Joiner")
    api = ConcordApi(live_url, "joiner")
    gina = SynapseUser(synapse, "gina")
    room_id = gina.create_room(preset="public_chat", room_alias_name="lobby", name="Lobby")
    gina.send(room_id, "old news")
    r = api.post("channels.join", roomId=f"#lobby:{synapse.server_name}", via=["127.0.0.1:1"])  # fail-over
    assert r["success"], r
    rid = r["channel"]["_id"]
    assert "old news" in _texts(rid)
    wait_for(lambda: gina.membership(room_id, f"@joiner:{fed.server_name}") == "join", what="join in Synapse")
    api.post("channels.leave", roomId=rid)
    wait_for(lambda: gina.membership(room_id, f"@joiner:{fed.server_name}") == "leave", what="leave in Synapse")


def test_remote_invite_refused_without_access_federation(
        fed: ConcordTLS, synapse: SynapseServer, make_user: Any) -> None:
    from accounts.models import Permission

    make_user("nofed", name="No Fed")
    Permission.objects.get(id="access-federation").roles.clear()
    hank = SynapseUser(synapse, "hank")
    room_id = hank.create_room(preset="private_chat")
    r = hank.invite(room_id, f"@nofed:{fed.server_name}")
    assert r.status_code == 403, r.text


def test_outage_twenty_messages_arrive_in_order(
        fed: ConcordTLS, synapse: SynapseServer, outbox_pump: Any, make_user: Any, live_url: str) -> None:
    make_user("sender", name="Sender")
    api = ConcordApi(live_url, "sender")
    rid = api.post("channels.create", name="outage")["channel"]["_id"]
    alias = api.post("rooms.federation", roomId=rid)["federation"]["alias"]
    ivy = SynapseUser(synapse, "ivy")
    room_id = ivy.join(alias).json()["room_id"]
    wait_for(lambda: _member_state(rid, ivy.user_id) == "joined", what="ivy joined")
    synapse.stop()
    try:
        for i in range(20):
            api.post("chat.postMessage", roomId=rid, text=f"m{i:02d}")
    finally:
        synapse.start()
    want = [f"m{i:02d}" for i in range(20)]
    got = wait_for(lambda: (lambda t: t if all(w in t for w in want) else None)(ivy.texts(room_id)), timeout=60,
                   what="all 20 messages in Synapse")
    seen = [t for t in got if t in want]
    assert seen == want  # in order, no duplicates


def test_scrolling_back_fetches_older_history_from_synapse(
        fed: ConcordTLS, synapse: SynapseServer, outbox_pump: Any, make_user: Any, live_url: str) -> None:
    """History on join covers the latest events only; scrolling back through ``channels.history``
    (pages of 20, each before the oldest shown, as the web client does) fetches the rest."""
    make_user("scroller", name="Scroller")
    api = ConcordApi(live_url, "scroller")
    kim = SynapseUser(synapse, "kim")
    room_id = kim.create_room(preset="public_chat", room_alias_name="longroom", name="Long")
    want = [f"h{i:02d}" for i in range(80)]
    for text in want:
        kim.send(room_id, text)
    r = api.post("channels.join", roomId=f"#longroom:{synapse.server_name}")
    assert r["success"], r
    rid = r["channel"]["_id"]
    assert 0 < len([t for t in _texts(rid) if t in want]) < len(want)  # only recent history so far

    seen: list[str] = []
    latest: str | None = None
    for _ in range(20):
        page = api.get("channels.history", roomId=rid, count=20, **({"latest": latest} if latest else {}))
        messages = page["messages"]
        if not messages:
            break
        seen.extend(m["msg"] for m in messages if not m.get("t"))
        latest = messages[-1]["ts"]
    assert [t for t in reversed(seen) if t in want] == want  # all, in order, once


def _bridged_event(message_id: str) -> str | None:
    from federation.models import BridgedMessage

    return BridgedMessage.objects.filter(message_id=message_id).values_list("event_id", flat=True).first()


def _reactions(message_id: str) -> list[tuple[str, str]]:
    from rooms.models import Reaction

    return sorted(Reaction.objects.filter(message_id=message_id).values_list("user__username", "emoji"))


@pytest.mark.parametrize("version", VERSIONS)
def test_edits_replies_and_reactions_cross_both_ways(
        version: str, fed: ConcordTLS, synapse: SynapseServer, outbox_pump: Any, make_user: Any,
        live_url: str) -> None:
    from rooms.models import Message

    make_user(f"ed{version}", name="Editor")
    api = ConcordApi(live_url, f"ed{version}")
    rid = api.post("channels.create", name=f"content{version}")["channel"]["_id"]
    alias = api.post("rooms.federation", roomId=rid, roomVersion=version)["federation"]["alias"]
    bob = SynapseUser(synapse, f"cbob{version}")
    room_id = bob.join(alias).json()["room_id"]
    wait_for(lambda: _member_state(rid, bob.user_id) == "joined", what="bob joined in Concord")

    # Concord -> Synapse: a message, a reaction, an edit, a quote, the reaction taken back.
    first = api.post("chat.postMessage", roomId=rid, text="the frist draft")["message"]
    first_event = wait_for(lambda: _bridged_event(first["_id"]), what="first message bridged")
    wait_for(lambda: "the frist draft" in bob.texts(room_id), what="first message in Synapse")
    assert api.post("chat.react", messageId=first["_id"], emoji=":thumbsup:")["success"]
    reaction = wait_for(lambda: [e for e in bob.messages(room_id) if e["type"] == "m.reaction"],
                        what="reaction in Synapse")[0]
    assert reaction["content"]["m.relates_to"] == {"rel_type": "m.annotation", "event_id": first_event, "key": "👍"}
    assert api.post("chat.update", roomId=rid, msgId=first["_id"], text="the **first** draft")["success"]
    edit = wait_for(lambda: [e for e in bob.messages(room_id) if e["content"].get("m.relates_to", {}).get(
        "rel_type") == "m.replace"], what="edit in Synapse")[0]
    assert edit["content"]["m.relates_to"]["event_id"] == first_event
    assert edit["content"]["m.new_content"]["body"] == "the **first** draft"
    assert "<strong>first</strong>" in edit["content"]["m.new_content"]["formatted_body"]
    quote = api.post("chat.sendMessage", message={"rid": rid, "msg": "agreed", "quote": first["_id"]})["message"]
    reply = wait_for(lambda: [e for e in bob.messages(room_id) if e["content"].get("body") == "agreed"],
                     what="reply in Synapse")[0]
    assert reply["content"]["m.relates_to"] == {"m.in_reply_to": {"event_id": first_event}}
    assert quote["_id"]
    assert api.post("chat.react", messageId=first["_id"], emoji=":thumbsup:")["success"]  # toggled off
    wait_for(lambda: (bob.event(room_id, reaction["event_id"]) or {}).get("unsigned", {}).get("redacted_because"),
             what="reaction redacted in Synapse")

    # Synapse -> Concord: an edit of bob's own message, someone else's edit ignored, a reaction and
    # its redaction, a rich reply (with the fallback Synapse-era clients send).
    own = bob.send(room_id, "from bob, wrnog")
    own_msg = wait_for(lambda: Message.objects.filter(room_id=rid, text="from bob, wrnog").first(),
                       what="bob's message in Concord")
    bob.send_event(room_id, "m.room.message", {
        "msgtype": "m.text", "body": "* from bob, right", "m.new_content": {"msgtype": "m.text",
                                                                           "body": "from bob, right"},
        "m.relates_to": {"rel_type": "m.replace", "event_id": own}})
    wait_for(lambda: Message.objects.get(id=own_msg.id).text == "from bob, right", what="bob's edit in Concord")
    assert Message.objects.get(id=own_msg.id).edited_at is not None
    bob.send_event(room_id, "m.room.message", {
        "msgtype": "m.text", "body": "* hijacked", "m.new_content": {"msgtype": "m.text", "body": "hijacked"},
        "m.relates_to": {"rel_type": "m.replace", "event_id": first_event}})
    tada = bob.send_event(room_id, "m.reaction", {"m.relates_to": {
        "rel_type": "m.annotation", "event_id": first_event, "key": "🎉"}})
    wait_for(lambda: _reactions(first["_id"]) == [(bob.user_id, ":tada:")], what="bob's reaction in Concord")
    assert Message.objects.get(id=first["_id"]).text == "the **first** draft"  # the hijack was ignored
    bob.redact(room_id, tada)
    wait_for(lambda: _reactions(first["_id"]) == [], what="bob's reaction removed in Concord")
    bob.send_event(room_id, "m.room.message", {
        "msgtype": "m.text", "body": f"> <@ed{version}:{fed.server_name}> the first draft\n\nlooks good",
        "m.relates_to": {"m.in_reply_to": {"event_id": first_event}}})
    answer = wait_for(lambda: Message.objects.filter(room_id=rid, text="looks good").first(),
                      what="bob's reply in Concord")
    assert answer.quoted_id == first["_id"]
    history = api.get("chat.getMessage", msgId=answer.id)["message"]
    assert history["msg"] == "looks good"


@pytest.mark.parametrize("version", ["12"])
def test_mentions_typing_and_read_receipts_cross_both_ways(
        version: str, fed: ConcordTLS, synapse: SynapseServer, outbox_pump: Any, make_user: Any,
        live_url: str) -> None:
    from accounts.models import User
    from rooms.actions.typing import do_set_typing
    from rooms.models import Membership, Message, Room

    owner = make_user("mowner", name="Mention Owner")
    api = ConcordApi(live_url, "mowner")
    rid = api.post("channels.create", name="mentions")["channel"]["_id"]
    alias = api.post("rooms.federation", roomId=rid, roomVersion=version)["federation"]["alias"]
    bob = SynapseUser(synapse, "mbob")
    room_id = bob.join(alias).json()["room_id"]
    wait_for(lambda: _member_state(rid, bob.user_id) == "joined", what="bob joined in Concord")
    me = f"@mowner:{fed.server_name}"

    # Concord -> Synapse: a mention (m.mentions + a pill), typing, a read receipt.
    sent = api.post("chat.postMessage", roomId=rid, text=f"ping @{bob.user_id[1:]} and **you**")["message"]
    ping = wait_for(lambda: [e for e in bob.messages(room_id) if e["content"].get("body", "").startswith("ping")],
                    what="mention in Synapse")[0]
    assert ping["content"]["m.mentions"] == {"user_ids": [bob.user_id]}
    assert f'<a href="https://matrix.to/#/{bob.user_id}">' in ping["content"]["formatted_body"]
    def typing_now() -> list[str] | None:
        typing = [e["content"].get("user_ids", []) for e in bob.ephemeral(room_id) if e["type"] == "m.typing"]
        return typing[-1] if typing else None

    do_set_typing(owner, Room.objects.get(id=rid), True)
    wait_for(lambda: me in (typing_now() or []), what="typing in Synapse")
    do_set_typing(owner, Room.objects.get(id=rid), False)
    wait_for(lambda: typing_now() == [], what="typing stopped in Synapse")
    bob_says = bob.send(room_id, "read this")
    wait_for(lambda: Message.objects.filter(room_id=rid, text="read this").exists(), what="bob's message")
    assert api.post("subscriptions.read", rid=rid)["success"]
    wait_for(lambda: any(e["type"] == "m.receipt" and me in e["content"].get(bob_says, {}).get("m.read", {})
                         for e in bob.ephemeral(room_id)), what="read receipt in Synapse")

    # Synapse -> Concord: a mention by m.mentions (the body has only the display name), a receipt.
    bob.send_event(room_id, "m.room.message", {"msgtype": "m.text", "body": "Mention Owner: over to you",
                                               "m.mentions": {"user_ids": [me]}})
    wait_for(lambda: Membership.objects.get(room_id=rid, user=owner).user_mentions == 1,
             what="mention counter in Concord")
    bob.send_receipt(room_id, ping["event_id"])
    receipts = wait_for(lambda: api.get("chat.getMessageReadReceipts", messageId=sent["_id"])["receipts"],
                        what="bob's receipt in Concord")
    assert [r["user"]["username"] for r in receipts] == [bob.user_id]
    assert User.objects.get(username=bob.user_id).is_remote


def test_dm_create_with_remote_and_local_people_and_answering_a_remote_dm(
        fed: ConcordTLS, synapse: SynapseServer, outbox_pump: Any, make_user: Any, live_url: str) -> None:
    """Two bugs found while testing: a DM of one remote and two local users (the locals joined an
    invite-only room uninvited: 500), and ``dm.create`` of someone whose direct invite is pending
    (``max()`` of nothing: 500, and the invite marked joined without a Matrix join)."""
    from rooms.models import Membership, Room

    for name in ("dmx", "dmy", "dmz"):
        make_user(name, name=name.upper())
    x = ConcordApi(live_url, "dmx")
    gus = SynapseUser(synapse, "dmgus")
    made = x.post("dm.create", usernames=f"{gus.user_id},dmy,dmz")
    assert made["success"], made
    rid = made["room"]["rid"]
    room_id = wait_for(lambda: next(iter(gus.invited_rooms()), None), what="gus invited to the DM")
    assert gus.join(room_id).status_code == 200
    wait_for(lambda: _member_state(rid, gus.user_id) == "joined", what="gus joined the DM")
    assert {gus.membership(room_id, f"@{n}:{fed.server_name}") for n in ("dmx", "dmy", "dmz")} == {"join"}
    x.post("chat.postMessage", roomId=rid, text="three of us here")
    wait_for(lambda: "three of us here" in gus.texts(room_id), what="DM message in Synapse")

    hal = SynapseUser(synapse, "dmhal")
    direct = hal.create_room(preset="trusted_private_chat", is_direct=True, invite=[f"@dmy:{fed.server_name}"])
    sub = wait_for(lambda: Membership.objects.filter(user__username="dmy", state=Membership.INVITED,
                                                     room__type=Room.DIRECT).first(), what="hal's DM invite")
    y = ConcordApi(live_url, "dmy")
    answer = y.post("dm.create", username=hal.user_id)
    assert answer["success"], answer
    assert answer["room"]["rid"] == sub.room_id  # the invite was answered: no second room
    wait_for(lambda: hal.membership(direct, f"@dmy:{fed.server_name}") == "join", what="dmy joined hal's DM")
    assert _member_state(sub.room_id, "dmy") == "joined"


def _png(size: tuple[int, int], colour: tuple[int, int, int]) -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, format="PNG")
    return out.getvalue()


@pytest.mark.parametrize("version", ["11"])
def test_files_cross_both_ways_as_authenticated_media(
        version: str, fed: ConcordTLS, synapse: SynapseServer, outbox_pump: Any, make_user: Any,
        live_url: str) -> None:
    import io

    import requests
    from PIL import Image

    from federation.models import PendingMedia
    from rooms.models import Message

    make_user("filer", name="Filer")
    api = ConcordApi(live_url, "filer")
    rid = api.post("channels.create", name="files")["channel"]["_id"]
    alias = api.post("rooms.federation", roomId=rid, roomVersion=version)["federation"]["alias"]
    ivy = SynapseUser(synapse, "fivy")
    room_id = ivy.join(alias).json()["room_id"]
    wait_for(lambda: _member_state(rid, ivy.user_id) == "joined", what="ivy joined in Concord")

    # Concord -> Synapse: an image with a caption; Synapse downloads it (and a thumbnail) from us.
    picture = _png((640, 480), (10, 120, 200))
    sent = api.s.post(f"{live_url}/api/v1/rooms.upload/{rid}", headers=api.headers,
                      files={"file": ("sea.png", picture, "image/png")}, data={"msg": "the sea"}, timeout=30).json()
    assert sent["success"], sent
    event = wait_for(lambda: [e for e in ivy.messages(room_id) if e["content"].get("msgtype") == "m.image"],
                     what="image in Synapse")[0]["content"]
    assert event["body"] == "the sea" and event["filename"] == "sea.png"
    assert event["info"]["mimetype"] == "image/png" and (event["info"]["w"], event["info"]["h"]) == (640, 480)
    assert event["url"].startswith(f"mxc://{fed.server_name}/")
    got = ivy.download(event["url"])
    assert got.status_code == 200, got.text
    assert got.content == picture
    thumb = ivy.download(event["url"], thumbnail=True)
    assert thumb.status_code == 200, thumb.text
    with Image.open(io.BytesIO(thumb.content)) as img:
        assert max(img.size) <= 640
    # Unsigned requests get nothing (who may see it is tested with signed requests elsewhere).
    media_id = event["url"].rsplit("/", 1)[1]
    from django.conf import settings

    unsigned = requests.get(f"{fed.base_url}/_matrix/federation/v1/media/download/{media_id}",
                            verify=settings.CONCORD_FEDERATION_CA_BUNDLE, timeout=10)
    assert unsigned.status_code == 401 and unsigned.json()["errcode"] == "M_UNAUTHORIZED"

    # Synapse -> Concord: an image we fetch from Synapse, store once and serve ourselves.
    theirs = _png((300, 200), (250, 200, 0))
    mxc = ivy.upload(theirs, "image/png", "sun.png")
    ivy.send_event(room_id, "m.room.message", {"msgtype": "m.image", "body": "sun.png", "url": mxc,
                                               "info": {"mimetype": "image/png", "size": len(theirs),
                                                        "w": 300, "h": 200}})
    msg = wait_for(lambda: Message.objects.filter(room_id=rid, file__isnull=False, user__username=ivy.user_id)
                   .select_related("file").first(), what="Synapse's image stored in Concord")
    assert msg.file.name == "sun.png" and (msg.file.width, msg.file.height) == (300, 200) and msg.file.thumbnail
    served = api.s.get(live_url + msg.attachments[0]["image_url"], headers=api.headers, timeout=10)
    assert served.status_code == 200 and served.content == theirs

    # Bad input: "an image" that is not one is refused (the message keeps its placeholder).
    fake = ivy.upload(b"not a picture at all", "image/png", "fake.png")
    bad = ivy.send_event(room_id, "m.room.message", {"msgtype": "m.image", "body": "fake.png", "url": fake,
                                                     "info": {"mimetype": "image/png"}})
    pending = wait_for(lambda: PendingMedia.objects.filter(key=bad, attempts__gte=1).first(),
                       what="the fake image refused")
    assert "image could not be read" in pending.last_error or "announced" in pending.last_error
    placeholder = Message.objects.get(room_id=rid, attachments__0__title="fake.png")
    assert placeholder.file is None

    # Avatars: Synapse's user's avatar comes over (their member event carries it); ours goes out
    # as mxc:// media in our profile, which Synapse downloads from us.
    from accounts.models import User

    face = _png((96, 96), (0, 180, 90))
    ivy.set_avatar(ivy.upload(face, "image/png", "face.png"))
    puppet = wait_for(lambda: User.objects.filter(username=ivy.user_id).exclude(avatar="").first(),
                      what="ivy's avatar in Concord")
    with Image.open(puppet.avatar.open("rb")) as img:
        assert img.size == (96, 96)
    mine = _png((80, 80), (90, 0, 180))
    changed = api.s.post(f"{live_url}/api/v1/users.setAvatar", headers=api.headers,
                         files={"image": ("me.png", mine, "image/png")}, timeout=30).json()
    assert changed["success"], changed
    avatar_url = wait_for(lambda: ivy.profile(f"@filer:{fed.server_name}").get("avatar_url"),
                          what="our avatar URL in Synapse")
    ours = ivy.download(avatar_url)
    assert ours.status_code == 200, ours.text
    with Image.open(io.BytesIO(ours.content)) as img:
        assert img.size == (80, 80)


def test_a_public_channel_never_federated_is_joinable_by_alias(
        fed: ConcordTLS, synapse: SynapseServer, outbox_pump: Any, make_user: Any, live_url: str) -> None:
    """``query/directory`` of a public channel that is not a Matrix room yet makes it one, with its
    earlier messages as history."""
    from federation.models import MatrixRoom

    make_user("aliasowner", name="Alias Owner")
    api = ConcordApi(live_url, "aliasowner")
    rid = api.post("channels.create", name="lobby")["channel"]["_id"]
    api.post("chat.postMessage", roomId=rid, text="in the lobby")
    assert not MatrixRoom.objects.filter(chat_room_id=rid).exists()
    walker = SynapseUser(synapse, "walker")
    joined = walker.join(f"#lobby:{fed.server_name}")
    assert joined.status_code == 200, joined.text
    assert MatrixRoom.objects.get(chat_room_id=rid).room_id == joined.json()["room_id"]
    wait_for(lambda: _member_state(rid, walker.user_id) == "joined", what="walker joined in Concord")
    # What was said before the room federated is its Matrix history: Synapse backfills it.
    wait_for(lambda: "in the lobby" in walker.texts(joined.json()["room_id"]), what="earlier history in Synapse")
    # A private group's name is not an alias, and an unknown name stays unknown.
    api.post("groups.create", name="backroom")
    for alias in (f"#backroom:{fed.server_name}", f"#nothing-here:{fed.server_name}"):
        r = walker.join(alias)
        assert r.status_code == 404, r.text


@pytest.mark.parametrize("version", ["10", "12"])
def test_roles_follow_power_levels_both_ways(
        version: str, fed: ConcordTLS, synapse: SynapseServer, outbox_pump: Any, make_user: Any,
        live_url: str) -> None:
    from rooms.models import Membership

    def roles(rid: str, username: str) -> list[str]:
        return sorted(Membership.objects.get(room_id=rid, user__username=username).roles)

    # A Synapse room: its owner makes a Concord user moderator, then owner, then nothing.
    make_user(f"pl{version}", name="Power")
    api = ConcordApi(live_url, f"pl{version}")
    me = f"@pl{version}:{fed.server_name}"
    kim = SynapseUser(synapse, f"kim{version}")
    room_id = kim.create_room(preset="public_chat", room_version=version, room_alias_name=f"pl{version}")
    joined = api.post("channels.join", roomId=room_id, via=[synapse.server_name])
    assert joined["success"], joined
    rid = joined["channel"]["_id"]
    power = kim.state(room_id, "m.room.power_levels") or {}
    for level, expected in ((50, ["moderator"]), (0, []), (100, ["owner"])):  # Synapse: no demoting one's equal
        kim.put_state(room_id, "m.room.power_levels", {**power, "users": {**power.get("users", {}), me: level}})
        wait_for(lambda expected=expected: roles(rid, f"pl{version}") == expected,
                 what=f"level {level} as {expected} in Concord")
    assert roles(rid, kim.user_id) == ["owner"]  # the Synapse creator (v12: by the create event)

    # A Concord room: its owner makes the Synapse user moderator; Synapse sees level 50.
    own = api.post("channels.create", name=f"plc{version}")["channel"]["_id"]
    alias = api.post("rooms.federation", roomId=own, roomVersion=version)["federation"]["alias"]
    assert kim.join(alias).status_code == 200
    wait_for(lambda: _member_state(own, kim.user_id) == "joined", what="kim joined in Concord")
    matrix_id = kim.join(alias).json()["room_id"]
    assert api.post("channels.addModerator", roomId=own, userId=Membership.objects.get(
        room_id=own, user__username=kim.user_id).user_id)["success"]
    wait_for(lambda: (kim.state(matrix_id, "m.room.power_levels") or {}).get("users", {}).get(kim.user_id) == 50,
             what="moderator as level 50 in Synapse")
    if version == "12":  # creators are privileged by the create event and never listed
        assert me not in (kim.state(matrix_id, "m.room.power_levels") or {}).get("users", {})


def test_ban_and_unban_agree_both_ways(fed: ConcordTLS, synapse: SynapseServer, outbox_pump: Any, make_user: Any,
                                       live_url: str) -> None:
    from rooms.models import Membership

    def banned(rid: str, username: str) -> bool:
        return bool(Membership.objects.filter(room_id=rid, user__username=username, banned=True).exists())

    make_user("banner", name="Banner")
    api = ConcordApi(live_url, "banner")
    rid = api.post("channels.create", name="bans")["channel"]["_id"]
    alias = api.post("rooms.federation", roomId=rid, roomVersion="11")["federation"]["alias"]
    lou = SynapseUser(synapse, "blou")
    room_id = lou.join(alias).json()["room_id"]
    wait_for(lambda: _member_state(rid, lou.user_id) == "joined", what="lou joined in Concord")
    lou_id = Membership.objects.get(room_id=rid, user__username=lou.user_id).user_id
    watcher = SynapseUser(synapse, "bwatch")  # a banned user cannot read the room: someone else looks
    assert watcher.join(alias).status_code == 200

    # Concord bans and unbans: Synapse agrees each time.
    assert api.post("rooms.banUser", roomId=rid, userId=lou_id)["success"]
    wait_for(lambda: watcher.membership(room_id, lou.user_id) == "ban", what="ban in Synapse")
    assert api.post("rooms.unbanUser", roomId=rid, userId=lou_id)["success"]
    wait_for(lambda: watcher.membership(room_id, lou.user_id) == "leave", what="unban in Synapse")
    assert lou.join(room_id).status_code == 200
    wait_for(lambda: _member_state(rid, lou.user_id) == "joined", what="lou back in Concord")

    # Synapse bans and unbans a Concord user in a Synapse room: the chat ban follows both (while
    # another Concord user keeps our server in the room: Matrix sends events to the servers in it).
    make_user("banned1", name="Banned One")
    make_user("stayer", name="Stayer")
    one, stayer = ConcordApi(live_url, "banned1"), ConcordApi(live_url, "stayer")
    kai = SynapseUser(synapse, "bkai")
    their = kai.create_room(preset="public_chat", room_version="11")
    chat_rid = one.post("channels.join", roomId=their, via=[synapse.server_name])["channel"]["_id"]
    assert stayer.post("channels.join", roomId=their, via=[synapse.server_name])["success"]
    member = f"@banned1:{fed.server_name}"
    r = kai._req("POST", f"/rooms/{their}/ban", {"user_id": member})
    assert r.status_code == 200, r.text
    wait_for(lambda: banned(chat_rid, "banned1"), what="ban in Concord")
    r = kai._req("POST", f"/rooms/{their}/unban", {"user_id": member})
    assert r.status_code == 200, r.text
    wait_for(lambda: not banned(chat_rid, "banned1"), what="unban in Concord")
    assert one.post("channels.join", roomId=their, via=[synapse.server_name])["success"]


@pytest.mark.parametrize("version", ["10", "12"])
def test_mutes_and_read_only_agree_both_ways(
        version: str, fed: ConcordTLS, synapse: SynapseServer, outbox_pump: Any, make_user: Any,
        live_url: str) -> None:
    from rooms.models import Membership, Room

    def users_pl(who: SynapseUser, room_id: str) -> dict[str, Any]:
        return (who.state(room_id, "m.room.power_levels") or {}).get("users", {})

    def events_default(who: SynapseUser, room_id: str) -> Any:
        return (who.state(room_id, "m.room.power_levels") or {}).get("events_default")

    # A Concord room: a Concord moderator (level 50, who may not send power levels in Matrix) mutes
    # the Synapse member: the owner's server sends the change for them; Synapse refuses the muted
    # member's message; unmuted, it flows again.
    make_user(f"mo{version}", name="Mute Owner")
    make_user(f"mm{version}", name="Mute Moderator")
    owner, moder = ConcordApi(live_url, f"mo{version}"), ConcordApi(live_url, f"mm{version}")
    rid = owner.post("channels.create", name=f"mutes{version}", members=[f"mm{version}"])["channel"]["_id"]
    mod_id = Membership.objects.get(room_id=rid, user__username=f"mm{version}").user_id
    assert owner.post("channels.addModerator", roomId=rid, userId=mod_id)["success"]
    alias = owner.post("rooms.federation", roomId=rid, roomVersion=version)["federation"]["alias"]
    lou = SynapseUser(synapse, f"mlou{version}")
    room_id = lou.join(alias).json()["room_id"]
    wait_for(lambda: _member_state(rid, lou.user_id) == "joined", what="lou joined in Concord")
    lou_id = Membership.objects.get(room_id=rid, user__username=lou.user_id).user_id
    assert moder.post("rooms.muteUser", roomId=rid, userId=lou_id)["success"]
    wait_for(lambda: users_pl(lou, room_id).get(lou.user_id) == -1, what="lou at -1 in Synapse")
    r = lou._req("PUT", f"/rooms/{room_id}/send/m.room.message/muted{version}", {"msgtype": "m.text", "body": "x"})
    assert r.status_code == 403, r.text
    assert moder.post("rooms.unmuteUser", roomId=rid, userId=lou_id)["success"]
    wait_for(lambda: users_pl(lou, room_id).get(lou.user_id) == 0, what="lou back at 0 in Synapse")
    lou.send(room_id, "free to talk")
    wait_for(lambda: "free to talk" in _texts(rid), what="lou's message after the unmute")

    # Read-only set in Concord: members need the moderators' level in Synapse; back to writable.
    assert owner.post("channels.setReadOnly", roomId=rid, readOnly=True)["success"]
    wait_for(lambda: events_default(lou, room_id) == 50, what="events_default 50 in Synapse")
    r = lou._req("PUT", f"/rooms/{room_id}/send/m.room.message/ro{version}", {"msgtype": "m.text", "body": "x"})
    assert r.status_code == 403, r.text
    assert owner.post("channels.setReadOnly", roomId=rid, readOnly=False)["success"]
    wait_for(lambda: events_default(lou, room_id) == 0, what="events_default 0 in Synapse")

    # A Synapse room: its owner mutes a Concord member, then makes the room read-only; the chat
    # refuses that member's posts with Rocket.Chat's errors; both lifted, the post reaches Synapse.
    make_user(f"mc{version}", name="Muted Concord")
    api = ConcordApi(live_url, f"mc{version}")
    me = f"@mc{version}:{fed.server_name}"
    kim = SynapseUser(synapse, f"mkim{version}")
    theirs = kim.create_room(preset="public_chat", room_version=version)
    chat_rid = api.post("channels.join", roomId=theirs, via=[synapse.server_name])["channel"]["_id"]
    power = kim.state(theirs, "m.room.power_levels") or {}
    kim.put_state(theirs, "m.room.power_levels", {**power, "users": {**power.get("users", {}), me: -1}})
    wait_for(lambda: Membership.objects.get(room_id=chat_rid, user__username=f"mc{version}").muted,
             what="muted in Concord")
    r = api.post("chat.postMessage", roomId=chat_rid, text="hi")
    assert r.get("errorType") == "error-user-muted", r
    kim.put_state(theirs, "m.room.power_levels", {**power, "events_default": 50})
    wait_for(lambda: Room.objects.get(id=chat_rid).read_only, what="read-only in Concord")
    assert not Membership.objects.get(room_id=chat_rid, user__username=f"mc{version}").muted
    r = api.post("chat.postMessage", roomId=chat_rid, text="hi")
    assert r.get("errorType") == "error-room-read-only", r
    kim.put_state(theirs, "m.room.power_levels", power)
    wait_for(lambda: not Room.objects.get(id=chat_rid).read_only, what="writable in Concord")
    assert api.post("chat.postMessage", roomId=chat_rid, text="talking again")["success"]
    wait_for(lambda: "talking again" in kim.texts(theirs), what="the post in Synapse")


@pytest.mark.parametrize("version", ["10", "12"])
def test_an_invite_withdrawn_on_synapse_is_gone_in_concord(
        version: str, fed: ConcordTLS, synapse: SynapseServer, outbox_pump: Any, make_user: Any,
        live_url: str) -> None:
    """A leave of an invited user, sent by the inviter, reaches a server that is not in the room
    (out of band): the pending invitation disappears, the chat room keeps no member of ours."""
    from rooms.models import Membership

    make_user(f"wd{version}", name="Withdrawn")
    api = ConcordApi(live_url, f"wd{version}")
    gus = SynapseUser(synapse, f"wgus{version}")
    room_id = gus.create_room(preset="private_chat", name=f"Withdrawn {version}", room_version=version)
    invitee = f"@wd{version}:{fed.server_name}"
    assert gus.invite(room_id, invitee).status_code == 200
    sub = Membership.objects.get(user__username=f"wd{version}", state=Membership.INVITED)
    assert gus.kick(room_id, invitee).status_code == 200  # Synapse's way to withdraw an invite
    wait_for(lambda: _member_state(sub.room_id, f"wd{version}") == "left", what="invite gone in Concord")
    r = api.post("rooms.invite", roomId=sub.room_id, action="accept")
    assert not r["success"] and r["_status"] == 400, r
    assert gus.membership(room_id, invitee) == "leave"


@pytest.mark.parametrize("version", ["11"])
def test_history_visibility_follows_both_ways(
        version: str, fed: ConcordTLS, synapse: SynapseServer, outbox_pump: Any, make_user: Any,
        live_url: str) -> None:
    from rooms.models import Room

    def concord_vis(rid: str) -> str:
        return str(Room.objects.get(id=rid).history_visibility)

    # A Concord room: the setting (saveRoomSettings, by its owner) is Synapse's state.
    make_user("hvowner", name="History Owner")
    api = ConcordApi(live_url, "hvowner")
    rid = api.post("channels.create", name="hv")["channel"]["_id"]
    alias = api.post("rooms.federation", roomId=rid, roomVersion=version)["federation"]["alias"]
    ivy = SynapseUser(synapse, "hvivy")
    room_id = ivy.join(alias).json()["room_id"]
    wait_for(lambda: _member_state(rid, ivy.user_id) == "joined", what="ivy joined in Concord")
    assert api.post("rooms.saveRoomSettings", rid=rid, historyVisibility="joined")["success"]
    wait_for(lambda: (ivy.state(room_id, "m.room.history_visibility") or {}).get("history_visibility") == "joined",
             what="joined in Synapse")
    # A Synapse room: its owner's changes show in the chat room's setting.
    make_user("hvguest", name="History Guest")
    guest = ConcordApi(live_url, "hvguest")
    kim = SynapseUser(synapse, "hvkim")
    theirs = kim.create_room(preset="public_chat", room_version=version)
    chat_rid = guest.post("channels.join", roomId=theirs, via=[synapse.server_name])["channel"]["_id"]
    assert concord_vis(chat_rid) == "shared"
    for value in ("invited", "world_readable"):
        kim.put_state(theirs, "m.room.history_visibility", {"history_visibility": value})
        wait_for(lambda value=value: concord_vis(chat_rid) == value, what=f"{value} in Concord")


def test_public_room_directories_both_ways(fed: ConcordTLS, synapse: SynapseServer, outbox_pump: Any,
                                           make_user: Any, live_url: str) -> None:
    """A Concord user browses Synapse's public rooms and joins one from the list; Synapse browses
    Concord's, where every public channel is listed (federated on the way) and filters work."""
    from federation.models import MatrixRoom

    make_user("browser", name="Browser")
    api = ConcordApi(live_url, "browser")
    dora = SynapseUser(synapse, "dirdora")
    listed = dora.create_room(preset="public_chat", visibility="public", name="Gardening club",
                              topic="Tomatoes", room_alias_name="gardening")
    dora.create_room(preset="public_chat", visibility="public", name="Chess corner")
    page = api.get("federation/searchPublicRooms", serverName=synapse.server_name, count=1)
    assert page["success"] and page["count"] == 1 and page["total"] >= 2 and page.get("nextPageToken"), page
    found = api.get("federation/searchPublicRooms", serverName=synapse.server_name, roomName="garden")
    assert [(r["id"], r["name"], r["topic"], r["canJoin"]) for r in found["rooms"]] == [
        (listed, "Gardening club", "Tomatoes", True)], found
    assert found["rooms"][0]["canonicalAlias"] == f"#gardening:{synapse.server_name}"
    joined = api.post("federation/joinExternalPublicRoom", externalRoomId=listed, serverName=synapse.server_name)
    assert joined["success"], joined
    wait_for(lambda: dora.membership(listed, f"@browser:{fed.server_name}") == "join", what="joined from the list")

    # Synapse reads Concord's directory: a channel never federated is listed (and now a Matrix room).
    rid = api.post("channels.create", name="knitting", extraData={"topic": "Wool"})["channel"]["_id"]
    api.post("groups.create", name="secret-knitting")
    r = dora._req("GET", "/publicRooms", server=fed.server_name, limit="50")
    assert r.status_code == 200, r.text
    names = {c.get("name"): c for c in r.json()["chunk"]}
    assert "knitting" in names and "secret-knitting" not in names, names
    assert names["knitting"]["room_id"] == MatrixRoom.objects.get(chat_room_id=rid).room_id
    assert names["knitting"]["canonical_alias"] == f"#knitting:{fed.server_name}"
    r = dora._req("POST", "/publicRooms", {"filter": {"generic_search_term": "wool"}}, server=fed.server_name)
    assert [c["name"] for c in r.json()["chunk"]] == ["knitting"], r.text
    assert dora.join(names["knitting"]["room_id"], via=[fed.server_name]).status_code == 200

    # Bad input: no server, not a server name, a denied one, one that does not answer.
    for params, words in (({}, "serverName"), ({"serverName": "not a server!"}, "not a server name"),
                          ({"serverName": "nowhere.invalid"}, "could not be reached")):
        r = api.get("federation/searchPublicRooms", **params)
        assert r["_status"] == 400 and not r["success"] and words in r["error"], r
    from django.test import override_settings

    with override_settings(CONCORD_FEDERATION_DENIED_SERVERS=[synapse.server_name]):
        r = api.get("federation/searchPublicRooms", serverName=synapse.server_name)
        assert r["_status"] == 400 and "not allowed" in r["error"], r


def test_invites_are_checked_before_they_are_sent(fed: ConcordTLS, synapse: SynapseServer, outbox_pump: Any,
                                                  make_user: Any, live_url: str) -> None:
    """A mistyped user, a server that does not answer, a server the room's ACL refuses: each a
    clear error at once, and nothing left behind (the room is not federated for it, no puppet)."""
    from accounts.models import User
    from federation.bridge.portals import ensure_portal
    from federation.handlers.room_events import send_event
    from federation.models import MatrixRoom
    from rooms.models import Room

    make_user("checker", name="Checker")
    api = ConcordApi(live_url, "checker")
    rid = api.post("groups.create", name="checked")["group"]["_id"]
    for mxid, words in ((f"@nobody:{synapse.server_name}", "There is no user"),
                        ("@someone:nowhere.invalid", "could not be reached")):
        r = api.post("groups.invite", roomId=rid, username=mxid)
        assert r["_status"] == 400 and r["errorType"] == "error-federation-invite" and words in r["error"], r
        assert not User.objects.filter(username=mxid).exists()
    assert not MatrixRoom.objects.filter(chat_room_id=rid).exists()
    # A real user on an allowed server is invited.
    real = SynapseUser(synapse, "checkedreal")
    assert api.post("groups.invite", roomId=rid, username=real.user_id)["success"]
    # The room's server ACL now refuses Synapse: the next invite there is refused here.
    mroom = ensure_portal(Room.objects.get(id=rid))
    send_event(mroom.room_id, "m.room.server_acl", f"@checker:{fed.server_name}",
               {"allow": [fed.server_name.split(":")[0]], "deny": [], "allow_ip_literals": True}, state_key="")
    other = SynapseUser(synapse, "checkedother")
    r = api.post("groups.invite", roomId=rid, username=other.user_id)
    assert r["_status"] == 400 and "server ACL" in r["error"], r


def test_room_owners_edit_the_server_acl(fed: ConcordTLS, synapse: SynapseServer, outbox_pump: Any,
                                          make_user: Any, live_url: str) -> None:
    make_user("aclowner", name="ACL Owner")
    make_user("aclmember", name="ACL Member")
    owner, member = ConcordApi(live_url, "aclowner"), ConcordApi(live_url, "aclmember")
    rid = owner.post("channels.create", name="guarded", members=["aclmember"])["channel"]["_id"]
    alias = owner.post("rooms.federation", roomId=rid, roomVersion="11")["federation"]["alias"]
    sam = SynapseUser(synapse, "aclsam")
    room_id = sam.join(alias).json()["room_id"]
    wait_for(lambda: _member_state(rid, sam.user_id) == "joined", what="sam joined in Concord")
    info = owner.get("rooms.federation", roomId=rid)["federation"]
    assert info["serverAcl"] is None and synapse.server_name in info["servers"]
    synapse_host = synapse.server_name.split(":")[0]

    r = member.post("rooms.setServerAcl", roomId=rid, deny=[synapse_host])
    assert r["_status"] == 400, r
    r = owner.post("rooms.setServerAcl", roomId=rid, allow=["other.example"])
    assert r["_status"] == 400 and "shut this server" in r["error"], r
    r = owner.post("rooms.setServerAcl", roomId=rid, deny=["not a pattern"])
    assert r["_status"] == 400, r
    r = owner.post("rooms.setServerAcl", roomId=rid, deny=[synapse_host.upper()])
    assert r["success"] and r["serverAcl"]["deny"] == [synapse_host] and r["serverAcl"]["allow"] == ["*"], r
    wait_for(lambda: (sam.state(room_id, "m.room.server_acl") or {}).get("deny") == [synapse_host],
             what="the ACL in Synapse")
    # Synapse's server is denied now: what its user sends no longer reaches the chat.
    sam.send(room_id, "after the ACL")
    owner.post("chat.postMessage", roomId=rid, text="still here")
    import time as _time

    _time.sleep(2)
    assert "after the ACL" not in _texts(rid)
    assert owner.get("rooms.federation", roomId=rid)["federation"]["serverAcl"]["deny"] == [synapse_host]


def test_remote_public_rooms_past_the_size_cap_are_refused(fed: ConcordTLS, synapse: SynapseServer,
                                                           outbox_pump: Any, make_user: Any, live_url: str,
                                                           settings: Any) -> None:
    make_user("capped", name="Capped")
    api = ConcordApi(live_url, "capped")
    host, guest = SynapseUser(synapse, "caphost"), SynapseUser(synapse, "capguest")
    big = host.create_room(preset="public_chat", visibility="public", name="Crowded hall")
    assert guest.join(big).status_code == 200
    settings.CONCORD_FEDERATION_MAX_REMOTE_ROOM_SIZE = 1
    r = api.post("federation/joinExternalPublicRoom", externalRoomId=big, serverName=synapse.server_name,
                 roomName="Crowded")
    assert r["_status"] == 400 and r["errorType"] == "error-room-too-large" and "2 members" in r["error"], r
    # Joining by room ID (channels.join) meets the same cap, sized from the room's server's directory.
    r = api.post("channels.join", roomId=big, via=[synapse.server_name])
    assert r["_status"] == 400 and r["errorType"] == "error-room-too-large", r
    settings.CONCORD_FEDERATION_MAX_REMOTE_ROOM_SIZE = 2
    assert api.post("federation/joinExternalPublicRoom", externalRoomId=big, serverName=synapse.server_name,
                    roomName="Crowded")["success"]
