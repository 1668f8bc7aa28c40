"""Federation tables: remote keys, inbound transactions, the Matrix event store, the outbox.

Design notes
------------
* **Keys.** Our own signing key lives in a file in ``CONCORD_DATA_DIR`` (see :mod:`federation.signing_key`),
  never in the database. Remote servers' verify keys are cached in :class:`RemoteServerKey` with
  their validity; the signed key response they came in is kept (:class:`RemoteKeyResponse`) so that
  we can serve it again as a notary, signatures intact.
* **Event store.** :class:`MatrixRoom` is a Matrix room we take part in (``chat_room`` links it to a
  chat room; the "rooms across servers" work fills it). :class:`MatrixEvent` holds every PDU we
  have, accepted, rejected or soft-failed, as it travelled, plus the state *after* it as a
  ``[type, state_key, event_id]`` list (a full map per state-changing event; rooms of a chat server are
  small, and the map makes ``state``/``state_ids`` at any event a single read). Outliers (events
  fetched only to check auth chains) have no state.
* **Inbound.** :class:`InboundTransaction` remembers each ``(origin, txn_id)`` with the answer we
  gave, so a replay gets the same answer and nothing twice. :class:`StagedPDU` is the durable queue
  of PDUs that passed the transaction boundary, processed one room at a time in arrival order.
* **Outbox.** :class:`Destination` is one remote server's queue state (backoff, lease, catch-up),
  :class:`OutboundPDU` / :class:`OutboundEDU` are the queued items. Items get a ``txn_id`` when a
  transaction is built and keep it until the peer answers 200, so a retry resends the same
  transaction under the same ID (see :mod:`federation.store.outbox`).
"""

from __future__ import annotations

from django.db import models


class RemoteServerKey(models.Model):
    """A remote server's Ed25519 verify key as we last saw it.

    ``valid_until_ts`` is the response's validity (ms); ``expired_ts`` is set for keys seen only in
    ``old_verify_keys``. A key may verify a request only while ``valid_until_ts`` is in the future,
    and an event only if it was valid at the event's ``origin_server_ts``.
    """

    server_name = models.CharField(max_length=255)
    key_id = models.CharField(max_length=255)
    key = models.CharField(max_length=64)
    valid_until_ts = models.BigIntegerField(default=0)
    expired_ts = models.BigIntegerField(null=True, blank=True)
    fetched_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["server_name", "key_id"], name="fed_remote_key_unique")]


class RemoteKeyResponse(models.Model):
    """The signed ``/_matrix/key/v2/server`` response a remote key came in (served again as notary)."""

    server_name = models.CharField(max_length=255)
    key_id = models.CharField(max_length=255)
    valid_until_ts = models.BigIntegerField(default=0)
    response = models.JSONField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["server_name", "key_id"], name="fed_key_response_unique")]


class InboundTransaction(models.Model):
    """A ``/send/{txnId}`` transaction we answered: the answer is replayed for the same ``(origin, txn_id)``."""

    origin = models.CharField(max_length=255)
    txn_id = models.CharField(max_length=255)
    response_code = models.IntegerField(default=200)
    response = models.JSONField()
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["origin", "txn_id"], name="fed_inbound_txn_unique")]


class MatrixRoom(models.Model):
    """A Matrix room this server takes part in.

    ``current_state`` lists ``[type, state_key, event_id]``; ``forward_extremities`` lists the
    events with no successors we know (the ``prev_events`` of our next event).
    """

    room_id = models.CharField(primary_key=True, max_length=255)
    room_version = models.CharField(max_length=32)
    chat_room = models.OneToOneField("rooms.Room", null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="matrix_room")
    current_state = models.JSONField(default=list)
    forward_extremities = models.JSONField(default=list)
    published = models.BooleanField(default=False, help_text="listed in /publicRooms")
    created_at = models.DateTimeField(auto_now_add=True)


class MatrixRoomAlias(models.Model):
    """A room alias (``#name:our.server``) answered by ``/query/directory``."""

    alias = models.CharField(primary_key=True, max_length=255)
    room = models.ForeignKey(MatrixRoom, on_delete=models.CASCADE, related_name="aliases")


class MatrixEvent(models.Model):
    """One PDU of a room, with how we judged it and the room state after it.

    ``stream`` (the auto primary key) is our arrival order. ``rejected_reason`` non-empty means the
    event failed auth (kept to answer auth-chain questions, never shown); ``soft_failed`` events are
    kept and served but not shown and not used as prev_events. ``outlier`` events were fetched only
    as auth or state events: we do not know the state at them.
    """

    stream = models.BigAutoField(primary_key=True)
    event_id = models.CharField(max_length=255, unique=True)
    room = models.ForeignKey(MatrixRoom, on_delete=models.CASCADE, related_name="events", db_constraint=False)
    type = models.CharField(max_length=255)
    state_key = models.CharField(max_length=255, null=True, blank=True)
    sender = models.CharField(max_length=255)
    origin_server_ts = models.BigIntegerField()
    depth = models.BigIntegerField()
    pdu = models.JSONField()
    outlier = models.BooleanField(default=False)
    rejected_reason = models.CharField(max_length=255, blank=True)
    soft_failed = models.BooleanField(default=False)
    state_after = models.JSONField(null=True, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)
    # How it arrived ("live" / "history") while its listeners (the chat mirror) have not run yet;
    # "" once they have. Set in the transaction that stores the event, cleared after commit, so a
    # crash in between leaves it for the re-drive (see federation.store.events).
    pending_arrival = models.CharField(max_length=16, blank=True, default="", db_index=True)

    class Meta:
        indexes = [models.Index(fields=["room", "depth"], name="fed_event_room_depth")]


class StagedPDU(models.Model):
    """A received PDU waiting to be processed (durable staging; processed per room in ``id`` order)."""

    origin = models.CharField(max_length=255)
    room_id = models.CharField(max_length=255, db_index=True)
    event_id = models.CharField(max_length=255)
    pdu = models.JSONField()
    received_at = models.DateTimeField(auto_now_add=True)


class Destination(models.Model):
    """Outbound queue state for one remote server.

    ``next_attempt_at`` is when a retry is due (null: no backoff). ``lease_until`` / ``lease_token``
    make sure one sender at a time owns the destination; a crashed sender's lease simply runs out.
    ``failing_since`` starts the catch-up clock. ``txn_counter`` makes transaction IDs unique.
    """

    server_name = models.CharField(primary_key=True, max_length=255)
    retry_interval = models.FloatField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True, db_index=True)
    failing_since = models.DateTimeField(null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    lease_token = models.CharField(max_length=64, blank=True)
    txn_counter = models.BigIntegerField(default=0)
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    # Set when the rooms were told this server stopped answering (told again when it is back).
    stall_noticed_at = models.DateTimeField(null=True, blank=True)


class OutboundPDU(models.Model):
    """A PDU queued for a destination. ``txn_id`` is set once it is part of a built transaction."""

    destination = models.ForeignKey(Destination, on_delete=models.CASCADE, related_name="pdus")
    room_id = models.CharField(max_length=255)
    event_id = models.CharField(max_length=255)
    pdu = models.JSONField()
    txn_id = models.CharField(max_length=64, blank=True, db_index=True)
    queued_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["destination", "event_id"], name="fed_outbound_pdu_unique")]


class OutboundEDU(models.Model):
    """An EDU queued for a destination; same ``txn_id`` rule as :class:`OutboundPDU`."""

    destination = models.ForeignKey(Destination, on_delete=models.CASCADE, related_name="edus")
    edu_type = models.CharField(max_length=255)
    content = models.JSONField()
    txn_id = models.CharField(max_length=64, blank=True, db_index=True)
    queued_at = models.DateTimeField(auto_now_add=True)


class BridgedMessage(models.Model):
    """A chat message and the ``m.room.message`` event it is on the Matrix side (either direction)."""

    event_id = models.CharField(primary_key=True, max_length=255)
    message_id = models.CharField(max_length=64, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)


class BridgedReaction(models.Model):
    """A chat reaction and the ``m.reaction`` event that carries it (either side may have made it):
    un-reacting redacts ``event_id``, a redaction of ``event_id`` removes the chat reaction."""

    event_id = models.CharField(primary_key=True, max_length=255)
    message_id = models.CharField(max_length=64)
    user_id = models.CharField(max_length=64)
    emoji = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["message_id", "user_id", "emoji"], name="fed_reaction_lookup")]


class PendingMedia(models.Model):
    """A file from another server still to be fetched from its origin: a message's file
    (``message_id``) or a remote user's avatar (``user_id``). Durable: the fetch task works through
    these, and the beat task re-drives what a lost task left. ``key`` is the file message's event
    ID, or ``avatar:<Matrix ID>``."""

    key = models.CharField(primary_key=True, max_length=255)
    message_id = models.CharField(max_length=64, blank=True)
    user_id = models.CharField(max_length=64, blank=True)
    server_name = models.CharField(max_length=255)
    media_id = models.CharField(max_length=255)
    name = models.CharField(max_length=255)
    content_type = models.CharField(max_length=255, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True, db_index=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)


class ServerRule(models.Model):
    """A server allowed or denied at run time (Django admin), used when the matching
    ``CONCORD_FEDERATION_ALLOWED_SERVERS`` / ``_DENIED_SERVERS`` environment list is empty (the
    environment wins when set). ``pattern``: a server name (with or without port) or ``*.domain``."""

    ALLOW, DENY = "allow", "deny"
    KINDS = [(ALLOW, "allow"), (DENY, "deny")]

    pattern = models.CharField(max_length=255)
    kind = models.CharField(max_length=5, choices=KINDS)
    note = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["pattern", "kind"], name="fed_server_rule_unique")]
        ordering = ["kind", "pattern"]

    def __str__(self) -> str:
        return f"{self.kind} {self.pattern}"
