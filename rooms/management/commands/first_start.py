"""``manage.py first_start``: what a fresh Concord has, as a fresh Rocket.Chat does: the
``rocket.cat`` bot and a default ``#general`` channel that every new user joins. The run command
calls it after ``migrate``; it does something only on a fresh server (no ``rocket.cat`` yet), so
an admin who later deletes ``#general`` or changes it keeps their choice."""

from __future__ import annotations

import secrets
from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction

from accounts.actions import do_create_user
from accounts.models import User
from rooms.actions.memberships import do_add_member
from rooms.actions.rooms import do_create_room, do_set_default
from rooms.models import Room

BOT = "rocket.cat"
GENERAL = "general"


class Command(BaseCommand):
    help = "Create the rocket.cat bot and the default #general channel on a fresh server."

    def handle(self, *args: Any, **options: Any) -> None:
        if User.objects.filter(username=BOT).exists():
            return
        with transaction.atomic():
            bot = do_create_user(BOT, "rocket.cat@concord.invalid", secrets.token_urlsafe(32), "Rocket.Cat",
                                 is_bot=True)
            bot.set_unusable_password()  # a bot of the server: nobody signs in as it
            bot.save(update_fields=["password"])
            general = Room.objects.filter(type=Room.CHANNEL, name=GENERAL).first()
            if general is None:
                general = do_create_room(bot, Room.CHANNEL, GENERAL)
            if not general.default:
                general = do_set_default(general, True)
            for user in User.objects.filter(is_active=True, is_remote=False).exclude(id=bot.id):
                do_add_member(general, user, system_message=False)
        self.stdout.write(f"First start: created @{BOT} and #{GENERAL} (default channel).")
