"""Rocket.Chat-style integrations: incoming and outgoing webhooks, and the history of deliveries.

An :class:`Integration` posts as its ``user`` (Rocket.Chat's ``username``): an incoming one into
its channels when ``POST /hooks/<id>/<token>`` is called, an outgoing one by calling its ``urls``
when a message is posted where it listens. ``channels`` keeps the channel list as given
(``#name``, ``#id``, ``@username``, or for outgoing ``all_public_channels``,
``all_private_groups``, ``all_direct_messages``); ``room_ids`` holds the rooms the ``#`` entries
resolved to when the integration was saved, so a rename does not silently detach it.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from chat.ids import random_id


class Integration(models.Model):
    INCOMING = "webhook-incoming"
    OUTGOING = "webhook-outgoing"
    TYPES = ((INCOMING, "Incoming webhook"), (OUTGOING, "Outgoing webhook"))
    RETRY_DELAYS = ("powers-of-ten", "powers-of-two", "increments-of-two")

    id = models.CharField(primary_key=True, max_length=32, default=random_id, editable=False)
    type = models.CharField(max_length=32, choices=TYPES)
    name = models.CharField(max_length=255)
    enabled = models.BooleanField(default=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+",
                             help_text="The user the integration posts as.")
    channels = models.JSONField(default=list, blank=True)
    room_ids = models.JSONField(default=list, blank=True)
    alias = models.CharField(max_length=255, blank=True)
    emoji = models.CharField(max_length=64, blank=True)
    avatar = models.CharField(max_length=1024, blank=True)
    token = models.CharField(max_length=128)
    # Incoming: a payload may name its own channel only when allowed.
    override_destination_channel = models.BooleanField(default=False)
    # Incoming, a Concord extension instead of scripts: {message field: template with {dotted.path}}.
    payload_mapping = models.JSONField(default=dict, blank=True)
    # Outgoing.
    event = models.CharField(max_length=32, blank=True)
    urls = models.JSONField(default=list, blank=True)
    trigger_words = models.JSONField(default=list, blank=True)
    trigger_word_anywhere = models.BooleanField(default=False)
    run_on_edits = models.BooleanField(default=False)
    impersonate_user = models.BooleanField(default=False)
    retry_failed_calls = models.BooleanField(default=False)
    retry_count = models.PositiveIntegerField(default=0)
    retry_delay = models.CharField(max_length=32, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["type", "enabled"])]
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.type})"


class IntegrationHistory(models.Model):
    """One outgoing delivery of one message to one URL, with its last step (Rocket.Chat's history)."""

    id = models.CharField(primary_key=True, max_length=32, default=random_id, editable=False)
    integration = models.ForeignKey(Integration, on_delete=models.CASCADE, related_name="history")
    event = models.CharField(max_length=32)
    url = models.CharField(max_length=2048)
    data = models.JSONField(default=dict, blank=True)
    trigger_word = models.CharField(max_length=255, blank=True)
    step = models.CharField(max_length=64)
    attempts = models.PositiveIntegerField(default=0)
    http_status = models.PositiveIntegerField(null=True, blank=True)
    http_result = models.TextField(blank=True)
    http_error = models.TextField(blank=True)
    error = models.BooleanField(default=False)
    finished = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["integration", "-updated_at"])]
        ordering = ["-updated_at"]
