"""Federation behaviour on top of the store: receiving transactions (:mod:`.receive`, with
:mod:`.pdu_checks`), our own events (:mod:`.room_events`), sending the outbox (:mod:`.sender`),
history (:mod:`.backfill`), serving events to peers (:mod:`.serving`), membership handshakes
(:mod:`.joins`), EDU dispatch (:mod:`.edus`) and keys (:mod:`.keys`). Never imports the chat."""
