"""One good and one bad event per authorization rule, in rooms v10, v11 and v12.

Test names carry the rule numbers of room versions 10/11; v12 inserted rule 2
(and 10.4) and shifted the rest, which :func:`num` applies to expectations.
"""

from __future__ import annotations

from typing import Any

import pytest

from federation.protocol import (
    AuthError,
    Event,
    RoomVersion,
    authorize_event,
    check_auth_rules,
    hash_and_sign_event,
    redaction_needs_no_recheck,
    sign_json,
)
from federation.protocol.auth_rules import _n as num
from federation.protocol.room_versions import ROOM_V10, ROOM_V11, ROOM_V12

from .roomkit import Room, key_for

ALICE = "@alice:a.test"  # creator
BOB = "@bob:b.test"
CAROL = "@carol:c.test"
DAVE = "@dave:a.test"

VERSIONS = [ROOM_V10, ROOM_V11, ROOM_V12]


@pytest.fixture(params=VERSIONS, ids=lambda rv: f"v{rv.identifier}")
def rv(request: pytest.FixtureRequest) -> RoomVersion:
    return request.param  # type: ignore[no-any-return]


def outcome(room: Room, event: Event) -> str | None:
    """None if allowed, else the rule that rejected it.

    Checks against the event's auth events and, for agreement, against the
    room's current state.
    """
    try:
        authorize_event(event, room.store)
        via_auth = None
    except AuthError as e:
        via_auth = e.rule
    try:
        check_auth_rules(event, room.state_events())
        via_state = None
    except AuthError as e:
        via_state = e.rule
    if via_auth is None or via_state is None or via_auth == via_state:
        return via_auth if via_auth is not None else via_state
    return via_auth


def repack(room: Room, pdu: dict[str, Any]) -> Event:
    """Re-hash and re-sign a hand-edited PDU."""
    server = pdu["sender"].split(":", 1)[1]
    return Event(hash_and_sign_event(pdu, room.rv, server, key_for(server)), room.rv)


def expect(room: Room, event: Event, rule: str | None) -> None:
    want = None if rule is None else num(room.rv, rule)
    assert outcome(room, event) == want


# --------------------------------------------------------------------------- rule 1


def test_1_create_good(rv: RoomVersion) -> None:
    room = Room(rv)
    authorize_event(room.create, room.store)


def test_1_1_create_with_prev_events(rv: RoomVersion) -> None:
    room = Room(rv)
    pdu = dict(room.create.pdu, prev_events=[room.create.event_id])
    expect(room, repack(room, pdu), "1.1")


def test_1_2_create_room_id(rv: RoomVersion) -> None:
    room = Room(rv)
    pdu = dict(room.create.pdu)
    pdu["room_id"] = "!x:elsewhere.test"
    expect(room, repack(room, pdu), "1.2")
    if not rv.room_id_is_create_hash:
        pdu["room_id"] = "!x:a.test"
        expect(room, repack(room, pdu), None)


def test_1_3_unrecognised_room_version(rv: RoomVersion) -> None:
    room = Room(rv)
    pdu = dict(room.create.pdu, content={**room.create.content, "room_version": "99"})
    expect(room, repack(room, pdu), "1.3")


def test_1_4_v10_creator_required() -> None:
    room = Room(ROOM_V10)
    content = {k: v for k, v in room.create.content.items() if k != "creator"}
    expect(room, repack(room, dict(room.create.pdu, content=content)), "1.4")


def test_1_4_v12_additional_creators() -> None:
    room = Room(ROOM_V12, create_content={"additional_creators": [BOB]})
    authorize_event(room.create, room.store)
    for bad in ["@bob:b.test", ["not-a-user"], [1], ["@bob:bad_host"]]:
        pdu = dict(room.create.pdu, content={**room.create.content, "additional_creators": bad})
        expect(room, repack(room, pdu), "1.4")


# --------------------------------------------------------------------------- rule 2 (v12)


def test_2_v12_room_id_must_name_accepted_create() -> None:
    room = Room.standard(ROOM_V12)
    good = room.make(ALICE, "m.room.message", {"body": "hi"})
    expect(room, good, None)
    # The create event rejected: every event of the room is rejected.
    room.store.add(room.create, rejected=True)
    assert outcome(room, good) == "2"
    room.store.add(room.create)
    # A room ID naming some other (non-create) event.
    pdu = dict(good.pdu, room_id="!" + room.extremities[0].event_id[1:])
    with pytest.raises(AuthError) as e:
        authorize_event(repack(room, pdu), room.store)
    assert e.value.rule == "2"


# --------------------------------------------------------------------------- rule 2 (v12: 3)


def test_2_1_duplicate_auth_events(rv: RoomVersion) -> None:
    room = Room.standard(rv)
    pl_old = room.state[("m.room.power_levels", "")]
    room.power_levels(ALICE, {ALICE: 100} if not rv.creators_infinite_power else {}, ban=40)
    good = room.make(ALICE, "m.room.message", {"body": "x"})
    expect(room, good, None)
    pdu = dict(good.pdu, auth_events=[*good.auth_event_ids, pl_old])
    expect(room, repack(room, pdu), "2.1")


def test_2_2_auth_event_not_selected(rv: RoomVersion) -> None:
    room = Room.standard(rv)
    good = room.make(ALICE, "m.room.message", {"body": "x"})
    jr = room.state[("m.room.join_rules", "")]
    pdu = dict(good.pdu, auth_events=[*good.auth_event_ids, jr])
    expect(room, repack(room, pdu), "2.2")
    if rv.room_id_is_create_hash:
        # 3.2 (v12): the create event must not be listed.
        pdu = dict(good.pdu, auth_events=[*good.auth_event_ids, room.create.event_id])
        assert outcome(room, repack(room, pdu)) == "3.2"


def test_2_3_rejected_auth_event(rv: RoomVersion) -> None:
    room = Room.standard(rv)
    room.join(BOB)
    bad_topic = room.make(BOB, "m.room.topic", {"topic": "mine"}, "")
    room.apply(bad_topic, rejected=True)
    room.state[("m.room.topic", "")] = bad_topic.event_id  # pretend it were cited
    msg = room.make(BOB, "m.room.message", {"body": "x"})
    pdu = dict(msg.pdu)
    pdu["auth_events"] = list(msg.auth_event_ids)
    expect(room, msg, None)
    # Make the sender's own membership a rejected event.
    member_id = room.state[("m.room.member", BOB)]
    room.store.rejected.add(member_id)
    assert outcome(room, msg) == num(rv, "2.3")


def test_2_4_no_create_in_auth_events() -> None:
    for rv in (ROOM_V10, ROOM_V11):
        room = Room.standard(rv)
        good = room.make(ALICE, "m.room.message", {"body": "x"})
        pdu = dict(good.pdu, auth_events=[a for a in good.auth_event_ids if a != room.create.event_id])
        with pytest.raises(AuthError) as e:
            authorize_event(repack(room, pdu), room.store)
        assert e.value.rule == "2.4"


def test_2_5_auth_event_from_other_room(rv: RoomVersion) -> None:
    room = Room.standard(rv)
    other = Room.standard(rv, store=room.store, ts=5_000_000)
    good = room.make(ALICE, "m.room.message", {"body": "x"})
    foreign_pl = other.state[("m.room.power_levels", "")]
    own_pl = room.state[("m.room.power_levels", "")]
    pdu = dict(good.pdu, auth_events=[foreign_pl if a == own_pl else a for a in good.auth_event_ids])
    expect(room, repack(room, pdu), "2.5")


# --------------------------------------------------------------------------- rule 3


def test_3_m_federate_false(rv: RoomVersion) -> None:
    room = Room(rv, create_content={"m.federate": False})
    room.join(ALICE)
    room.join_rules(ALICE, "public")
    expect(room, room.member(DAVE, "join"), None)  # same server as the creator
    expect(room, room.member(BOB, "join"), "3")


# --------------------------------------------------------------------------- rule 4: membership


def test_4_1_member_without_membership(rv: RoomVersion) -> None:
    room = Room.standard(rv)
    expect(room, room.make(BOB, "m.room.member", {"displayname": "b"}, BOB), "4.1")


def test_4_2_join_authorised_via_users_server_signature(rv: RoomVersion) -> None:
    room = Room.standard(rv, join_rule="restricted", users={DAVE: 0})
    room.join(DAVE)  # same server as alice
    content = {"join_authorised_via_users_server": CAROL}
    expect(room, room.member(BOB, "join", content=content), "4.2.1")
    # Signed by carol's server but carol is not joined: passes 4.2, fails 4.3.5.2.
    unsigned = room.member(BOB, "join", content=content, cosigners=["c.test"])
    expect(room, unsigned, "4.3.5.2")
    good = room.member(BOB, "join", content={"join_authorised_via_users_server": ALICE},
                       cosigners=["a.test"])
    expect(room, good, None)


def test_4_3_1_creator_first_join(rv: RoomVersion) -> None:
    room = Room(rv)
    expect(room, room.member(ALICE, "join"), None)
    # Anyone else's join straight after the create event finds no join rules: invite.
    expect(room, room.member(BOB, "join"), "4.3.7")


def test_4_3_2_join_for_someone_else(rv: RoomVersion) -> None:
    room = Room.standard(rv)
    expect(room, room.member(ALICE, "join", BOB), "4.3.2")
    expect(room, room.member(BOB, "join"), None)


def test_4_3_3_banned_user_cannot_join(rv: RoomVersion) -> None:
    room = Room.standard(rv)
    room.join(BOB)
    room.apply(room.member(ALICE, "ban", BOB))
    expect(room, room.member(BOB, "join"), "4.3.3")


@pytest.mark.parametrize("rule", ["invite", "knock"])
def test_4_3_4_invite_only(rv: RoomVersion, rule: str) -> None:
    room = Room.standard(rv, join_rule=rule)
    expect(room, room.member(BOB, "join"), "4.3.7")
    room.apply(room.member(ALICE, "invite", BOB))
    expect(room, room.member(BOB, "join"), None)


@pytest.mark.parametrize("rule", ["restricted", "knock_restricted"])
def test_4_3_5_restricted(rv: RoomVersion, rule: str) -> None:
    room = Room.standard(rv, join_rule=rule, users={DAVE: 0}, invite=10)
    room.join(DAVE)
    via = {"join_authorised_via_users_server": ALICE}
    # 4.3.5.2: no authoriser / authoriser not joined / too low to invite.
    expect(room, room.member(BOB, "join"), "4.3.5.2")
    expect(room, room.member(BOB, "join", content={"join_authorised_via_users_server": DAVE},
                             cosigners=["a.test"]), "4.3.5.2")
    expect(room, room.member(CAROL, "join", content={"join_authorised_via_users_server": "@x:c.test"},
                             cosigners=["c.test"]), "4.3.5.2")
    # 4.3.5.3: a joined member who may invite authorised it.
    expect(room, room.member(BOB, "join", content=via, cosigners=["a.test"]), None)
    # 4.3.5.1: invited users need no authoriser.
    room.apply(room.member(ALICE, "invite", CAROL))
    expect(room, room.member(CAROL, "join"), None)


def test_4_3_6_public(rv: RoomVersion) -> None:
    room = Room.standard(rv, join_rule="public")
    expect(room, room.member(BOB, "join"), None)


def test_4_3_7_unknown_join_rule(rv: RoomVersion) -> None:
    room = Room.standard(rv, join_rule="private")
    expect(room, room.member(BOB, "join"), "4.3.7")


def _third_party_invite(room: Room, token: str = "tok") -> tuple[Event, Any]:
    """Alice issues an m.room.third_party_invite signed by an identity server key."""
    id_key = key_for("id.test")
    tpi = room.send(ALICE, "m.room.third_party_invite", {
        "display_name": "b...", "key_validity_url": "https://id.test/valid",
        "public_key": id_key.verify_key.encode(),
    }, token)
    signed = sign_json({"mxid": BOB, "sender": ALICE, "token": token}, "id.test", id_key)
    return tpi, signed


def test_4_4_1_third_party_invite(rv: RoomVersion) -> None:
    room = Room.standard(rv, join_rule="invite")
    _, signed = _third_party_invite(room)

    def invite(content: dict[str, Any], sender: str = ALICE) -> Event:
        return room.member(sender, "invite", BOB, content={"third_party_invite": content})

    expect(room, invite({"display_name": "b", "signed": signed}), None)
    expect(room, invite({"display_name": "b"}), "4.4.1.2")
    expect(room, invite({"signed": {k: v for k, v in signed.items() if k != "token"}}), "4.4.1.3")
    expect(room, invite({"signed": {**signed, "mxid": CAROL}}), "4.4.1.4")
    expect(room, invite({"signed": {**signed, "token": "nope"}}), "4.4.1.5")
    forged = sign_json({"mxid": BOB, "sender": ALICE, "token": "tok"}, "id.test", key_for("evil"))
    expect(room, invite({"signed": forged}), "4.4.1.8")
    # 4.4.1.6: the invite must come from whoever issued the third-party invite.
    room.join(DAVE)
    expect(room, invite({"signed": signed}, sender=DAVE), "4.4.1.6")
    # 4.4.1.1: a banned target cannot be invited this way.
    room.apply(room.member(ALICE, "ban", BOB))
    expect(room, invite({"signed": signed}), "4.4.1.1")


def test_4_4_invites(rv: RoomVersion) -> None:
    room = Room.standard(rv, join_rule="invite", users={DAVE: 0}, invite=50)
    expect(room, room.member(BOB, "invite", CAROL), "4.4.2")  # 4.4.2 sender not joined
    expect(room, room.member(ALICE, "invite", BOB), None)  # 4.4.4
    room.apply(room.member(ALICE, "invite", DAVE))
    room.join(DAVE)
    expect(room, room.member(DAVE, "invite", BOB), "4.4.5")  # below invite level
    expect(room, room.member(ALICE, "invite", DAVE), "4.4.3")  # target joined
    room.apply(room.member(ALICE, "ban", CAROL))
    expect(room, room.member(ALICE, "invite", CAROL), "4.4.3")  # target banned


def test_4_5_leave_and_kick(rv: RoomVersion) -> None:
    room = Room.standard(rv, join_rule="knock", users={DAVE: 50}, kick=50, ban=60)
    expect(room, room.member(BOB, "leave"), "4.5.1")  # never in the room
    room.apply(room.member(ALICE, "invite", BOB))
    expect(room, room.member(BOB, "leave"), None)  # reject an invite
    room.apply(room.member(CAROL, "knock"))
    expect(room, room.member(CAROL, "leave"), None)  # rescind a knock
    room.apply(room.member(BOB, "join"))
    expect(room, room.member(BOB, "leave"), None)  # leave
    expect(room, room.member(BOB, "leave", ALICE), "4.5.5")  # 0 may not kick
    room.apply(room.member(ALICE, "invite", DAVE))
    room.join(DAVE)
    expect(room, room.member(CAROL, "leave", BOB), "4.5.2")  # kicker not joined
    expect(room, room.member(DAVE, "leave", BOB), None)  # 4.5.4 kick
    expect(room, room.member(DAVE, "leave", ALICE), "4.5.5")  # target not below
    room.apply(room.member(ALICE, "ban", BOB))
    expect(room, room.member(DAVE, "leave", BOB), "4.5.3")  # unban needs the ban level
    expect(room, room.member(ALICE, "leave", BOB), None)  # unban


def test_4_6_ban(rv: RoomVersion) -> None:
    room = Room.standard(rv, users={DAVE: 50})
    room.join(BOB)
    expect(room, room.member(CAROL, "ban", BOB), "4.6.1")
    expect(room, room.member(BOB, "ban", ALICE), "4.6.3")
    expect(room, room.member(ALICE, "ban", BOB), None)
    room.join(DAVE)
    expect(room, room.member(DAVE, "ban", ALICE), "4.6.3")
    expect(room, room.member(DAVE, "ban", DAVE), "4.6.3")


@pytest.mark.parametrize("rule", ["knock", "knock_restricted"])
def test_4_7_knock(rv: RoomVersion, rule: str) -> None:
    room = Room.standard(rv, join_rule=rule)
    expect(room, room.member(BOB, "knock"), None)
    expect(room, room.member(BOB, "knock", CAROL), "4.7.2")
    room.apply(room.member(ALICE, "invite", BOB))
    expect(room, room.member(BOB, "knock"), "4.7.4")
    public = Room.standard(rv, join_rule="public")
    expect(public, public.member(BOB, "knock"), "4.7.1")


def test_4_8_unknown_membership(rv: RoomVersion) -> None:
    room = Room.standard(rv)
    expect(room, room.member(ALICE, "foo", BOB), "4.8")


# --------------------------------------------------------------------------- rules 5-8


def test_5_sender_must_be_joined(rv: RoomVersion) -> None:
    room = Room.standard(rv)
    expect(room, room.make(BOB, "m.room.message", {"body": "x"}), "5")
    room.join(BOB)
    expect(room, room.make(BOB, "m.room.message", {"body": "x"}), None)


def test_6_third_party_invite_event(rv: RoomVersion) -> None:
    room = Room.standard(rv, invite=50)
    room.join(BOB)
    expect(room, room.make(ALICE, "m.room.third_party_invite", {"public_key": "x"}, "t"), None)
    expect(room, room.make(BOB, "m.room.third_party_invite", {"public_key": "x"}, "t"), "6.1")


def test_7_required_power_level(rv: RoomVersion) -> None:
    room = Room.standard(rv, events={"m.room.message": 10})
    room.join(BOB)
    expect(room, room.make(BOB, "m.room.topic", {"topic": "t"}, ""), "7")  # state_default 50
    expect(room, room.make(BOB, "m.room.message", {"body": "t"}), "7")
    expect(room, room.make(BOB, "m.reaction", {}), None)  # events_default 0
    expect(room, room.make(ALICE, "m.room.topic", {"topic": "t"}, ""), None)


def test_8_state_key_of_another_user(rv: RoomVersion) -> None:
    room = Room.standard(rv, state_default=0)
    room.join(BOB)
    expect(room, room.make(BOB, "m.custom", {}, ALICE), "8")
    expect(room, room.make(BOB, "m.custom", {}, BOB), None)


# --------------------------------------------------------------------------- rule 9: power levels


def _pl(room: Room, sender: str, content: dict[str, Any]) -> Event:
    return room.make(sender, "m.room.power_levels", content, "")


def _base_users(rv: RoomVersion, **extra: int) -> dict[str, int]:
    users = {} if rv.creators_infinite_power else {ALICE: 100}
    users.update({k.replace("_", "@", 1): v for k, v in extra.items()})
    return users


def test_9_1_to_9_3_value_types(rv: RoomVersion) -> None:
    room = Room.standard(rv)
    users = _base_users(rv)
    expect(room, _pl(room, ALICE, {"users": users, "ban": "50"}), "9.1")
    expect(room, _pl(room, ALICE, {"users": users, "kick": True}), "9.1")
    expect(room, _pl(room, ALICE, {"users": users, "events": {"m.x": "1"}}), "9.2")
    expect(room, _pl(room, ALICE, {"users": users, "notifications": []}), "9.2")
    expect(room, _pl(room, ALICE, {"users": {**users, "notauser": 1}}), "9.3")
    expect(room, _pl(room, ALICE, {"users": {**users, BOB: "1"}}), "9.3")
    expect(room, _pl(room, ALICE, {"users": users, "ban": 40, "events": {"m.x": 1}}), None)


def test_9_4_first_power_levels_event(rv: RoomVersion) -> None:
    room = Room(rv)
    room.join(ALICE)
    expect(room, _pl(room, ALICE, {"users": {BOB: 100}, "ban": 100}), None)


def test_10_4_v12_creators_not_in_users() -> None:
    room = Room.standard(ROOM_V12, create_content={"additional_creators": [BOB]})
    assert outcome(room, _pl(room, ALICE, {"users": {ALICE: 100}})) == "10.4"
    assert outcome(room, _pl(room, ALICE, {"users": {BOB: 100}})) == "10.4"
    assert outcome(room, _pl(room, ALICE, {"users": {CAROL: 100}})) is None


def test_9_5_to_9_9_changes(rv: RoomVersion) -> None:
    room = Room.standard(rv, users={DAVE: 50, CAROL: 50, BOB: 10}, ban=40,
                         events={"m.high": 80, "m.mid": 50})
    room.join(DAVE)
    old = room.state_events()[("m.room.power_levels", "")].content
    base = {k: v for k, v in old.items()}

    def change(**kw: Any) -> Event:
        return _pl(room, DAVE, {**base, **kw})

    users = dict(old["users"])
    expect(room, change(ban=45), None)  # within dave's level
    expect(room, change(ban=60), "9.5.2")  # new value above dave
    expect(room, change(events_default=0), None)
    high_ban = Room.standard(rv, users={DAVE: 50}, ban=70)
    high_ban.join(DAVE)
    hb = high_ban.state_events()[("m.room.power_levels", "")].content
    expect(high_ban, _pl(high_ban, DAVE, {**hb, "ban": 50}), "9.5.1")
    expect(room, change(events={"m.mid": 50}), "9.6.1")  # removing m.high (80 > 50)
    expect(room, change(events={"m.high": 80, "m.mid": 50, "m.new": 60}), "9.7.1")
    expect(room, change(events={"m.high": 80, "m.mid": 40}), None)
    expect(room, change(users={**users, CAROL: 10}), "9.8.1")  # peer at equal level
    expect(room, change(users={**users, DAVE: 20}), None)  # own entry may drop
    expect(room, change(users={**users, BOB: 60}), "9.9.1")
    expect(room, change(users={**users, BOB: 50}), None)


# --------------------------------------------------------------------------- rule 10, redactions, v12 creators


def test_10_other_events_and_redactions(rv: RoomVersion) -> None:
    room = Room.standard(rv, redact=50)
    room.join(BOB)
    msg = room.send(ALICE, "m.room.message", {"body": "x"})
    # The redact level is not an auth rule: bob may send the redaction ...
    red = room.make(BOB, "m.room.redaction", {}, redacts=msg.event_id)
    expect(room, red, None)
    assert red.redacts == msg.event_id
    # ... but a server must not apply it (different server, level too low).
    assert not redaction_needs_no_recheck(red, msg, room.state_events())
    assert redaction_needs_no_recheck(room.make(ALICE, "m.room.redaction", {}, redacts=msg.event_id),
                                      msg, room.state_events())
    # An explicit level for m.room.redaction is enforced by rule 7.
    room.power_levels(ALICE, _base_users(rv), events={"m.room.redaction": 50})
    expect(room, room.make(BOB, "m.room.redaction", {}, redacts=msg.event_id), "7")


def test_v12_creators_have_infinite_power() -> None:
    room = Room.standard(ROOM_V12, create_content={"additional_creators": [BOB]},
                         users={DAVE: 100})
    room.join(BOB)
    room.join(DAVE)
    assert outcome(room, room.member(DAVE, "leave", BOB)) == "5.5.5"  # 100 < infinity
    assert outcome(room, room.member(BOB, "ban", DAVE)) is None
    assert outcome(room, room.member(BOB, "ban", ALICE)) == "5.6.3"  # equal: infinite
    assert outcome(room, _pl(room, BOB, {"users": {DAVE: 100, CAROL: 2**53 - 1}})) is None


def test_rule_numbers_per_version() -> None:
    assert num(ROOM_V10, "4.3.2") == "4.3.2"
    assert num(ROOM_V11, "9.8.1") == "9.8.1"
    assert num(ROOM_V12, "4.3.2") == "5.3.2"
    assert num(ROOM_V12, "9.8.1") == "10.9.1"
    assert num(ROOM_V12, "9.1") == "10.1"
    assert num(ROOM_V12, "1.1") == "1.1"
