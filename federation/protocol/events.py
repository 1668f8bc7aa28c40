"""The :class:`Event` type: a PDU with its room version and event ID.

An ``Event`` wraps the PDU dict exactly as it travels (no ``event_id`` key for
v4+ rooms) and exposes typed, precomputed attributes so the auth rules and state
resolution never dig through dicts.  Treat it, and the dicts it holds, as
immutable.

Room v12 detail: the create event is not listed in ``auth_events`` (the room ID
names it).  :attr:`Event.auth_event_ids` is the list as sent;
:attr:`Event.effective_auth_event_ids` adds the implied create event, and is
what auth-chain walks, power ordering and state resolution use.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .errors import InvalidEvent
from .hashing import compute_event_id, create_event_id_for_room
from .room_versions import RoomVersion

StateKey = tuple[str, str]
"""``(event type, state key)``: the key of an entry in a room's state."""

CREATE_KEY: StateKey = ("m.room.create", "")
POWER_LEVELS_KEY: StateKey = ("m.room.power_levels", "")
JOIN_RULES_KEY: StateKey = ("m.room.join_rules", "")


class Event:
    """A room event (PDU) of a known room version.

    Attributes:
        pdu: the PDU as a dict (as on the wire; read-only).
        room_version: the room's version.
        event_id: the event's ID (computed from the reference hash if not given).
        room_id, type, sender, depth, origin_server_ts, content: from the PDU.
        state_key: ``None`` for a message event.
        prev_event_ids, auth_event_ids: tuples of IDs, as listed in the PDU.
        effective_auth_event_ids: ``auth_event_ids`` plus, in v12, the create event.
        membership: ``content.membership`` for member events, else ``None``.
        redacts: the ID a redaction targets (top level in v10, content in v11+).
    """

    __slots__ = (
        "pdu", "room_version", "event_id", "room_id", "type", "state_key", "sender",
        "content", "prev_event_ids", "auth_event_ids", "effective_auth_event_ids",
        "depth", "origin_server_ts", "membership", "redacts",
    )

    pdu: Mapping[str, Any]
    room_version: RoomVersion
    event_id: str
    room_id: str
    type: str
    state_key: str | None
    sender: str
    content: Mapping[str, Any]
    prev_event_ids: tuple[str, ...]
    auth_event_ids: tuple[str, ...]
    effective_auth_event_ids: tuple[str, ...]
    depth: int
    origin_server_ts: int
    membership: str | None
    redacts: str | None

    def __init__(
        self,
        pdu: Mapping[str, Any],
        room_version: RoomVersion,
        event_id: str | None = None,
    ) -> None:
        """Wrap a PDU.  Run :func:`~federation.protocol.validation.validate_pdu`
        first on anything received; this constructor only checks types it reads.

        Raises:
            InvalidEvent: if a field the core relies on is missing or mistyped.
        """
        try:
            self.pdu = pdu
            self.room_version = room_version
            self.event_id = event_id if event_id is not None else compute_event_id(
                pdu, room_version
            )
            self.type = pdu["type"]
            self.sender = pdu["sender"]
            self.content = pdu["content"]
            sk = pdu.get("state_key")
            self.state_key = sk
            if room_version.room_id_is_create_hash and self.type == "m.room.create" and sk == "":
                self.room_id = "!" + self.event_id[1:]
            else:
                self.room_id = pdu["room_id"]
            self.prev_event_ids = tuple(pdu.get("prev_events", ()))
            auth = tuple(pdu.get("auth_events", ()))
            self.auth_event_ids = auth
            if room_version.room_id_is_create_hash and not (
                self.type == "m.room.create" and sk == ""
            ):
                self.effective_auth_event_ids = auth + (
                    create_event_id_for_room(self.room_id),
                )
            else:
                self.effective_auth_event_ids = auth
            self.depth = pdu["depth"]
            self.origin_server_ts = pdu["origin_server_ts"]
            content = self.content
            if type(content) is not dict and not isinstance(content, Mapping):
                raise InvalidEvent("content must be an object")
            m = content.get("membership") if self.type == "m.room.member" else None
            self.membership = m if isinstance(m, str) else None
            r = content.get("redacts") if room_version.redacts_in_content else pdu.get(
                "redacts"
            )
            self.redacts = r if isinstance(r, str) else None
        except (KeyError, TypeError) as exc:
            raise InvalidEvent(f"malformed PDU: {exc!r}") from exc
        if not isinstance(self.type, str) or not isinstance(self.sender, str):
            raise InvalidEvent("type and sender must be strings")

    @property
    def is_state(self) -> bool:
        """Whether the event has a ``state_key`` (so it changes room state)."""
        return self.state_key is not None

    @property
    def state_key_tuple(self) -> StateKey:
        """``(type, state_key)``.

        Raises:
            InvalidEvent: for a message event.
        """
        if self.state_key is None:
            raise InvalidEvent("not a state event")
        return (self.type, self.state_key)

    def get_pdu_json(self) -> dict[str, Any]:
        """A shallow copy of the PDU, ready to send."""
        return dict(self.pdu)

    def __repr__(self) -> str:
        sk = "" if self.state_key is None else f", {self.state_key!r}"
        return f"<Event {self.event_id} {self.type}{sk} from {self.sender}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Event) and other.event_id == self.event_id

    def __hash__(self) -> int:
        return hash(self.event_id)
