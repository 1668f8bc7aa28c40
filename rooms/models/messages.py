"""Messages with their edit history, reactions and mentions.

A message stores its markdown source (``text``) and the sanitized HTML rendered once at write time
(``html``). Deleting keeps a tombstone row (``deleted_at`` set, text cleared) so threads and replies
that point at it stay consistent.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from chat.ids import random_id


class Message(models.Model):
    """A chat message, or a system message when ``type`` is set (``uj`` joined, ``ul`` left, ...)."""

    id = models.CharField(primary_key=True, max_length=64, default=random_id, editable=False)
    room = models.ForeignKey("rooms.Room", on_delete=models.CASCADE, related_name="messages")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    type = models.CharField(max_length=32, blank=True)
    text = models.TextField(blank=True)
    html = models.TextField(blank=True)
    alias = models.CharField(max_length=255, blank=True)
    emoji = models.CharField(max_length=64, blank=True)
    avatar = models.CharField(max_length=1024, blank=True)
    attachments = models.JSONField(default=list, blank=True)
    file = models.ForeignKey("rooms.Upload", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    edited_at = models.DateTimeField(null=True, blank=True)
    edited_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                  related_name="+")
    deleted_at = models.DateTimeField(null=True, blank=True)
    # Threads: a reply points at its thread's root; the root keeps the counters and followers.
    thread_root = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="thread_replies")
    thread_count = models.PositiveIntegerField(default=0)
    thread_last_at = models.DateTimeField(null=True, blank=True)
    followers = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="followed_threads")
    # Quotes / replies: the message quoted (shown as an attachment in Rocket.Chat's shape).
    quoted = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    show_in_room = models.BooleanField(default=True)
    pinned = models.BooleanField(default=False)
    pinned_at = models.DateTimeField(null=True, blank=True)
    pinned_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                  related_name="+")
    # A "discussion-created" system message points at the discussion (Rocket.Chat's ``drid``);
    # its ``dcount``/``dlm`` are read from that room, so posts there write nothing here.
    discussion = models.ForeignKey("rooms.Room", null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    mentions_all = models.BooleanField(default=False)
    mentions_here = models.BooleanField(default=False)

    class Meta:
        indexes = [
            models.Index(fields=["room", "created_at"]),
            models.Index(fields=["thread_root", "created_at"]),
        ]
        ordering = ["created_at"]

    def __str__(self) -> str:
        return f"{self.id}: {self.text[:40]}"

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None


class MessageEdit(models.Model):
    """One previous version of an edited message."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="edits")
    previous_text = models.TextField(blank=True)
    edited_at = models.DateTimeField(default=timezone.now)
    edited_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["edited_at"]


class Reaction(models.Model):
    """A user's emoji reaction to a message (``:thumbsup:`` form); toggled by the same call."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="reactions")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    emoji = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["message", "user", "emoji"], name="unique_reaction")]
        ordering = ["created_at"]


class Mention(models.Model):
    """A user mentioned by ``@username`` in a message."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="mentions")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["message", "user"], name="unique_mention")]


class Star(models.Model):
    """A message a user starred (Rocket.Chat's ``chat.starMessage``): theirs alone to see."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="stars")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["message", "user"], name="unique_star")]


class MessageReport(models.Model):
    """A message reported to the server's moderators (Rocket.Chat's ``chat.reportMessage``)."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="reports")
    reporter = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    description = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)
    resolved = models.BooleanField(default=False)

    class Meta:
        ordering = ["-created_at"]
