"""Teams (Rocket.Chat's ``teams.*``): a named group of people with a main room and more rooms.

Design: a team's members *are* the joined members of its main room, and their team roles are
their roles in that room (``owner``, ``moderator``, ``leader``). Rocket.Chat keeps a separate
team-member collection that it must keep in step with the main room's subscriptions; one source
of truth removes that whole class of drift (a member of the room who is "not in the team"). The
other rooms of a team point at it with ``Room.team``; the main room also has ``Room.team_main``.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from chat.ids import random_id


class Team(models.Model):
    """A team: ``type`` 0 public (main room a channel) or 1 private (main room a private group).

    ``main_room`` is the room whose members are the team's; deleting that room deletes the team
    (its other rooms stay, no longer in a team).
    """

    PUBLIC, PRIVATE = 0, 1
    TYPES = [(PUBLIC, "public"), (PRIVATE, "private")]

    id = models.CharField(primary_key=True, max_length=64, default=random_id, editable=False)
    name = models.CharField(max_length=255, unique=True)
    type = models.PositiveSmallIntegerField(choices=TYPES, default=PUBLIC)
    main_room = models.OneToOneField("rooms.Room", on_delete=models.CASCADE, related_name="main_of_team")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
