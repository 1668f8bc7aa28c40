"""Exceptions raised by the protocol core.

Every error the core raises derives from :class:`ProtocolError`, so a caller at the
federation boundary can catch one type and map it to an HTTP answer or to a
per-PDU rejection reason.
"""

from __future__ import annotations


class ProtocolError(Exception):
    """Base class of all errors raised by ``federation.protocol``."""


class InvalidIdentifier(ProtocolError, ValueError):
    """A user, room, event ID, room alias or server name breaks the spec grammar."""


class UnsupportedRoomVersion(ProtocolError):
    """The room version is unknown to us, or known but not supported.

    Attributes:
        identifier: the room version string that was asked for.
    """

    def __init__(self, identifier: object) -> None:
        super().__init__(
            f"Unsupported room version {identifier!r}; supported: 10, 11, 12"
        )
        self.identifier = identifier


class CanonicalJsonError(ProtocolError, ValueError):
    """A value cannot be represented as Matrix canonical JSON.

    Raised for floats, NaN/Infinity, integers outside [-(2**53)+1, 2**53-1],
    non-string object keys and types JSON does not have.
    """


class SignatureError(ProtocolError):
    """A signature is missing, malformed or does not verify."""


class InvalidEvent(ProtocolError):
    """A PDU breaks the event format of its room version (size, types, limits).

    Per the spec such a PDU is dropped, never stored.
    """


class AuthError(ProtocolError):
    """An event fails the authorization rules.

    Attributes:
        rule: the number of the rule that rejected the event, as numbered in the
            room version's specification (for example ``"4.3.2"`` in room v10 or
            ``"5.3.2"`` in room v12, which inserted a new rule 2).
    """

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(f"rule {rule}: {message}")
        self.rule = rule
