"""What the protocol core needs from storage, as ``typing.Protocol`` classes.

The core never talks to a database.  Callers pass objects that satisfy these
protocols: the Django app implements them over the ORM (``federation/store/events.py``);
tests and the benchmark use the in-memory versions below.

* :class:`EventStore` - fetch events by ID (rejected ones included) and tell
  whether an event was rejected.  Used by auth-event checks and state resolution.
* :class:`KeyStore` - a server's verify keys valid at a timestamp.  Used by
  event signature verification.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

from .events import Event
from .signing import VerifyKey


class EventStore(Protocol):
    """Read access to events, including rejected ones."""

    def get_events(self, event_ids: Iterable[str]) -> Mapping[str, Event]:
        """The events among ``event_ids`` that we have; unknown IDs are left out."""
        ...

    def is_rejected(self, event_id: str) -> bool:
        """Whether we rejected the event (failed auth or checks on receipt)."""
        ...


class KeyStore(Protocol):
    """Read access to servers' signing keys."""

    def get_verify_keys(
        self, server_name: str, key_ids: Sequence[str], at_ts: int | None
    ) -> Mapping[str, VerifyKey]:
        """The keys among ``key_ids`` of ``server_name`` that we know.

        Args:
            server_name: the server.
            key_ids: IDs such as ``"ed25519:abc"``.
            at_ts: if given, leave out keys whose validity (``valid_until_ts``, or
                ``expired_ts`` of an old key) ended before this timestamp.
        """
        ...


class InMemoryEventStore:
    """A dict-backed :class:`EventStore`."""

    def __init__(self, events: Iterable[Event] = ()) -> None:
        self.events: dict[str, Event] = {}
        self.rejected: set[str] = set()
        for e in events:
            self.add(e)

    def add(self, event: Event, *, rejected: bool = False) -> None:
        """Store an event, optionally marked as rejected."""
        self.events[event.event_id] = event
        if rejected:
            self.rejected.add(event.event_id)
        else:
            self.rejected.discard(event.event_id)

    def get_events(self, event_ids: Iterable[str]) -> dict[str, Event]:
        events = self.events
        return {eid: events[eid] for eid in event_ids if eid in events}

    def get_event(self, event_id: str) -> Event | None:
        """One event, or None."""
        return self.events.get(event_id)

    def is_rejected(self, event_id: str) -> bool:
        return event_id in self.rejected


class InMemoryKeyStore:
    """A dict-backed :class:`KeyStore`."""

    def __init__(self) -> None:
        self._keys: dict[str, dict[str, tuple[VerifyKey, int | None]]] = {}

    def add_key(self, server_name: str, key: VerifyKey, valid_until_ts: int | None = None) -> None:
        """Remember a key; ``valid_until_ts`` None means valid for ever."""
        self._keys.setdefault(server_name, {})[key.key_id] = (key, valid_until_ts)

    def get_verify_keys(
        self, server_name: str, key_ids: Sequence[str], at_ts: int | None
    ) -> dict[str, VerifyKey]:
        known = self._keys.get(server_name, {})
        out: dict[str, VerifyKey] = {}
        for key_id in key_ids:
            entry = known.get(key_id)
            if entry is None:
                continue
            key, until = entry
            if at_ts is not None and until is not None and until < at_ts:
                continue
            out[key_id] = key
        return out
