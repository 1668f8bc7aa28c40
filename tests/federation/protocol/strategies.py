"""Hypothesis strategies for PDUs: random content, shapes that stress redaction."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1),
    st.text(max_size=12),
)
json_value = st.recursive(
    json_leaf,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
interesting_keys = st.sampled_from(
    [
        "membership", "join_authorised_via_users_server", "third_party_invite", "creator",
        "room_version", "additional_creators", "join_rule", "allow", "ban", "events",
        "events_default", "invite", "kick", "redact", "state_default", "users", "users_default",
        "notifications", "history_visibility", "redacts", "body", "m.federate", "signed",
    ]
)
content_strategy = st.dictionaries(st.one_of(interesting_keys, st.text(max_size=6)), json_value, max_size=6)
event_types = st.sampled_from(
    [
        "m.room.member", "m.room.create", "m.room.join_rules", "m.room.power_levels",
        "m.room.history_visibility", "m.room.redaction", "m.room.message", "m.room.topic",
        "m.room.aliases", "org.example.custom",
    ]
)
user_ids = st.sampled_from(["@a:x.test", "@b:y.test:8448", "@c:[::1]", "@d:1.2.3.4"])


@st.composite
def pdus(draw: st.DrawFn) -> dict[str, Any]:
    etype = draw(event_types)
    content = draw(content_strategy)
    if etype == "m.room.member" and draw(st.booleans()):
        content["third_party_invite"] = draw(
            st.one_of(st.dictionaries(st.sampled_from(["signed", "display_name", "x"]), json_value, max_size=3),
                      json_value)
        )
    pdu: dict[str, Any] = {
        "type": etype,
        "room_id": "!" + draw(st.text("abcdefXYZ0123456789-_", min_size=5, max_size=43)),
        "sender": draw(user_ids),
        "content": content,
        "origin_server_ts": draw(st.integers(min_value=0, max_value=2**53 - 1)),
        "depth": draw(st.integers(min_value=0, max_value=2**53 - 1)),
        "prev_events": draw(st.lists(st.text("abcdef0123", min_size=3, max_size=8).map(lambda s: "$" + s), max_size=3)),
        "auth_events": draw(st.lists(st.text("abcdef0123", min_size=3, max_size=8).map(lambda s: "$" + s), max_size=3)),
        "hashes": {"sha256": "x"},
        "signatures": {},
    }
    if draw(st.booleans()):
        pdu["state_key"] = draw(st.sampled_from(["", "@a:x.test", "k"]))
    for extra in ("origin", "membership", "prev_state", "redacts", "junk"):
        if draw(st.integers(0, 4)) == 0:
            pdu[extra] = draw(json_value)
    if draw(st.booleans()):
        pdu["unsigned"] = {"age": 5}
    return pdu


