"""Uploaded files: attachments of messages, with a thumbnail for images."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from chat.ids import random_id


class Upload(models.Model):
    """A file uploaded into a room. ``confirmed`` once a message carries it (``rooms.mediaConfirm``)."""

    id = models.CharField(primary_key=True, max_length=32, default=random_id, editable=False)
    room = models.ForeignKey("rooms.Room", on_delete=models.CASCADE, related_name="uploads")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    file = models.FileField(upload_to="uploads/%Y/%m/")
    thumbnail = models.ImageField(upload_to="thumbs/%Y/%m/", blank=True)
    name = models.CharField(max_length=255)
    content_type = models.CharField(max_length=255)
    size = models.PositiveBigIntegerField(default=0)
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    description = models.TextField(blank=True)
    confirmed = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    @property
    def kind(self) -> str:
        """``image``, ``audio``, ``video`` or ``file``."""
        major = self.content_type.split("/", 1)[0]
        return major if major in ("image", "audio", "video") else "file"
