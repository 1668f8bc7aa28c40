"""A fuzz campaign on ``PUT /send`` in the test suite: validly signed transactions (re-hashed and
re-signed by the peer after each mutation, so the checks past the signature are reached) carrying
mutated PDUs and EDUs of a room we are in: wrong types, missing fields, huge, deep or float values,
forged senders, duplicates and events out of order.

What must hold for every request: never a 5xx; the answer is the spec's shape (a per-PDU result,
or a 4xx with an ``errcode`` for a transaction-level refusal); nothing whose sender is not the
origin's, nothing unsigned by its sender's server and nothing that fails the auth rules is ever
stored as accepted; a good PDU in the same transaction as a bad one is still judged on its own.
The examples are few here (CI time); ``CONCORD_FUZZ_EXAMPLES`` raises them for a long run.
"""

from __future__ import annotations

import copy
import os
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tests.federation.conftest import ConcordTLS
from tests.federation.fakepeer import FakePeer, PeerRoom
from tests.federation.signed_requests import call, joined_room

pytestmark = pytest.mark.django_db(transaction=True)

EXAMPLES = int(os.environ.get("CONCORD_FUZZ_EXAMPLES", "40"))
# The suite's run is the same every time (a failure reproduces); a long run explores at random.
DERANDOMIZE = "CONCORD_FUZZ_EXAMPLES" not in os.environ
FIELDS = ["type", "content", "sender", "origin_server_ts", "depth", "prev_events", "auth_events", "room_id",
          "state_key", "hashes", "signatures", "unsigned", "redacts", "origin"]

scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**63), max_value=2**63),
                    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=40),
                    st.integers(min_value=300, max_value=70_001).map(lambda n: "x" * n))  # past field limits
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                      st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                      max_leaves=12)
deep = st.integers(min_value=60, max_value=200).map(lambda n: _nest(n))


def _nest(n: int) -> Any:
    value: Any = "bottom"
    for _ in range(n):
        value = {"x": value}
    return value


mutation = st.one_of(
    st.tuples(st.just("set"), st.sampled_from(FIELDS), st.one_of(values, deep)),
    st.tuples(st.just("drop"), st.sampled_from(FIELDS), st.none()),
    st.tuples(st.just("content"), st.text(max_size=12), st.one_of(values, deep)),
    st.tuples(st.just("forge"), st.sampled_from(["sender", "state_key"]),
              st.sampled_from(["@mallory:evil.example", "@alice:concord.invalid", "not-a-user", ""])),
)
event_kind = st.sampled_from([("m.room.message", None), ("m.room.member", "@bob"), ("m.room.power_levels", ""),
                              ("m.room.name", ""), ("m.reaction", None), ("m.room.redaction", None)])


def _mutated(room: PeerRoom, kind: tuple[str, str | None], changes: list[tuple[str, str, Any]],
             resign: bool) -> dict[str, Any]:
    event_type, state_key = kind
    if state_key == "@bob":
        state_key = room.peer.user("bob")
    base = room.send(event_type, {"msgtype": "m.text", "body": "fuzz", "membership": "join"}, state_key=state_key,
                     advance=False)
    pdu: dict[str, Any] = copy.deepcopy(dict(base.pdu))
    for op, name, value in changes:
        if op == "set":
            pdu[name] = value
        elif op == "drop":
            pdu.pop(name, None)
        elif op == "content":
            content = pdu.get("content")
            if isinstance(content, dict):
                content[name] = value
        else:
            pdu[name] = value
    if resign:
        from federation.protocol.event_signing import hash_and_sign_event

        try:
            pdu.pop("signatures", None) if isinstance(pdu.get("signatures"), dict) else None
            pdu = hash_and_sign_event(pdu, room.rv, room.peer.server_name, room.peer.key)
        except Exception:  # not signable as it is: sent as mutated
            pass
    return pdu


def _signable(body: Any) -> bool:
    from federation.protocol.canonical_json import encode_canonical_json
    from federation.protocol.errors import CanonicalJsonError

    try:
        encode_canonical_json(body)
    except (CanonicalJsonError, ValueError, RecursionError):
        return False
    return True


_checked_up_to: dict[str, int] = {}


def _check_invariants(peer: FakePeer, room: PeerRoom) -> None:
    """Every event accepted since the last check (all rooms) is the peer's and signed by it. Only
    the new rows are read (``stream`` is the arrival order), so a long run stays linear; the mark is
    kept per room ID, which is new whenever the database is."""
    from federation.models import MatrixEvent

    accepted = MatrixEvent.objects.filter(rejected_reason="", soft_failed=False,
                                          stream__gt=_checked_up_to.get(room.room_id, 0)).order_by("stream")
    for stream, sender, pdu in accepted.values_list("stream", "sender", "pdu"):
        _checked_up_to[room.room_id] = stream
        server = sender.split(":", 1)[1] if ":" in sender else ""
        assert server == peer.server_name, f"accepted an event whose sender is not the peer's: {sender}"
        assert peer.server_name in (pdu.get("signatures") or {}), "accepted an event the sender's server did not sign"


@settings(max_examples=EXAMPLES, deadline=None, derandomize=DERANDOMIZE, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(kind=event_kind, changes=st.lists(mutation, min_size=1, max_size=3), resign=st.booleans(),
       duplicate=st.booleans(), edus=st.lists(st.fixed_dictionaries({"edu_type": st.sampled_from(
           ["m.typing", "m.receipt", "m.presence", "m.device_list_update", "x.unknown"]), "content": values}),
           max_size=2))
def test_mutated_signed_pdus_and_edus_never_break_the_server(
        fed: ConcordTLS, peer: FakePeer, kind: tuple[str, str | None], changes: list[tuple[str, str, Any]],
        resign: bool, duplicate: bool, edus: list[dict[str, Any]]) -> None:
    room = _room(fed, peer)
    good = room.send("m.room.message", {"msgtype": "m.text", "body": "good"}, advance=False)
    bad = _mutated(room, kind, changes, resign)
    pdus = [bad, dict(good.pdu)] + ([bad, dict(good.pdu)] if duplicate else [])
    body = {"origin": peer.server_name, "origin_server_ts": 1, "pdus": pdus, "edus": edus}
    assume(_signable(body))  # X-Matrix signs canonical JSON: floats and huge integers cannot be signed
    r = call(fed, peer, "PUT", f"/_matrix/federation/v1/send/fuzz{next(_txn)}", body)
    room.last = good  # sent: the next example's events follow it (one not sent would be a gap)
    room.timeline.append(good)
    assert r.status_code < 500, r.text[:500]
    answer = r.json()
    if r.status_code == 200:
        results = answer["pdus"]
        assert isinstance(results, dict)
        assert results.get(good.event_id) == {}, results  # the good one is judged on its own
        for value in results.values():
            assert value == {} or isinstance(value.get("error"), str)
    else:
        assert 400 <= r.status_code < 500 and isinstance(answer.get("errcode"), str), answer
    _check_invariants(peer, room)


_rooms: dict[int, PeerRoom] = {}
_txn = iter(range(1, 10**9))


def _room(fed: ConcordTLS, peer: FakePeer) -> PeerRoom:
    """One room per peer for all examples (the database keeps it between examples of one test)."""
    from federation.models import MatrixRoom

    room = _rooms.get(id(peer))
    if room is None or not MatrixRoom.objects.filter(room_id=room.room_id).exists():
        room = _rooms[id(peer)] = joined_room(fed, peer)
    return room
