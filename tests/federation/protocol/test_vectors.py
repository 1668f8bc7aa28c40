"""The spec appendix's known-answer tests, byte for byte."""

from __future__ import annotations

import json

import pytest
from unpaddedbase64 import encode_base64

from federation.protocol.canonical_json import canonicalise_json_text
from federation.protocol.event_signing import hash_and_sign_event, verify_event_signature
from federation.protocol.hashing import compute_content_hash
from federation.protocol.room_versions import ROOM_V10
from federation.protocol.signing import SigningKey, sign_json, verify_json_signature

SEED = "YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1"
KEY = SigningKey.from_seed(SEED, "1")


def test_public_key_from_seed() -> None:
    assert KEY.verify_key.encode() == "XGX0JRS2Af3be3knz2fBiRbApjm2Dh61gXDJA8kcJNI"
    assert KEY.key_id == "ed25519:1"


@pytest.mark.parametrize(
    ("obj", "signature"),
    [
        ({}, "K8280/U9SSy9IVtjBuVeLr+HpOB4BQFWbg+UZaADMtTdGYI7Geitb76LTrr5QV/7Xg4ahLwYGYZzuHGZKM5ZAQ"),
        (
            {"one": 1, "two": "Two"},
            "KqmLSbO39/Bzb0QIYE82zqLwsA+PDzYIpIRA2sRQ4sL53+sN6/fpNSoqE7BP7vBZhG6kYdD13EIMJpvhJI+6Bw",
        ),
    ],
)
def test_json_signing(obj: dict[str, object], signature: str) -> None:
    signed = sign_json(obj, "domain", KEY)
    assert signed == {**obj, "signatures": {"domain": {"ed25519:1": signature}}}
    verify_json_signature(signed, "domain", KEY.verify_key)


MINIMAL_EVENT = {
    "room_id": "!x:domain",
    "sender": "@a:domain",
    "origin": "domain",
    "origin_server_ts": 1000000,
    "signatures": {},
    "hashes": {},
    "type": "X",
    "content": {},
    "prev_events": [],
    "auth_events": [],
    "depth": 3,
    "unsigned": {"age_ts": 1000000},
}

REDACTABLE_EVENT = {
    "content": {"body": "Here is the message content"},
    "event_id": "$0:domain",
    "origin": "domain",
    "origin_server_ts": 1000000,
    "type": "m.room.message",
    "room_id": "!r:domain",
    "sender": "@u:domain",
    "signatures": {},
    "unsigned": {"age_ts": 1000000},
}


@pytest.mark.parametrize(
    ("event", "content_hash", "signature"),
    [
        (
            MINIMAL_EVENT,
            "5jM4wQpv6lnBo7CLIghJuHdW+s2CMBJPUOGOC89ncos",
            "KxwGjPSDEtvnFgU00fwFz+l6d2pJM6XBIaMEn81SXPTRl16AqLAYqfIReFGZlHi5KLjAWbOoMszkwsQma+lYAg",
        ),
        (
            REDACTABLE_EVENT,
            "onLKD1bGljeBWQhWZ1kaP9SorVmRQNdN5aM2JYU2n/g",
            "Wm+VzmOUOz08Ds+0NTWb1d4CZrVsJSikkeRxh6aCcUwu6pNC78FunoD7KNWzqFn241eYHYMGCA5McEiVPdhzBA",
        ),
    ],
)
def test_event_signing(event: dict[str, object], content_hash: str, signature: str) -> None:
    # The appendix vectors use the v1-v10 redaction rules (they keep "origin").
    assert encode_base64(compute_content_hash(event)) == content_hash
    signed = hash_and_sign_event(event, ROOM_V10, "domain", KEY)
    expected = {
        **event,
        "hashes": {"sha256": content_hash},
        "signatures": {"domain": {"ed25519:1": signature}},
    }
    assert signed == expected
    verify_event_signature(signed, ROOM_V10, "domain", KEY.verify_key)


CANONICAL_EXAMPLES = [
    ("{}", "{}"),
    ('{"one": 1, "two": "Two"}', '{"one":1,"two":"Two"}'),
    ('{"b": "2", "a": "1"}', '{"a":"1","b":"2"}'),
    ('{"b":"2","a":"1"}', '{"a":"1","b":"2"}'),
    (
        json.dumps(
            {
                "auth": {
                    "success": True,
                    "mxid": "@john.doe:example.com",
                    "profile": {
                        "display_name": "John Doe",
                        "three_pids": [
                            {"medium": "email", "address": "john.doe@example.org"},
                            {"medium": "msisdn", "address": "123456789"},
                        ],
                    },
                }
            },
            indent=4,
        ),
        '{"auth":{"mxid":"@john.doe:example.com","profile":{"display_name":"John Doe",'
        '"three_pids":[{"address":"john.doe@example.org","medium":"email"},'
        '{"address":"123456789","medium":"msisdn"}]},"success":true}}',
    ),
    ('{"a": "日本語"}', '{"a":"日本語"}'),
    ('{"本": 2, "日": 1}', '{"日":1,"本":2}'),
    ('{"a": "\\u65E5"}', '{"a":"日"}'),
    ('{"a": null}', '{"a":null}'),
    ('{"a": -0, "b": 1e10}', '{"a":0,"b":10000000000}'),
]


@pytest.mark.parametrize(("text", "canonical"), CANONICAL_EXAMPLES)
def test_canonical_json_examples(text: str, canonical: str) -> None:
    assert canonicalise_json_text(text) == canonical.encode("utf-8")
