"""Keys, signed JSON and small hashing helpers."""

from __future__ import annotations

import pytest

from federation.protocol import (
    InvalidEvent,
    SignatureError,
    SigningKey,
    VerifyKey,
    auth_state_for,
    check_content_hash,
    room_id_from_create_event,
    sign_json,
    verify_json_signature,
)
from federation.protocol.hashing import add_content_hash
from federation.protocol.room_versions import ROOM_V11, ROOM_V12
from federation.protocol.signing import parse_key_id, signature_key_ids

from .roomkit import Room

SEED = "YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1"


def test_key_file_round_trip() -> None:
    key = SigningKey.from_key_file_line(f"ed25519 a_1 {SEED}")
    assert key.key_id == "ed25519:a_1"
    assert SigningKey.from_key_file_line(key.to_key_file_line()) == key
    assert SEED not in repr(key)
    for bad in ("ed25519 1", "rsa 1 " + SEED, f"ed25519 bad-version {SEED}"):
        with pytest.raises(SignatureError):
            SigningKey.from_key_file_line(bad)
    assert SigningKey.generate("x").seed != SigningKey.generate("x").seed


def test_verify_key_decode() -> None:
    vk = SigningKey.from_seed(SEED, "1").verify_key
    assert VerifyKey.decode("ed25519:1", vk.encode()) == vk
    with pytest.raises(SignatureError):
        VerifyKey.decode("curve25519:1", vk.encode())
    with pytest.raises(SignatureError):
        VerifyKey.decode("ed25519:1", "!!!")
    with pytest.raises(SignatureError):
        VerifyKey("1", b"short")
    assert parse_key_id("ed25519:abc_9") == ("ed25519", "abc_9")
    with pytest.raises(SignatureError):
        parse_key_id("ed25519")


def test_sign_json_keeps_unsigned_and_other_signatures() -> None:
    k1 = SigningKey.from_seed(SEED, "1")
    k2 = SigningKey.generate("2")
    obj = {"a": 1, "unsigned": {"age": 5}, "signatures": {"other.test": {"ed25519:x": "sig"}}}
    signed = sign_json(sign_json(obj, "domain", k1), "domain", k2)
    assert signed["unsigned"] == {"age": 5}
    assert set(signed["signatures"]) == {"other.test", "domain"}
    assert signature_key_ids(signed, "domain") == ["ed25519:1", "ed25519:2"]
    assert signature_key_ids(signed, "nobody") == []
    verify_json_signature(signed, "domain", k1.verify_key)
    verify_json_signature({**signed, "unsigned": {"age": 99}}, "domain", k2.verify_key)
    with pytest.raises(SignatureError):
        verify_json_signature({**signed, "a": 2}, "domain", k1.verify_key)
    with pytest.raises(SignatureError):
        verify_json_signature(signed, "other.test", k1.verify_key)
    bad_b64 = {**signed, "signatures": {"domain": {"ed25519:1": "*"}}}
    with pytest.raises(SignatureError):
        verify_json_signature(bad_b64, "domain", k1.verify_key)
    assert obj["signatures"] == {"other.test": {"ed25519:x": "sig"}}  # input untouched


def test_content_hash_helpers_and_v12_room_ids() -> None:
    event = {"type": "m.room.message", "content": {"body": "x"}, "unsigned": {"a": 1}}
    hashed = add_content_hash(event)
    assert check_content_hash(hashed)
    assert check_content_hash({**hashed, "unsigned": {"b": 2}, "signatures": {}})
    assert not check_content_hash({**hashed, "content": {}})
    assert not check_content_hash({**hashed, "hashes": {"sha256": "%%%"}})
    assert not check_content_hash({**hashed, "hashes": []})
    room = Room(ROOM_V12)
    with pytest.raises(InvalidEvent):
        room_id_from_create_event(room.create.pdu, ROOM_V11)
    with pytest.raises(InvalidEvent):
        room_id_from_create_event(hashed, ROOM_V12)


def test_auth_state_for_trims_state() -> None:
    room = Room.standard(ROOM_V11)
    room.send("@alice:a.test", "m.room.topic", {"topic": "t"}, "")
    ev = room.member("@bob:b.test", "join")
    trimmed = auth_state_for(ev, room.state_events())
    assert set(trimmed) == {
        ("m.room.create", ""), ("m.room.power_levels", ""), ("m.room.join_rules", ""),
    }


def test_a_known_insecure_key_verifies_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    from federation.protocol import signing

    # The listed key (Synapse's ban list): whatever it signed is refused.
    banned = VerifyKey.decode("ed25519:a", "l/O9hxMVKB6Lg+3Hqf0FQQZhVESQcMzbPN1Cz2nM3og")
    with pytest.raises(SignatureError, match="known-insecure"):
        banned.verify(b"anything", b"\0" * 64)
    # A good signature stops counting once its key is on the list.
    key = SigningKey.from_seed(SEED, "1")
    signed = sign_json({"a": 1}, "domain", key)
    verify_json_signature(signed, "domain", key.verify_key)
    monkeypatch.setattr(signing, "KNOWN_INSECURE_KEYS", frozenset({key.verify_key.encode()}))
    with pytest.raises(SignatureError, match="known-insecure"):
        verify_json_signature(signed, "domain", key.verify_key)
