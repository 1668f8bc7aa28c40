"""The ORM side of the protocol core's storage Protocols, and event-store helpers.

:class:`OrmEventStore` implements :class:`federation.protocol.EventStore` over
:class:`~federation.models.MatrixEvent`; it memoises events it has loaded (an instance lives for
one unit of work). State maps are stored as JSON lists of ``[type, state_key, event_id]``
(:func:`encode_state` / :func:`decode_state`).

This module is the only place where the protocol core meets the ORM.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from federation.models import MatrixEvent, MatrixRoom
from federation.protocol.events import Event, StateKey
from federation.protocol.room_versions import RoomVersion, get_room_version


def encode_state(state: Mapping[StateKey, str]) -> list[list[str]]:
    """``{(type, sk): id}`` -> the JSON form: a sorted list of ``[type, state_key, event_id]``.

    (A list, not an object with joined keys: any separator could occur in types or state keys, and
    PostgreSQL's jsonb cannot hold NUL.)
    """
    return sorted([t, sk, eid] for (t, sk), eid in state.items())


def decode_state(data: Any) -> dict[StateKey, str]:
    """The JSON form -> ``{(type, sk): id}``."""
    return {(t, sk): eid for t, sk, eid in (data or [])}


def event_from_row(row: MatrixEvent, rv: RoomVersion) -> Event:
    """Rebuild the protocol :class:`Event` of a stored row (ID as stored)."""
    return Event(row.pdu, rv, row.event_id)


class OrmEventStore:
    """``EventStore`` over the database, with a per-instance cache."""

    def __init__(self, room: MatrixRoom | None = None) -> None:
        self.room = room
        self._cache: dict[str, Event] = {}
        self._rejected: set[str] = set()
        self._versions: dict[str, RoomVersion] = {}

    def remember(self, event: Event, rejected: bool = False) -> None:
        """Add an event that is being processed (not yet in the database)."""
        self._cache[event.event_id] = event
        if rejected:
            self._rejected.add(event.event_id)

    def _version(self, room_id: str) -> RoomVersion:
        rv = self._versions.get(room_id)
        if rv is None:
            rv = get_room_version(MatrixRoom.objects.values_list("room_version", flat=True).get(room_id=room_id))
            self._versions[room_id] = rv
        return rv

    def get_events(self, event_ids: Iterable[str]) -> dict[str, Event]:
        ids = list(event_ids)
        missing = [i for i in ids if i not in self._cache]
        if missing:
            for row in MatrixEvent.objects.filter(event_id__in=missing).only(
                    "event_id", "pdu", "room_id", "rejected_reason"):
                self._cache[row.event_id] = event_from_row(row, self._version(row.room_id))
                if row.rejected_reason:
                    self._rejected.add(row.event_id)
        return {i: self._cache[i] for i in ids if i in self._cache}

    def get_event(self, event_id: str) -> Event | None:
        """One event, or None."""
        return self.get_events([event_id]).get(event_id)

    def is_rejected(self, event_id: str) -> bool:
        if event_id not in self._cache:
            self.get_events([event_id])
        return event_id in self._rejected


def auth_chain_ids(event_ids: Iterable[str]) -> list[str]:
    """The auth chain of the given events (their auth events, recursively), from the database."""
    seen: set[str] = set()
    frontier = list(event_ids)
    while frontier:
        rows = MatrixEvent.objects.filter(event_id__in=frontier).values_list("pdu", flat=True)
        frontier = []
        for pdu in rows:
            for aid in pdu.get("auth_events", []):
                if aid not in seen:
                    seen.add(aid)
                    frontier.append(aid)
    return list(seen)


def create_event_id_of(room: MatrixRoom) -> str | None:
    """The room's create event ID (needed in v12, where auth_events never list it)."""
    return decode_state(room.current_state).get(("m.room.create", ""))


def pdus_for(event_ids: Iterable[str]) -> list[dict[str, Any]]:
    """The stored PDUs of the given events (unknown IDs left out), in the given order."""
    ids = list(event_ids)
    by_id = dict(MatrixEvent.objects.filter(event_id__in=ids).values_list("event_id", "pdu"))
    return [by_id[i] for i in ids if i in by_id]
