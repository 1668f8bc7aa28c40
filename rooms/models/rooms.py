"""Rooms and memberships (Rocket.Chat's "rooms" and "subscriptions").

Per-member counters without per-message writes to every member
-------------------------------------------------------------

A member's ``unread``, ``groupMentions`` and ``open`` are not stored counts that every post
increments (a post to a 50-member room used to write 51 rows and hold their locks until commit).
They derive from two counters on the room, which only grow, and the member's position in them:

* ``Room.shown_count``: messages posted with ``do_send_message`` that show in the room (not system
  messages, not thread replies kept in their thread). ``Room.group_mention_count``: posts with
  ``@all``/``@here`` (shown or not).
* ``Membership.seen_shown`` / ``seen_group``: the room's counters when the member's counters were
  last *settled* (read, marked unread, joined, closed the room, posted, left).
* ``Membership.unread_base`` / ``group_mentions_base``: what was counted at that moment and cannot
  be derived from the room counters (a thread reply counts only for the thread's followers, and
  ``subscriptions.unread`` from a message counts the messages after it).

so that, for a joined member, ``unread = unread_base + (room.shown_count - seen_shown)``, likewise
``group_mentions``, and ``open`` is ``open_flag`` or "a message showed since". Members not joined
(invited, left) keep their settled values: nothing derives for them, exactly as no post counted
for them before. ``user_mentions`` stays a stored count, written only for the members mentioned.
A member's effective ``updated_at`` (:attr:`Membership.changed_at`) is the later of its row's and
the room's ``counters_at`` (when a post last moved every joined member's counters), so
``subscriptions.get(updatedSince)`` still lists a subscription whose unread grew.

A post then writes the room row, the sender's own row (settled, read up to its message) and, only
when there are any, the rows of the members it mentions or of a thread's followers.
:meth:`Membership.settle` is the one place that folds the derived part into the stored one; the
post's SQL in :mod:`rooms.actions.messages` does the same for the sender.
"""

from __future__ import annotations

from datetime import datetime

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
    custom_fields = models.JSONField(default=dict, blank=True)  # Rocket.Chat's customFields (*.setCustomFields)
    archived = models.BooleanField(default=False)
    default = models.BooleanField(default=False)
    creator = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="created_rooms")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    last_message_at = models.DateTimeField(null=True, blank=True)
    message_count = models.PositiveIntegerField(default=0)
    # What members' counters derive from (module docstring); both only ever grow.
    shown_count = models.PositiveIntegerField(default=0)  # posts shown in the room
    group_mention_count = models.PositiveIntegerField(default=0)  # posts with @all/@here
    counters_at = models.DateTimeField(null=True, blank=True)  # when either last grew
    # For DMs: a sorted, comma-joined list of member ids, so the same pair finds the same room.
    dm_key = models.CharField(max_length=1024, blank=True, db_index=True)
    # Discussions (Rocket.Chat's ``prid``): the room this one is a discussion of. A discussion is a
    # room of its own (members, messages); deleting the parent leaves it as a plain room.
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="discussions")
    # Teams (Rocket.Chat's ``teamId``/``teamMain``/``teamDefault``): the team the room belongs to,
    # whether it is that team's main room, and whether new team members join it.
    team = models.ForeignKey("rooms.Team", null=True, blank=True, on_delete=models.SET_NULL, related_name="rooms")
    team_main = models.BooleanField(default=False)
    team_default = models.BooleanField(default=False)

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

    @classmethod
    def counters_of(cls, room_id: str) -> tuple[int, int]:
        """The room's ``(shown_count, group_mention_count)`` as committed now, for :meth:`Membership.settle`."""
        shown, group = cls.objects.filter(id=room_id).values_list("shown_count", "group_mention_count").get()
        return int(shown), int(group)


class Membership(models.Model):
    """A user's relation to a room: joined or invited, with room roles, mute/ban flags and counters.

    A banned user keeps a row with ``banned=True`` and ``state=LEFT`` so that a rejoin can be refused
    until an unban. ``last_read_at`` is the read position (read receipts, threads' unread); the
    counters ``unread``, ``group_mentions`` and ``open`` are derived from the room's counters (see
    the module docstring) and read ``room``: select it with the membership when listing.
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
    open_flag = models.BooleanField(default=True)  # as last settled; see ``open``
    favorite = models.BooleanField(default=False)  # Rocket.Chat's "f": the room is starred in the list
    ignored = models.JSONField(default=list, blank=True)  # user IDs whose messages this member hides
    unread_base = models.PositiveIntegerField(default=0)
    user_mentions = models.PositiveIntegerField(default=0)
    group_mentions_base = models.PositiveIntegerField(default=0)
    seen_shown = models.PositiveIntegerField(default=0)  # room.shown_count when last settled
    seen_group = models.PositiveIntegerField(default=0)  # room.group_mention_count when last settled
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

    # The fields :meth:`settle` writes (pass them to ``save(update_fields=...)``).
    SETTLED_FIELDS = ("unread_base", "group_mentions_base", "open_flag", "seen_shown", "seen_group")

    def _grown(self, count: int, seen: int) -> int:
        """How far a room counter moved past the member's position (0 unless joined)."""
        return count - seen if self.state == self.JOINED and count > seen else 0

    @property
    def unread(self) -> int:
        """Messages of others shown in the room since the read position, plus thread replies for a follower."""
        return self.unread_base + self._grown(self.room.shown_count, self.seen_shown)

    @property
    def group_mentions(self) -> int:
        """``@all``/``@here`` posts of others since the read position."""
        return self.group_mentions_base + self._grown(self.room.group_mention_count, self.seen_group)

    @property
    def open(self) -> bool:
        """Whether the room shows in the member's list: as last set, or a message showed since."""
        return self.open_flag or self._grown(self.room.shown_count, self.seen_shown) > 0

    @property
    def changed_at(self) -> datetime:
        """When the subscription last changed: its row's ``updated_at``, or a later post that moved
        every joined member's counters (``room.counters_at``)."""
        at = self.room.counters_at
        if self.state == self.JOINED and at is not None and at > self.updated_at:
            return at
        return self.updated_at

    def settle(self, shown_count: int, group_mention_count: int) -> None:
        """Fold what derives from the room's counters into the stored fields (not saved).

        Pass the room's counters read in the current transaction (never older than the row's
        markers: markers never move back). Afterwards ``unread``, ``group_mentions`` and ``open``
        say the same as before, with the markers at the given counters, so the member's counters
        can be changed by writing the stored fields alone (:attr:`SETTLED_FIELDS`).
        """
        grown = self._grown(shown_count, self.seen_shown)
        self.unread_base += grown
        self.group_mentions_base += self._grown(group_mention_count, self.seen_group)
        self.open_flag = self.open_flag or grown > 0
        self.seen_shown = max(self.seen_shown, shown_count)
        self.seen_group = max(self.seen_group, group_mention_count)

    def settle_read(self, shown_count: int, group_mention_count: int) -> None:
        """:meth:`settle`, then clear the counters: the member has read everything up to the given
        room counters (``open`` is kept as it was)."""
        self.settle(shown_count, group_mention_count)
        self.unread_base = self.user_mentions = self.group_mentions_base = 0
