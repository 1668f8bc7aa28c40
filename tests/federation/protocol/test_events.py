"""Building, validating, verifying and redacting events."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from federation.protocol import (
    CREATE_KEY,
    Event,
    InMemoryKeyStore,
    InvalidEvent,
    SignatureError,
    build_event,
    check_content_hash,
    redact_event,
    room_id_from_create_event,
    validate_pdu,
    verify_event,
)
from federation.protocol.canonical_json import encode_canonical_json
from federation.protocol.room_versions import ROOM_V10, ROOM_V11, ROOM_V12, RoomVersion
from federation.protocol.validation import MAX_PDU_BYTES

from .roomkit import Room, key_for

VERSIONS = [ROOM_V10, ROOM_V11, ROOM_V12]
ALICE = "@alice:a.test"
BOB = "@bob:b.test"


@pytest.fixture(params=VERSIONS, ids=lambda rv: f"v{rv.identifier}")
def rv(request: pytest.FixtureRequest) -> RoomVersion:
    return request.param  # type: ignore[no-any-return]


def keys() -> InMemoryKeyStore:
    ks = InMemoryKeyStore()
    for server in ("a.test", "b.test", "c.test"):
        ks.add_key(server, key_for(server).verify_key)
    return ks


class TestBuilder:
    def test_create_and_room_ids(self, rv: RoomVersion) -> None:
        room = Room(rv)
        create = room.create
        assert create.depth == 1 and create.prev_event_ids == () and create.auth_event_ids == ()
        if rv.room_id_is_create_hash:
            assert "room_id" not in create.pdu
            assert create.room_id == "!" + create.event_id[1:]
            assert room_id_from_create_event(create.pdu, rv) == create.room_id
            assert "creator" not in create.content
        else:
            assert create.pdu["room_id"] == create.room_id
            assert create.content.get("creator") == (None if rv.implicit_room_creator else ALICE)
        assert create.content["room_version"] == rv.identifier
        assert "event_id" not in create.pdu

    def test_auth_events_selection(self, rv: RoomVersion) -> None:
        room = Room.standard(rv, join_rule="restricted")
        ev = room.member(BOB, "join", content={"join_authorised_via_users_server": ALICE})
        expected = {
            room.state[("m.room.power_levels", "")],
            room.state[("m.room.join_rules", "")],
            room.state[("m.room.member", ALICE)],
        }
        if rv.create_in_auth_events:
            expected.add(room.create.event_id)
        assert set(ev.auth_event_ids) == expected
        assert (room.create.event_id in ev.effective_auth_event_ids)
        msg = room.make(ALICE, "m.room.message", {"body": "x"})
        assert len(msg.auth_event_ids) == (3 if rv.create_in_auth_events else 2)
        assert msg.depth == room.extremities[0].depth + 1

    def test_prev_events_limits(self, rv: RoomVersion) -> None:
        room = Room.standard(rv)
        with pytest.raises(InvalidEvent):
            room.make(ALICE, "m.room.message", {}, prev=[])
        with pytest.raises(InvalidEvent):
            room.make(ALICE, "m.room.message", {}, prev=[room.create] * 21)

    def test_redacts_placement(self, rv: RoomVersion) -> None:
        room = Room.standard(rv)
        red = room.make(ALICE, "m.room.redaction", {}, redacts="$target")
        if rv.redacts_in_content:
            assert red.content["redacts"] == "$target" and "redacts" not in red.pdu
        else:
            assert red.pdu["redacts"] == "$target" and "redacts" not in red.content
        assert red.redacts == "$target"
        # v11+ keeps "redacts" through redaction; v10 drops the top-level key.
        assert (redact_event(red.pdu, rv).get("content", {}).get("redacts") == "$target") == rv.redacts_in_content

    def test_build_event_outside_room_needs_state(self) -> None:
        room = Room(ROOM_V12)
        ev = build_event(
            ROOM_V12, room_id=room.room_id, event_type="m.room.member", sender=ALICE,
            state_key=ALICE, content={"membership": "join"}, prev_events=[room.create],
            state={CREATE_KEY: room.create.event_id}, origin_server_ts=5, server_name="a.test",
            signing_key=key_for("a.test"),
        )
        assert ev.auth_event_ids == ()  # v12: the create event is implied


class TestValidation:
    def good(self, rv: RoomVersion) -> dict[str, Any]:
        room = Room.standard(rv)
        return dict(room.make(ALICE, "m.room.message", {"body": "hi"}).pdu)

    def test_good_events(self, rv: RoomVersion) -> None:
        room = Room.standard(rv)
        for ev in room.store.events.values():
            validate_pdu(dict(ev.pdu), rv)
        validate_pdu(self.good(rv), rv)

    @pytest.mark.parametrize(
        "mutate",
        [
            lambda p: p.pop("type"),
            lambda p: p.update(type=5),
            lambda p: p.update(sender="nobody"),
            lambda p: p.update(sender="@" + "a" * 250 + ":a.test"),
            lambda p: p.update(type="t" * 256),
            lambda p: p.update(state_key="é" * 128),
            lambda p: p.update(room_id="no-sigil"),
            lambda p: p.update(origin_server_ts="1"),
            lambda p: p.update(origin_server_ts=True),
            lambda p: p.update(depth=-1),
            lambda p: p.update(depth=2**53),
            lambda p: p.update(content=[]),
            lambda p: p.update(hashes={}),
            lambda p: p.update(signatures={"a.test": "x"}),
            lambda p: p.update(prev_events=["$x"] * 21),
            lambda p: p.update(auth_events=["$x"] * 11),
            lambda p: p.update(prev_events=["x"]),
            lambda p: p["content"].update(n=1.5),
            lambda p: p["content"].update(n=2**53),
            lambda p: p["content"].update(body="x" * MAX_PDU_BYTES),
            lambda p: p.update(unsigned=[]),
        ],
    )
    def test_bad_events(self, rv: RoomVersion, mutate: Any) -> None:
        pdu = copy.deepcopy(self.good(rv))
        mutate(pdu)
        with pytest.raises(InvalidEvent):
            validate_pdu(pdu, rv)

    def test_size_limit_is_exact(self, rv: RoomVersion) -> None:
        pdu = self.good(rv)
        pdu["content"]["body"] = ""
        size = len(encode_canonical_json(pdu))
        pdu["content"]["body"] = "x" * (MAX_PDU_BYTES - size)
        validate_pdu(pdu, rv)
        pdu["content"]["body"] += "x"
        with pytest.raises(InvalidEvent):
            validate_pdu(pdu, rv)

    def test_v12_room_ids_have_no_server(self) -> None:
        pdu = self.good(ROOM_V12)
        pdu["room_id"] = "!abc:a.test"
        with pytest.raises(InvalidEvent):
            validate_pdu(pdu, ROOM_V12)


class TestVerification:
    def test_good_event(self, rv: RoomVersion) -> None:
        room = Room.standard(rv)
        ev = room.make(ALICE, "m.room.message", {"body": "hi"}, extra={"unsigned": {"age": 1}})
        pdu = dict(ev.pdu)
        validate_pdu(pdu, rv)
        checked = verify_event(pdu, rv, keys(), prechecked=True)
        assert checked.content_hash_ok and checked.event.event_id == ev.event_id
        assert checked.event.content == {"body": "hi"}

    def test_tampered_content_gives_redacted_copy(self, rv: RoomVersion) -> None:
        room = Room.standard(rv)
        ev = room.make(ALICE, "m.room.message", {"body": "hi"})
        pdu = dict(ev.pdu, content={"body": "tampered"})
        assert not check_content_hash(pdu)
        checked = verify_event(pdu, rv, keys())
        assert not checked.content_hash_ok
        assert checked.event.content == {} and checked.event.event_id == ev.event_id

    def test_tampered_essential_field_fails_signature(self, rv: RoomVersion) -> None:
        room = Room.standard(rv)
        ev = room.make(ALICE, "m.room.member", {"membership": "join"}, BOB)
        pdu = dict(ev.pdu, content={"membership": "ban"})
        with pytest.raises(SignatureError):
            verify_event(pdu, rv, keys())

    def test_missing_or_unknown_signatures(self, rv: RoomVersion) -> None:
        room = Room.standard(rv)
        ev = room.make(ALICE, "m.room.message", {"body": "hi"})
        with pytest.raises(SignatureError):
            verify_event(dict(ev.pdu, signatures={}), rv, keys())
        with pytest.raises(SignatureError):
            verify_event(dict(ev.pdu), rv, InMemoryKeyStore())

    def test_expired_key(self, rv: RoomVersion) -> None:
        room = Room.standard(rv)
        ev = room.make(ALICE, "m.room.message", {"body": "hi"}, ts=10_000)
        ks = InMemoryKeyStore()
        ks.add_key("a.test", key_for("a.test").verify_key, valid_until_ts=9_999)
        with pytest.raises(SignatureError):
            verify_event(dict(ev.pdu), rv, ks)
        ks.add_key("a.test", key_for("a.test").verify_key, valid_until_ts=10_000)
        verify_event(dict(ev.pdu), rv, ks)

    def test_restricted_join_needs_authorising_server_signature(self, rv: RoomVersion) -> None:
        room = Room.standard(rv, join_rule="restricted")
        content = {"join_authorised_via_users_server": "@carol:c.test"}
        unsigned = room.member(BOB, "join", content=content)
        with pytest.raises(SignatureError):
            verify_event(dict(unsigned.pdu), rv, keys())
        cosigned = room.member(BOB, "join", content=content, cosigners=["c.test"])
        assert verify_event(dict(cosigned.pdu), rv, keys()).content_hash_ok

    def test_event_wrapper(self, rv: RoomVersion) -> None:
        room = Room.standard(rv)
        ev = room.make(ALICE, "m.room.topic", {"topic": "t"}, "")
        again = Event(dict(ev.pdu), rv)
        assert again == ev and hash(again) == hash(ev)
        assert again.state_key_tuple == ("m.room.topic", "")
        assert ev.is_state and "m.room.topic" in repr(ev)
        with pytest.raises(InvalidEvent):
            Event({"type": "x"}, rv)
