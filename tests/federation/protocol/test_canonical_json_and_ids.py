"""Strict canonical JSON and identifier grammar."""

from __future__ import annotations

import pytest

from federation.protocol.canonical_json import (
    MAX_INT,
    MIN_INT,
    check_canonical_value,
    encode_canonical_json,
    parse_json,
)
from federation.protocol.errors import CanonicalJsonError, InvalidIdentifier, UnsupportedRoomVersion
from federation.protocol.ids import (
    EventId,
    RoomAlias,
    RoomId,
    ServerName,
    UserId,
    is_valid_server_name,
)
from federation.protocol.room_versions import ROOM_V10, ROOM_V11, ROOM_V12, get_room_version


class TestCanonicalJson:
    def test_integer_bounds(self) -> None:
        assert encode_canonical_json({"a": MAX_INT, "b": MIN_INT}) == (
            b'{"a":9007199254740991,"b":-9007199254740991}'
        )
        for bad in (MAX_INT + 1, MIN_INT - 1, 2**64):
            with pytest.raises(CanonicalJsonError):
                encode_canonical_json({"a": bad})

    @pytest.mark.parametrize("bad", [1.0, 0.5, float("nan"), float("inf"), -float("inf")])
    def test_floats_refused(self, bad: float) -> None:
        with pytest.raises(CanonicalJsonError):
            encode_canonical_json({"x": [bad]})

    def test_bool_is_not_an_int(self) -> None:
        # True must encode as true, not be range-checked or turned into 1.
        assert encode_canonical_json([True, False, None, 1, 0]) == b"[true,false,null,1,0]"

    def test_non_string_keys_and_types(self) -> None:
        with pytest.raises(CanonicalJsonError):
            check_canonical_value({1: "a"})
        with pytest.raises(CanonicalJsonError):
            check_canonical_value({"a": {1, 2}})
        with pytest.raises(CanonicalJsonError):
            check_canonical_value({"a": b"bytes"})

    def test_escapes_and_unicode(self) -> None:
        assert encode_canonical_json({"a": "\u0000\u0008\t\n\u000b\u001f\"\\\u2028é"}) == (
            '{"a":"\\u0000\\b\\t\\n\\u000b\\u001f\\"\\\\\u2028é"}'.encode()
        )

    def test_parse_json_strict(self) -> None:
        assert parse_json(b'{"a":[1,-2,true,null,"x"]}') == {"a": [1, -2, True, None, "x"]}
        for bad in (b'{"a":1.0}', b'{"a":1e3}', b'{"a":NaN}', b'{"a":Infinity}',
                    b'{"a":9007199254740992}', b'{"a":', b"\xff"):
            with pytest.raises(CanonicalJsonError):
                parse_json(bad)


class TestIdentifiers:
    @pytest.mark.parametrize(
        ("text", "host", "port"),
        [
            ("matrix.org", "matrix.org", None),
            ("matrix.org:8888", "matrix.org", 8888),
            ("1.2.3.4", "1.2.3.4", None),
            ("1.2.3.4:1234", "1.2.3.4", 1234),
            ("[1234:5678::abcd]", "[1234:5678::abcd]", None),
            ("[1234:5678::abcd]:5678", "[1234:5678::abcd]", 5678),
            ("localhost", "localhost", None),
            ("[::1]:8448", "[::1]", 8448),
        ],
    )
    def test_valid_server_names(self, text: str, host: str, port: int | None) -> None:
        sn = ServerName.parse(text)
        assert (sn.host, sn.port) == (host, port)
        assert str(sn) == text

    @pytest.mark.parametrize(
        "text",
        ["", "a b", "exa_mple.com", "1.2.3.256", "[1234:5678::abcd", "[zz::1]", "[::1]x",
         "host:", "host:123456", "host:12a", "a" * 256, "[1:2:3:4:5:6:7:8:9]"],
    )
    def test_invalid_server_names(self, text: str) -> None:
        assert not is_valid_server_name(text)

    def test_ip_literal_flag(self) -> None:
        assert ServerName.parse("1.2.3.4").is_ip_literal
        assert ServerName.parse("[::1]").is_ip_literal
        assert not ServerName.parse("example.org").is_ip_literal

    def test_user_ids(self) -> None:
        u = UserId.parse("@alice:example.org:8448")
        assert u.localpart == "alice" and str(u.server_name) == "example.org:8448"
        assert u.is_compliant
        historical = UserId.parse("@Alice!:example.org")
        assert not historical.is_compliant
        for bad in ["alice:example.org", "@:example.org", "@alice", "@alice:bad_host",
                    "@a\x00b:example.org", "@" + "a" * 250 + ":example.org", 5]:
            with pytest.raises(InvalidIdentifier):
                UserId.parse(bad)

    def test_255_byte_limit_counts_bytes(self) -> None:
        # 126 two-byte characters = 252 bytes: too long with the sigil and domain.
        with pytest.raises(InvalidIdentifier):
            UserId.parse("@" + "é" * 126 + ":a.b")
        UserId.parse("@" + "é" * 123 + ":a.b")  # 1 + 246 + 4 = 251 bytes

    def test_room_and_event_ids_and_aliases(self) -> None:
        assert RoomId.parse("!abc:example.org").server_name == ServerName("example.org")
        v12 = RoomId.parse("!Nhcu5BS-UMnFX7hBVfVSoXiD7OgH6iRT-xyIuqDnpYQ")
        assert v12.server_name is None and str(v12).startswith("!Nhcu")
        assert EventId.parse("$Rqnc-F-dvnEYJTyHq_iKxU2bZ1CI92-kuZq3a5lr5Zg").server_name is None
        assert str(EventId.parse("$0:domain")) == "$0:domain"
        assert str(RoomAlias.parse("#room:example.org")) == "#room:example.org"
        for parse, bad in [(RoomId.parse, "abc:x"), (RoomId.parse, "!"), (EventId.parse, "$"),
                           (RoomAlias.parse, "#nodomain"), (EventId.parse, "$" + "x" * 255)]:
            with pytest.raises(InvalidIdentifier):
                parse(bad)


def test_room_versions() -> None:
    assert get_room_version("10") is ROOM_V10
    assert get_room_version("11") is ROOM_V11
    assert get_room_version("12") is ROOM_V12
    assert ROOM_V12.room_id_is_create_hash and not ROOM_V11.room_id_is_create_hash
    assert ROOM_V11.implicit_room_creator and not ROOM_V10.implicit_room_creator
    for bad in ("9", "1", "13", "org.matrix.msc3757.10", 12, None):
        with pytest.raises(UnsupportedRoomVersion):
            get_room_version(bad)
