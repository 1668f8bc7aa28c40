"""The chat <-> Matrix bridge: the only part of :mod:`federation` that imports ``rooms`` and ``accounts``.

Vocabulary (after mautrix): a **portal** is a room that exists on both sides, a **puppet** the
local stand-in for a remote Matrix user.

* :mod:`.users` (our users' Matrix IDs, puppets and profiles), :mod:`.portals` (federating a chat
  room, the chat room of a remote one), :mod:`.convert` (pure content <-> chat mappings),
  :mod:`.incoming` (``{event type: handler}``, fed by the event store's listener),
  :mod:`.outgoing` (the sink of :mod:`federation.hooks`: chat change -> event),
  :mod:`.memberships` (invites, joins, answers), :mod:`.edus` (typing, receipts, presence).
* :mod:`.connect` plugs them in at start-up. The chat side is written through ``rooms.actions``
  and ``accounts.actions`` only; the Matrix side through :mod:`federation.handlers`.
"""
