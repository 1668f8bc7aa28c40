"""Rooms and memberships (Rocket.Chat's "rooms" and "subscriptions")."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from chat.ids import random_id


class Room(models.Model):
    """A channel (``c``, public), private group (``p``) or direct message (``d``, 1:1 or multi-user).

    ``read_only`` and ``broadcast`` both restrict posting to owners and moderators (and holders of
    ``post-readonly``); broadcast rooms additionally show replies as direct follow-ups only.
    ``history_visibility`` is Matrix's: ``shared`` (members see all history, the default),
    ``invited`` / ``joined`` (members see messages sent while the setting was so only from their
    invitation / joining on), ``world_readable`` (as shared; other servers may read without a member).
    """

    CHANNEL, GROUP, DIRECT = "c", "p", "d"
    TYPES = [(CHANNEL, "public channel"), (GROUP, "private group"), (DIRECT, "direct message")]
    SHARED, JOINED_ONLY, INVITED_ONLY, WORLD_READABLE = "shared", "joined", "invited", "world_readable"
    # The system message of a visibility change (its text: the new value); these messages are also
    # the record of when each setting was in force (rooms.access.hidden_history).
    HISTORY_VISIBILITY_MESSAGE = "room_changed_history_visibility"
    HISTORY_VISIBILITIES = [(SHARED, "members see all history"),
                            (INVITED_ONLY, "members see history from their invitation"),
                            (JOINED_ONLY, "members see history from when they joined"),
                            (WORLD_READABLE, "anyone may read the history")]

    id = models.CharField(primary_key=True, max_length=64, default=random_id, editable=False)
    type = models.CharField(max_length=1, choices=TYPES)
    name = models.CharField(max_length=255, blank=True, db_index=True)
    fname = models.CharField(max_length=255, blank=True)
    topic = models.TextField(blank=True)
    description = models.TextField(blank=True)
    announcement = models.TextField(blank=True)
    read_only = models.BooleanField(default=False)
    broadcast = models.BooleanField(default=False)
    # Rocket.Chat's join code: channels.join needs it unless one may join without (a hash is not
    # kept: Rocket.Chat shows the code to the room's editors).
    join_code = models.CharField(max_length=255, blank=True)
    # Who sees messages from before they were in the room (Matrix's m.room.history_visibility).
    history_visibility = models.CharField(max_length=16, choices=HISTORY_VISIBILITIES, default=SHARED)
    archived = models.BooleanField(default=False)
    default = models.BooleanField(default=False)
    creator = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="created_rooms")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    last_message_at = models.DateTimeField(null=True, blank=True)
    message_count = models.PositiveIntegerField(default=0)
    # For DMs: a sorted, comma-joined list of member ids, so the same pair finds the same room.
    dm_key = models.CharField(max_length=1024, blank=True, db_index=True)

    class Meta:
        indexes = [models.Index(fields=["type", "name"])]

    def __str__(self) -> str:
        return self.name or self.id

    @property
    def display_name(self) -> str:
        return self.fname or self.name

    @property
    def is_direct(self) -> bool:
        return self.type == self.DIRECT


class Membership(models.Model):
    """A user's relation to a room: joined or invited, with room roles, mute/ban flags and counters.

    A banned user keeps a row with ``banned=True`` and ``state=LEFT`` so that a rejoin can be refused
    until an unban. ``last_read_at`` is the read position that drives unread counts and read receipts.
    """

    JOINED, INVITED, LEFT = "joined", "invited", "left"
    STATES = [(JOINED, JOINED), (INVITED, INVITED), (LEFT, LEFT)]

    id = models.CharField(primary_key=True, max_length=32, default=random_id, editable=False)
    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    state = models.CharField(max_length=8, choices=STATES, default=JOINED)
    roles = models.JSONField(default=list, blank=True)
    muted = models.BooleanField(default=False)
    banned = models.BooleanField(default=False)
    invited_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    open = models.BooleanField(default=True)
    favorite = models.BooleanField(default=False)  # Rocket.Chat's "f": the room is starred in the list
    ignored = models.JSONField(default=list, blank=True)  # user IDs whose messages this member hides
    unread = models.PositiveIntegerField(default=0)
    user_mentions = models.PositiveIntegerField(default=0)
    group_mentions = models.PositiveIntegerField(default=0)
    last_read_at = models.DateTimeField(null=True, blank=True)
    joined_at = models.DateTimeField(auto_now_add=True)
    # When the member was last invited (kept on accepting) and last joined: what the room's
    # history visibility measures from.
    invited_at = models.DateTimeField(null=True, blank=True)
    joined_since = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["room", "user"], name="unique_membership")]
        indexes = [models.Index(fields=["user", "state"]), models.Index(fields=["room", "state"])]

    def __str__(self) -> str:
        return f"{self.user_id} in {self.room_id} ({self.state})"

    @property
    def is_joined(self) -> bool:
        return self.state == self.JOINED
