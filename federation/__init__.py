"""Matrix federation: Concord is its own homeserver. The package is in layers; imports run one way
down (checked by import-linter in ``make lint``, contracts in ``pyproject.toml``)::

    apps, urls             composition root: connects the layers that must not import each other
    api/, tasks, management  thin endpoints (Matrix and REST), Celery tasks, commands
    status                 the federation status shown to admins
    bridge/                the only importer of rooms/accounts: puppets, portals, convert (pure),
                           incoming ({event type: handler}), outgoing (the hooks' sink), memberships
    handlers/              receive, send, backfill, serve, joins, EDUs, keys; never the chat
    store/                 the one writer of Matrix tables: persist_event + listeners, room state,
                           outbox (no HTTP), remote keys, staging
    transport/             HTTP session pool, discovery, signed client (JSON and bytes), request
                           auth against a key lookup, the boundary's errors
    signing_key, hooks     our key; what chat actions call (forwarded to the bridge's sink)
    config, clock, models  the one reader of CONCORD_* settings; time; the tables
    protocol/              the pure Matrix core (no Django)

How a change flows: a chat action calls :mod:`federation.hooks` -> (after commit) the bridge's
sink builds the event -> :func:`federation.handlers.room_events.send_event` -> persisted and queued
in the outbox -> :mod:`federation.handlers.sender`. An event from elsewhere (transaction, handshake,
backfill) -> checks in :mod:`federation.handlers` -> :func:`federation.store.events.persist_event`
-> (after commit) the bridge's listener -> ``rooms.actions``.
"""
