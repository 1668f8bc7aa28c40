"""A fuzz campaign on the federation queries and membership handshakes, validly signed by a peer:
mutated path values and query parameters (``query/profile``, ``query/directory``, ``make_join``,
``make_leave``, ``event``, ``state_ids``, ``state``, ``backfill``, ``publicRooms``, media), and
mutated bodies for ``send_join``, ``send_leave``, ``invite``, ``get_missing_events``,
``publicRooms`` and the key notary, aimed at a room Concord hosts and the peer is in.

What must hold for every request: never a 5xx; a refusal is a 4xx with the spec's ``errcode``;
and nothing a handshake carries is ever accepted unless it is a well-formed event of the peer's
own user signed by the peer (no membership of another server's user, nothing unsigned). The
examples are few here (CI time); ``CONCORD_FUZZ_EXAMPLES`` raises them for a long run, and
``bench/fuzz_federation.py`` runs both campaigns for a report.
"""

from __future__ import annotations

import copy
import os
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tests.federation.conftest import ConcordTLS
from tests.federation.fakepeer import FakePeer
from tests.federation.signed_requests import call

pytestmark = pytest.mark.django_db(transaction=True)

EXAMPLES = int(os.environ.get("CONCORD_FUZZ_EXAMPLES", "40"))
DERANDOMIZE = "CONCORD_FUZZ_EXAMPLES" not in os.environ

identifiers = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["", "!", "#", "@", "$", "!x", "@x:", "#a:b:c", "!room:127.0.0.1:1", "$" + "e" * 300,
                     "@" + "u" * 300 + ":x", "%00", "..", "../../etc", "\u0000", "\ud7ff", "@alice:concord.invalid"]),
    st.text(alphabet="!@#$:abc123._-=/ \n", max_size=40),
)
scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1),
                    st.text(max_size=30))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                      st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                      max_leaves=10)
params = st.dictionaries(st.sampled_from(["user_id", "field", "room_alias", "ver", "v", "limit", "event_id", "since",
                                          "server", "include_all_networks", "third_party_instance_id", "x"]),
                         st.one_of(identifiers, st.integers().map(str)), max_size=4)

GET_PATHS = ["/_matrix/federation/v1/query/profile", "/_matrix/federation/v1/query/directory",
             "/_matrix/federation/v1/make_join/{room}/{user}", "/_matrix/federation/v1/make_leave/{room}/{user}",
             "/_matrix/federation/v1/event/{event}", "/_matrix/federation/v1/state_ids/{room}",
             "/_matrix/federation/v1/state/{room}", "/_matrix/federation/v1/backfill/{room}",
             "/_matrix/federation/v1/publicRooms", "/_matrix/federation/v1/event_auth/{room}/{event}",
             "/_matrix/federation/v1/media/download/{event}", "/_matrix/key/v2/server",
             "/_matrix/federation/v1/version", "/_matrix/federation/v1/hierarchy/{room}"]


def _ok_answer(r: Any) -> None:
    assert r.status_code < 500, (r.status_code, r.text[:300])
    if r.status_code >= 400 and r.headers.get("Content-Type", "").startswith("application/json"):
        assert isinstance(r.json().get("errcode"), str), r.text[:300]


@settings(max_examples=EXAMPLES, deadline=None, derandomize=DERANDOMIZE, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(path=st.sampled_from(GET_PATHS), room=identifiers, user=identifiers, event=identifiers, query=params,
       use_real_room=st.booleans())
def test_mutated_signed_queries_never_break_the_server(fed: ConcordTLS, peer: FakePeer, path: str, room: str,
                                                        user: str, event: str, query: dict[str, str],
                                                        use_real_room: bool) -> None:
    hosted = _hosted(fed, peer)
    if use_real_room:
        room = hosted["room_id"]
    url = path.format(room=quote(room, safe=""), user=quote(user, safe=""), event=quote(event, safe=""))
    if query:
        url += "?" + urlencode(query)
    assume(len(url) < 6000)
    _ok_answer(call(fed, peer, "GET", url))


handshake = st.sampled_from(["send_join", "send_leave", "invite", "get_missing_events", "publicRooms", "key_query"])
mutation = st.one_of(
    st.tuples(st.just("set"), st.sampled_from(["type", "content", "sender", "state_key", "origin_server_ts", "depth",
                                               "prev_events", "auth_events", "room_id", "hashes", "signatures",
                                               "origin", "membership"]), values),
    st.tuples(st.just("drop"), st.sampled_from(["type", "content", "sender", "state_key", "room_id", "auth_events",
                                                "prev_events", "depth"]), st.none()),
    st.tuples(st.just("membership"), st.just(""), st.sampled_from(["join", "leave", "invite", "ban", "knock", 7])),
    st.tuples(st.just("forge"), st.sampled_from(["sender", "state_key"]),
              st.sampled_from(["@mallory:evil.example", "@host:{fed}", "not-a-user", ""])),
)


@settings(max_examples=EXAMPLES, deadline=None, derandomize=DERANDOMIZE, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(kind=handshake, changes=st.lists(mutation, max_size=3), resign=st.booleans(), wrap=values,
       event_id=identifiers)
def test_mutated_signed_handshakes_never_break_the_server_nor_let_in_a_forgery(
        fed: ConcordTLS, peer: FakePeer, kind: str, changes: list[tuple[str, str, Any]], resign: bool, wrap: Any,
        event_id: str) -> None:
    hosted = _hosted(fed, peer)
    room_id = hosted["room_id"]
    template = hosted["join" if kind == "send_join" else "leave"]
    event = copy.deepcopy(template)
    for op, name, value in changes:
        if op == "set":
            event[name] = value
        elif op == "drop":
            event.pop(name, None)
        elif op == "membership":
            if isinstance(event.get("content"), dict):
                event["content"]["membership"] = value
        else:
            event[name] = str(value).replace("{fed}", fed.server_name)
    if resign:
        from federation.protocol.event_signing import hash_and_sign_event
        from federation.protocol.room_versions import get_room_version

        try:
            event.pop("signatures", None)
            event = hash_and_sign_event(event, get_room_version(hosted["version"]), peer.server_name, peer.key)
        except Exception:  # not signable as it is: sent as mutated
            pass
    eid = quote(event_id or "$fuzz", safe="")
    rid = quote(room_id, safe="")
    if kind == "send_join":
        r = call(fed, peer, "PUT", f"/_matrix/federation/v2/send_join/{rid}/{eid}", event)
    elif kind == "send_leave":
        r = call(fed, peer, "PUT", f"/_matrix/federation/v2/send_leave/{rid}/{eid}", event)
    elif kind == "invite":
        r = call(fed, peer, "PUT", f"/_matrix/federation/v2/invite/{rid}/{eid}",
                 {"room_version": hosted["version"], "event": event, "invite_room_state": wrap})
    elif kind == "get_missing_events":
        r = call(fed, peer, "POST", f"/_matrix/federation/v1/get_missing_events/{rid}",
                 {"earliest_events": wrap, "latest_events": [event_id], "limit": 10})
    elif kind == "publicRooms":
        r = call(fed, peer, "POST", "/_matrix/federation/v1/publicRooms", {"filter": wrap, "limit": 5})
    else:
        # Only server names of the test (a random name would be looked up in DNS, off loopback).
        criteria = {peer.server_name: wrap, fed.server_name: {}} if isinstance(wrap, dict) else wrap
        r = call(fed, peer, "POST", "/_matrix/key/v2/query", {"server_keys": criteria})
    _ok_answer(r)
    _check_memberships(fed, peer, room_id)


_checked_up_to: dict[str, int] = {}


def _check_memberships(fed: ConcordTLS, peer: FakePeer, room_id: str) -> None:
    """Every accepted membership event in the hosted room is ours or the peer's own user's, signed
    by its server; the peer's user is never made anyone but itself."""
    from federation.models import MatrixEvent

    for stream, sender, state_key, pdu in MatrixEvent.objects.filter(
            room_id=room_id, type="m.room.member", rejected_reason="", soft_failed=False,
            stream__gt=_checked_up_to.get(room_id, 0)).order_by("stream").values_list(
            "stream", "sender", "state_key", "pdu"):
        _checked_up_to[room_id] = stream  # only new rows next time: a long run stays linear
        server = sender.split(":", 1)[1] if ":" in sender else ""
        assert server in (fed.server_name, peer.server_name), f"accepted a member event of {sender}"
        assert server in (pdu.get("signatures") or {}), f"accepted a member event {server} did not sign"
        if server == peer.server_name:
            assert state_key == sender, f"the peer set the membership of {state_key}"


_hosted_rooms: dict[int, dict[str, Any]] = {}


def _hosted(fed: ConcordTLS, peer: FakePeer) -> dict[str, Any]:
    """A public channel of ours, federated, that the peer's user joined through make_join/send_join,
    with a fresh join and leave template (from make_join / make_leave) to mutate."""
    from accounts.models import User
    from federation.bridge.portals import ensure_portal
    from federation.models import MatrixRoom
    from rooms.actions.rooms import do_create_room

    known = _hosted_rooms.get(id(peer))
    if known is not None and MatrixRoom.objects.filter(room_id=known["room_id"]).exists():
        return known
    owner = User.objects.filter(username="fuzzhost").first() or User.objects.create_user(
        "fuzzhost", "fuzzhost@example.test", "password123")
    room = do_create_room(owner, "c", f"fuzzhall{id(peer) % 10_000}")
    mroom = ensure_portal(room)
    user = peer.user("fuzzer")
    rid, uid = quote(mroom.room_id, safe=""), quote(user, safe="")
    template = call(fed, peer, "GET", f"/_matrix/federation/v1/make_join/{rid}/{uid}?ver={mroom.room_version}")
    assert template.status_code == 200, template.text
    join = _signed(peer, template.json()["event"], mroom.room_version)
    join_id = quote(_event_id(join, mroom.room_version), safe="")
    joined = call(fed, peer, "PUT", f"/_matrix/federation/v2/send_join/{rid}/{join_id}", join)
    assert joined.status_code == 200, joined.text
    leave = call(fed, peer, "GET", f"/_matrix/federation/v1/make_leave/{rid}/{uid}")
    assert leave.status_code == 200, leave.text
    known = {"room_id": mroom.room_id, "version": mroom.room_version, "join": template.json()["event"],
             "leave": leave.json()["event"]}
    _hosted_rooms[id(peer)] = known
    return known


def _signed(peer: FakePeer, event: dict[str, Any], version: str) -> dict[str, Any]:
    from federation.protocol.event_signing import hash_and_sign_event
    from federation.protocol.room_versions import get_room_version

    return hash_and_sign_event(dict(event), get_room_version(version), peer.server_name, peer.key)


def _event_id(pdu: dict[str, Any], version: str) -> str:
    from federation.protocol.hashing import compute_event_id
    from federation.protocol.room_versions import get_room_version

    return compute_event_id(pdu, get_room_version(version))
