"""Typed Matrix identifiers: server names, user IDs, room IDs, event IDs, aliases.

Grammar follows the spec appendix "Identifier Grammar":

* ``server_name = hostname [ ":" port ]`` where hostname is a dotted-quad IPv4
  literal (each part 0-255), a bracketed IPv6 literal, or a DNS name of 1-255
  characters from ``[A-Za-z0-9.-]``; the port is 1-5 digits.
* User IDs ``@localpart:server_name``.  :meth:`UserId.parse` accepts the
  *historical* localparts the spec requires servers to keep accepting over
  federation (any code point but ``:`` and NUL, except that it may not be
  empty here); :attr:`UserId.is_compliant` tells whether the localpart also
  follows the current grammar (``[a-z0-9._=/+-]``).
* Room IDs ``!opaque:server_name`` (room versions 1-11) or ``!hash`` (room
  version 12, the create event's reference hash).
* Event IDs ``$opaque`` (v4+ reference hashes) or ``$opaque:server_name`` (old).
* Room aliases ``#localpart:server_name``.

Every identifier is at most 255 bytes of UTF-8 including its sigil.  The typed
classes are frozen and hashable; ``str(x)`` gives the wire form back.  Inside
hot loops (auth rules, state resolution) the core works on plain ``str`` IDs and
uses :func:`server_name_of` to take the domain, so parsing costs nothing there.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from .errors import InvalidIdentifier

MAX_ID_BYTES = 255

_DNS_NAME = re.compile(r"[A-Za-z0-9.\-]{1,255}\Z")
_IPV4 = re.compile(r"(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\Z")
_IPV6_CHARS = re.compile(r"[0-9A-Fa-f:.]{2,45}\Z")
_PORT = re.compile(r"\d{1,5}\Z")
_COMPLIANT_LOCALPART = re.compile(r"[a-z0-9._=\-/+]+\Z")


def _check_length(value: str, what: str) -> None:
    if len(value.encode("utf-8")) > MAX_ID_BYTES:
        raise InvalidIdentifier(f"{what} is longer than {MAX_ID_BYTES} bytes")


@dataclass(frozen=True, slots=True)
class ServerName:
    """A homeserver name: host (DNS name or IP literal) and optional port.

    ``host`` keeps the brackets of an IPv6 literal, so ``str()`` round-trips.
    Server names are case-sensitive, as the spec requires.
    """

    host: str
    port: int | None = None

    @classmethod
    def parse(cls, value: str) -> ServerName:
        """Parse and validate a server name.

        Raises:
            InvalidIdentifier: if ``value`` does not follow the grammar.
        """
        if not isinstance(value, str) or not value:
            raise InvalidIdentifier("server name must be a non-empty string")
        if value.startswith("["):
            end = value.find("]")
            if end < 0:
                raise InvalidIdentifier(f"unterminated IPv6 literal in {value!r}")
            host, rest = value[: end + 1], value[end + 1 :]
            literal = host[1:-1]
            if not _IPV6_CHARS.match(literal):
                raise InvalidIdentifier(f"bad IPv6 literal in {value!r}")
            try:
                ipaddress.IPv6Address(literal)
            except ValueError as exc:
                raise InvalidIdentifier(f"bad IPv6 literal in {value!r}") from exc
            if rest and not rest.startswith(":"):
                raise InvalidIdentifier(f"junk after IPv6 literal in {value!r}")
            port_text = rest[1:] if rest else None
        else:
            host, sep, port_text_ = value.partition(":")
            port_text = port_text_ if sep else None
            m = _IPV4.match(host)
            if m:
                if any(int(part) > 255 for part in m.groups()):
                    raise InvalidIdentifier(f"bad IPv4 literal in {value!r}")
            elif not _DNS_NAME.match(host):
                raise InvalidIdentifier(f"bad host name in {value!r}")
        port: int | None = None
        if port_text is not None:
            if not _PORT.match(port_text):
                raise InvalidIdentifier(f"bad port in {value!r}")
            port = int(port_text)
        return cls(host, port)

    @property
    def is_ip_literal(self) -> bool:
        """True for an IPv4 or IPv6 literal, False for a DNS name."""
        return self.host.startswith("[") or _IPV4.match(self.host) is not None

    def __str__(self) -> str:
        return self.host if self.port is None else f"{self.host}:{self.port}"


def is_valid_server_name(value: object) -> bool:
    """Whether ``value`` is a string that follows the server name grammar."""
    if not isinstance(value, str):
        return False
    try:
        ServerName.parse(value)
    except InvalidIdentifier:
        return False
    return True


def server_name_of(identifier: str) -> str:
    """The domain part of a ``&localpart:domain`` identifier (no validation).

    Raises:
        InvalidIdentifier: if there is no ``:`` in ``identifier``.
    """
    idx = identifier.find(":")
    if idx < 0:
        raise InvalidIdentifier(f"{identifier!r} has no server name")
    return identifier[idx + 1 :]


def _split(value: object, sigil: str, what: str) -> tuple[str, ServerName]:
    if not isinstance(value, str) or not value.startswith(sigil):
        raise InvalidIdentifier(f"{what} must be a string starting with {sigil!r}")
    _check_length(value, what)
    localpart, sep, domain = value[1:].partition(":")
    if not sep:
        raise InvalidIdentifier(f"{what} {value!r} has no server name")
    if "\x00" in localpart:
        raise InvalidIdentifier(f"{what} {value!r} contains NUL")
    return localpart, ServerName.parse(domain)


@dataclass(frozen=True, slots=True)
class UserId:
    """``@localpart:server_name``."""

    localpart: str
    server_name: ServerName

    @classmethod
    def parse(cls, value: object) -> UserId:
        """Parse a user ID, accepting historical (non-compliant) localparts.

        Raises:
            InvalidIdentifier: on a bad sigil, empty localpart, bad server name
                or more than 255 bytes.
        """
        localpart, server = _split(value, "@", "user ID")
        if not localpart:
            raise InvalidIdentifier("user ID has an empty localpart")
        return cls(localpart, server)

    @property
    def is_compliant(self) -> bool:
        """Whether the localpart follows the current (v1.8+) grammar."""
        return _COMPLIANT_LOCALPART.match(self.localpart) is not None

    def __str__(self) -> str:
        return f"@{self.localpart}:{self.server_name}"


def is_valid_user_id(value: object) -> bool:
    """Whether ``value`` parses with :meth:`UserId.parse`."""
    try:
        UserId.parse(value)
    except InvalidIdentifier:
        return False
    return True


@dataclass(frozen=True, slots=True)
class RoomAlias:
    """``#localpart:server_name``."""

    localpart: str
    server_name: ServerName

    @classmethod
    def parse(cls, value: object) -> RoomAlias:
        """Parse a room alias.

        Raises:
            InvalidIdentifier: if it breaks the grammar or the length limit.
        """
        localpart, server = _split(value, "#", "room alias")
        return cls(localpart, server)

    def __str__(self) -> str:
        return f"#{self.localpart}:{self.server_name}"


@dataclass(frozen=True, slots=True)
class RoomId:
    """``!opaque:server_name`` (v1-v11) or ``!hash`` (v12: no server name)."""

    opaque: str
    server_name: ServerName | None = None

    @classmethod
    def parse(cls, value: object) -> RoomId:
        """Parse a room ID in either form.

        Raises:
            InvalidIdentifier: if it breaks the grammar or the length limit.
        """
        if not isinstance(value, str) or not value.startswith("!"):
            raise InvalidIdentifier("room ID must be a string starting with '!'")
        if ":" not in value:
            _check_length(value, "room ID")
            if len(value) < 2 or "\x00" in value:
                raise InvalidIdentifier(f"bad room ID {value!r}")
            return cls(value[1:], None)
        opaque, server = _split(value, "!", "room ID")
        return cls(opaque, server)

    def __str__(self) -> str:
        if self.server_name is None:
            return f"!{self.opaque}"
        return f"!{self.opaque}:{self.server_name}"


@dataclass(frozen=True, slots=True)
class EventId:
    """``$opaque`` (room v4+: URL-safe base64 reference hash) or ``$opaque:domain``."""

    opaque: str
    server_name: ServerName | None = None

    @classmethod
    def parse(cls, value: object) -> EventId:
        """Parse an event ID in either form.

        Raises:
            InvalidIdentifier: if it breaks the grammar or the length limit.
        """
        if not isinstance(value, str) or not value.startswith("$") or len(value) < 2:
            raise InvalidIdentifier("event ID must be a string starting with '$'")
        _check_length(value, "event ID")
        if ":" in value:
            opaque, server = _split(value, "$", "event ID")
            return cls(opaque, server)
        return cls(value[1:], None)

    def __str__(self) -> str:
        if self.server_name is None:
            return f"${self.opaque}"
        return f"${self.opaque}:{self.server_name}"
