"""check_pdu agrees with validate_pdu + verify_event; the benchmark runs."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from federation.protocol import (
    InMemoryKeyStore,
    InvalidEvent,
    ProtocolError,
    check_pdu,
    validate_pdu,
    verify_event,
)
from federation.protocol.canonical_json import (
    CanonicalJsonError,
    check_canonical_value,
    encode_canonical_json,
    encode_parsed_json,
)
from federation.protocol.room_versions import ROOM_V10, ROOM_V11, ROOM_V12
from federation.protocol.signing import _open_public
from federation.protocol.validation import MAX_PDU_BYTES

from .roomkit import Room, key_for
from .strategies import json_value, pdus

numbers = st.one_of(
    st.integers(min_value=-(2**60), max_value=2**60),
    st.floats(allow_nan=False, allow_infinity=False),
)
values = st.recursive(
    st.one_of(st.none(), st.booleans(), numbers, st.text(alphabet=':,[]1.e" \\', max_size=10)),
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(alphabet=':,[1.e"', max_size=5), c, max_size=4),
    max_leaves=15,
)


@settings(max_examples=300, deadline=None)
@given(value=values)
def test_encode_parsed_json_refuses_exactly_what_the_walk_refuses(value: Any) -> None:
    try:
        check_canonical_value(value)
        expected: bytes | None = encode_canonical_json(value)
    except CanonicalJsonError:
        expected = None
    try:
        got: bytes | None = encode_parsed_json(value)
    except CanonicalJsonError:
        got = None
    assert got == expected


def _keys() -> InMemoryKeyStore:
    ks = InMemoryKeyStore()
    for server in ("a.test", "b.test", "x.test"):
        ks.add_key(server, key_for(server).verify_key)
    return ks


def _verdict(fn: Any) -> Any:
    try:
        checked = fn()
        return ("ok", checked.content_hash_ok, checked.event.event_id, dict(checked.event.pdu))
    except ProtocolError as e:
        return type(e).__name__


def _two_step(pdu: Any, rv: Any) -> Any:
    validate_pdu(pdu, rv)
    return verify_event(pdu, rv, _keys(), prechecked=True)


@settings(max_examples=120, deadline=None)
@given(rv=st.sampled_from([ROOM_V10, ROOM_V11, ROOM_V12]), pdu=pdus(), extra=json_value)
def test_check_pdu_matches_validate_then_verify(rv: Any, pdu: dict[str, Any], extra: Any) -> None:
    pdu["content"]["extra"] = extra
    assert _verdict(lambda: check_pdu(pdu, rv, _keys())) == _verdict(lambda: _two_step(pdu, rv))


@pytest.mark.parametrize("rv", [ROOM_V10, ROOM_V11, ROOM_V12], ids=lambda rv: f"v{rv.identifier}")
def test_check_pdu_on_real_events_and_size_limit(rv: Any) -> None:
    room = Room.standard(rv)
    ev = room.make("@alice:a.test", "m.room.message", {"body": ""}, extra={"unsigned": {"age": 3}})
    assert check_pdu(dict(ev.pdu), rv, _keys()).event.event_id == ev.event_id
    pdu = dict(ev.pdu)
    size = len(encode_canonical_json(pdu))
    pdu["content"] = {"body": "x" * (MAX_PDU_BYTES - size)}
    assert len(encode_canonical_json(pdu)) == MAX_PDU_BYTES
    assert not check_pdu(pdu, rv, _keys()).content_hash_ok  # fits; content changed
    pdu["content"] = {"body": "x" * (MAX_PDU_BYTES - size + 1)}
    with pytest.raises(InvalidEvent):
        check_pdu(pdu, rv, _keys())
    with pytest.raises(InvalidEvent):
        check_pdu([], rv, _keys())


def test_signature_check_fallback() -> None:
    key = key_for("a.test")
    sig = key.sign(b"msg")
    assert _open_public(sig + b"msg", key.verify_key.key_bytes)
    assert not _open_public(sig + b"msh", key.verify_key.key_bytes)


def test_benchmark_smoke(capsys: pytest.CaptureFixture[str]) -> None:
    from bench.protocol_bench import main

    assert main(["--events", "20", "--state", "60", "--conflicts", "10", "--repeat", "1", "--versions", "12"]) == 0
    out = capsys.readouterr().out
    assert "ratio" in out and "same result" in out


@pytest.mark.parametrize("rv", [ROOM_V10, ROOM_V11, ROOM_V12], ids=lambda rv: f"v{rv.identifier}")
def test_check_pdu_after_strict_parse(rv: Any) -> None:
    from federation.protocol import parse_json
    from federation.protocol.canonical_json import CanonicalJsonError as CJE

    room = Room.standard(rv)
    ev = room.make("@alice:a.test", "m.room.message", {"body": "1.5 is not a float here", "n": 3})
    wire = encode_canonical_json(dict(ev.pdu))
    checked = check_pdu(parse_json(wire), rv, _keys(), parsed_strictly=True)
    assert checked.content_hash_ok and checked.event.event_id == ev.event_id
    # The strict parser is what makes skipping the number scan safe.
    for bad in (wire.replace(b'"n":3', b'"n":3.0'), wire.replace(b'"n":3', b'"n":1e400'),
                wire.replace(b'"n":3', b'"n":9007199254740992')):
        with pytest.raises(CJE):
            parse_json(bad)
