"""State resolution v2 / v2.1 on hand-built conflicts."""

from __future__ import annotations

import pytest

from federation.protocol import (
    RoomVersion,
    check_auth_rules,
    resolve_state,
)
from federation.protocol.room_versions import ROOM_V10, ROOM_V11, ROOM_V12

from .roomkit import Room, fork

ALICE = "@alice:a.test"
BOB = "@bob:b.test"
CAROL = "@carol:c.test"
DAVE = "@dave:d.test"

VERSIONS = [ROOM_V10, ROOM_V11, ROOM_V12]
PL = ("m.room.power_levels", "")
TOPIC = ("m.room.topic", "")
JR = ("m.room.join_rules", "")


@pytest.fixture(params=VERSIONS, ids=lambda rv: f"v{rv.identifier}")
def rv(request: pytest.FixtureRequest) -> RoomVersion:
    return request.param  # type: ignore[no-any-return]


def users(rv: RoomVersion, **levels: int) -> dict[str, int]:
    out = {} if rv.creators_infinite_power else {ALICE: 100}
    for name, level in levels.items():
        out[f"@{name}:{name[0]}.test"] = level
    return out


def resolve(room: Room, *branches: Room) -> dict[tuple[str, str], str]:
    result = resolve_state(room.rv, [b.state for b in branches], room.store, room.room_id)
    # The order of the states never matters.
    assert result == resolve_state(room.rv, [b.state for b in reversed(branches)], room.store)
    return result


def merge(room: Room, *branches: Room) -> Room:
    """Continue ``room`` from a merge of the branches, with resolved state."""
    room.state = resolve(room, *branches)
    room.extremities = [b.extremities[0] for b in branches]
    return room


def test_no_conflict_is_identity(rv: RoomVersion) -> None:
    room = Room.standard(rv)
    assert resolve(room, room, fork(room)) == room.state


def test_ban_beats_concurrent_activity(rv: RoomVersion) -> None:
    room = Room.standard(rv, state_default=0)
    room.join(BOB)
    a, b = fork(room), fork(room)
    ban = a.apply(a.member(ALICE, "ban", BOB))
    b.send(BOB, "m.room.topic", {"topic": "bob's"}, "")
    b.apply(b.member(BOB, "join", content={"displayname": "Bobby"}))
    state = resolve(room, a, b)
    assert state[("m.room.member", BOB)] == ban.event_id
    # Bob's topic was authorised by his membership, which the ban replaced.
    assert TOPIC not in state


def test_ban_vs_rejoin_after_leave(rv: RoomVersion) -> None:
    room = Room.standard(rv)
    room.join(BOB)
    a, b = fork(room), fork(room)
    ban = a.apply(a.member(ALICE, "ban", BOB))
    b.apply(b.member(BOB, "leave"))
    b.join(BOB)
    assert resolve(room, a, b)[("m.room.member", BOB)] == ban.event_id


def test_power_level_race_demotion_wins(rv: RoomVersion) -> None:
    # Bob (50) kicks Carol and sets the topic while Alice demotes him to 0.
    room = Room.standard(rv, users=users(rv, bob=50))
    room.join(BOB)
    room.join(CAROL)
    t0 = room.send(ALICE, "m.room.topic", {"topic": "original"}, "")
    a, b = fork(room), fork(room)
    demote = a.power_levels(ALICE, users(rv, bob=0))
    b.apply(b.member(BOB, "leave", CAROL))
    b.send(BOB, "m.room.topic", {"topic": "bob was here"}, "")
    state = resolve(room, a, b)
    assert state[PL] == demote.event_id
    assert room.store.events[state[("m.room.member", CAROL)]].membership == "join"
    assert state[TOPIC] == t0.event_id


def test_concurrent_power_level_changes_higher_sender_first(rv: RoomVersion) -> None:
    # Two admins change power levels concurrently; both changes are valid on
    # their own.  The reverse topological power order applies the event whose
    # sender has more power first, so the other event (by the lower sender,
    # also checked against the first) ends up on top if it still passes.
    room = Room.standard(rv, users=users(rv, bob=90))
    room.join(BOB)
    a, b = fork(room), fork(room)
    a.power_levels(ALICE, users(rv, bob=90, carol=10))
    pl_b = b.power_levels(BOB, users(rv, bob=90, dave=20))
    state = resolve(room, a, b)
    # Alice's event sorts first (higher power), Bob's is applied after it.
    assert state[PL] == pl_b.event_id


def test_topic_conflict_later_timestamp_wins(rv: RoomVersion) -> None:
    room = Room.standard(rv, users=users(rv, bob=50))
    room.join(BOB)
    a, b = fork(room), fork(room)
    early = a.send(ALICE, "m.room.topic", {"topic": "A"}, "", ts=2_000_000)
    late = b.send(BOB, "m.room.topic", {"topic": "B"}, "", ts=2_000_001)
    assert resolve(room, a, b)[TOPIC] == late.event_id
    room2 = Room.standard(rv, users=users(rv, bob=50), ts=3_000_000)
    room2.join(BOB)
    a2, b2 = fork(room2), fork(room2)
    late2 = a2.send(ALICE, "m.room.topic", {"topic": "A"}, "", ts=4_000_001)
    b2.send(BOB, "m.room.topic", {"topic": "B"}, "", ts=4_000_000)
    assert resolve(room2, a2, b2)[TOPIC] == late2.event_id
    assert early.event_id != late.event_id


def test_topic_reset_by_removing_power(rv: RoomVersion) -> None:
    # Synapse's "topic reset" scenario: Bob's topic was set while he had power;
    # a concurrent demotion makes it fail the iterative checks.
    room = Room.standard(rv, users=users(rv, bob=50))
    room.join(BOB)
    t1 = room.send(ALICE, "m.room.topic", {"topic": "T1"}, "")
    a, b = fork(room), fork(room)
    b.send(BOB, "m.room.topic", {"topic": "T2"}, "")
    a.power_levels(ALICE, users(rv, bob=0))
    assert resolve(room, a, b)[TOPIC] == t1.event_id


def test_join_rules_change_vs_join(rv: RoomVersion) -> None:
    room = Room.standard(rv, join_rule="public")
    a, b = fork(room), fork(room)
    jr = a.join_rules(ALICE, "invite")
    b.join(CAROL)
    state = resolve(room, a, b)
    assert state[JR] == jr.event_id
    assert ("m.room.member", CAROL) not in state


def test_mainline_orders_by_power_level_history(rv: RoomVersion) -> None:
    # A topic authorised by an older power levels event sorts before one
    # authorised by a newer one, whatever the timestamps say.
    room = Room.standard(rv, users=users(rv, bob=50))
    room.join(BOB)
    a, b = fork(room), fork(room)
    old_pl_topic = a.send(BOB, "m.room.topic", {"topic": "old"}, "", ts=9_000_000)
    b.power_levels(ALICE, users(rv, bob=50, carol=1))
    new_pl_topic = b.send(ALICE, "m.room.topic", {"topic": "new"}, "", ts=8_000_000)
    state = resolve(room, a, b)
    assert state[TOPIC] == new_pl_topic.event_id
    assert old_pl_topic.event_id != new_pl_topic.event_id


def test_merged_state_authorises_merge_event(rv: RoomVersion) -> None:
    room = Room.standard(rv)
    room.join(BOB)
    a, b = fork(room), fork(room)
    a.apply(a.member(ALICE, "ban", BOB))
    b.send(ALICE, "m.room.name", {"name": "n"}, "")
    merged = merge(room, a, b)
    ev = merged.make(ALICE, "m.room.message", {"body": "after"})
    assert len(ev.prev_event_ids) == 2
    check_auth_rules(ev, merged.state_events())


def test_rejected_events_never_enter_state(rv: RoomVersion) -> None:
    room = Room.standard(rv, state_default=0)
    room.join(BOB)
    a, b = fork(room), fork(room)
    t_a = a.send(ALICE, "m.room.topic", {"topic": "a"}, "")
    t_b = b.send(BOB, "m.room.topic", {"topic": "b"}, "")
    room.store.rejected.add(t_b.event_id)
    assert resolve(room, a, b)[TOPIC] == t_a.event_id


def test_three_way_conflict(rv: RoomVersion) -> None:
    room = Room.standard(rv, users=users(rv, bob=60, carol=70), state_default=0)
    room.join(BOB)
    room.join(CAROL)
    a, b, c = fork(room), fork(room), fork(room)
    a.send(ALICE, "m.room.name", {"name": "A"}, "", ts=5)
    b.send(BOB, "m.room.name", {"name": "B"}, "", ts=6)
    kick = c.apply(c.member(CAROL, "leave", BOB))
    state = resolve(room, a, b, c)
    assert state[("m.room.member", BOB)] == kick.event_id
    # Bob's name change loses its authorisation once he is kicked.
    assert room.store.events[state[("m.room.name", "")]].content["name"] == "A"


def test_v12_starts_from_empty_state() -> None:
    # v2.1 replays the conflicted power events from nothing, using the
    # conflicted subgraph, so an unconflicted ban still removes a conflicted
    # grant of power the banned user made.
    rv = ROOM_V12
    room = Room.standard(rv, users=users(rv, bob=100))
    room.join(BOB)
    room.join(CAROL)
    a, b = fork(room), fork(room)
    a.power_levels(BOB, users(rv, bob=100, carol=100))
    b.send(ALICE, "m.room.name", {"name": "x"}, "")
    state = resolve(room, a, b)
    assert room.store.events[state[PL]].content["users"].get(CAROL) == 100


def test_unknown_or_foreign_events_are_refused(rv: RoomVersion) -> None:
    from federation.protocol import StateResolutionError

    room = Room.standard(rv)
    a, b = fork(room), fork(room)
    a.send(ALICE, "m.room.name", {"name": "A"}, "")
    b.send(ALICE, "m.room.name", {"name": "B"}, "")
    with pytest.raises(StateResolutionError):
        resolve_state(rv, [a.state, {**b.state, ("m.room.name", ""): "$unknown"}], room.store)
    with pytest.raises(StateResolutionError):
        resolve_state(rv, [a.state, b.state], room.store, room_id="!elsewhere:a.test")
    assert resolve_state(rv, [], room.store) == {}
    assert resolve_state(rv, [a.state], room.store) == a.state
