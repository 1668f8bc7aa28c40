"""The one writer of the Matrix tables: events and their listeners (:mod:`.events`), reading room
state (:mod:`.room_state`), the outbox (:mod:`.outbox`, no HTTP), remote keys (:mod:`.keys`) and
inbound staging (:mod:`.staging`). Imports the protocol core, config and transport errors only."""
