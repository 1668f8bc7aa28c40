"""Property tests (hypothesis) of invariants the protocol relies on."""

from __future__ import annotations

import json
import random
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from federation.protocol import (
    InvalidEvent,
    compute_event_id,
    redact_event,
    resolve_state,
    validate_pdu,
)
from federation.protocol.room_versions import ROOM_V10, ROOM_V11, ROOM_V12

from .dag_gen import generate_room
from .strategies import pdus

versions = st.sampled_from([ROOM_V10, ROOM_V11, ROOM_V12])


def _shuffled(value: Any, rng: random.Random) -> Any:
    """The same JSON value with every object's keys in another insertion order."""
    if isinstance(value, dict):
        items = list(value.items())
        rng.shuffle(items)
        return {k: _shuffled(v, rng) for k, v in items}
    if isinstance(value, list):
        return [_shuffled(v, rng) for v in value]
    return value


@settings(max_examples=150, deadline=None)
@given(rv=versions, pdu=pdus(), seed=st.integers(0, 2**32))
def test_event_id_stable_under_key_reordering(rv: Any, pdu: dict[str, Any], seed: int) -> None:
    reordered = _shuffled(pdu, random.Random(seed))
    assert compute_event_id(reordered, rv) == compute_event_id(pdu, rv)
    # Round-tripping through JSON text does not change it either.
    assert compute_event_id(json.loads(json.dumps(reordered)), rv) == compute_event_id(pdu, rv)


@settings(max_examples=150, deadline=None)
@given(rv=versions, pdu=pdus())
def test_redaction_idempotent(rv: Any, pdu: dict[str, Any]) -> None:
    once = redact_event(pdu, rv)
    assert redact_event(once, rv) == once
    # Redaction never changes the event ID.
    assert compute_event_id(once, rv) == compute_event_id(pdu, rv)


@settings(max_examples=25, deadline=None)
@given(rv=versions, seed=st.integers(0, 10_000), order_seed=st.integers(0, 2**32))
def test_state_resolution_independent_of_input_order(rv: Any, seed: int, order_seed: int) -> None:
    gen = generate_room(rv, seed, steps=40, merge_probability=0.0)
    states = [dict(b.state) for b in gen.branches]
    expected = resolve_state(rv, states, gen.room.store)
    rng = random.Random(order_seed)
    for _ in range(3):
        shuffled = [_shuffled(s, rng) for s in states]
        rng.shuffle(shuffled)
        # Duplicating a state set changes nothing either.
        if rng.random() < 0.3:
            shuffled.append(shuffled[0])
        assert resolve_state(rv, shuffled, gen.room.store) == expected


@settings(max_examples=100, deadline=None)
@given(rv=versions, pdu=pdus())
def test_validation_never_crashes(rv: Any, pdu: dict[str, Any]) -> None:
    try:
        validate_pdu(pdu, rv)
    except InvalidEvent:
        pass
