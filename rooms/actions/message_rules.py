"""The server settings that govern changing messages, as Rocket.Chat applies them.

* Editing: ``Message_AllowEditing`` off refuses edits by anyone without ``edit-message``;
  ``Message_AllowEditing_BlockEditInMinutes`` (0: never) refuses edits of messages that old.
* Deleting: ``force-delete-message`` holders may always delete; else ``Message_AllowDeleting`` off
  refuses every deletion and ``Message_AllowDeleting_BlockDeleteInMinutes`` (0: never) those of
  messages older than that.
* ``bypass-time-limit-edit-and-delete`` holders are exempt from both time limits. Remote users
  (Matrix puppets) are exempt from all of these: their own server decides what they may change.
* ``Message_AllowBadWordsFilter`` masks each word of ``Message_BadWordsFilterList`` (whole words,
  any case) with one ``*`` per character in new and edited texts before they are stored.

Settings are read through :mod:`accounts.server_settings` on every call, so a change applies at once.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import TYPE_CHECKING

from django.utils import timezone

from accounts import server_settings
from accounts.permissions import has_permission
from chat.api_errors import ApiError, NotAllowed

if TYPE_CHECKING:
    from accounts.models import User
    from rooms.models import Message


def _age_minutes(msg: Message) -> float:
    return (timezone.now() - msg.created_at).total_seconds() / 60


def check_can_edit(editor: User, msg: Message) -> None:
    """Raise Rocket.Chat's error if the settings forbid ``editor`` to edit ``msg`` now:
    ``error-action-not-allowed`` (editing off) or ``error-message-editing-blocked`` (too old)."""
    if editor.is_remote:
        return
    if not server_settings.flag("Message_AllowEditing") and not has_permission(editor, "edit-message", msg.room):
        raise NotAllowed("Message editing not allowed", "error-action-not-allowed")
    block = server_settings.number("Message_AllowEditing_BlockEditInMinutes")
    if block and not has_permission(editor, "bypass-time-limit-edit-and-delete") and _age_minutes(msg) >= block:
        raise ApiError("Message editing is blocked", "error-message-editing-blocked")


def may_force_delete(user: User, msg: Message) -> bool:
    """Whether ``user`` deletes ``msg`` whatever the settings and own-message rules say
    (``force-delete-message``); never for a deleted or system message."""
    if msg.deleted_at or msg.type:
        return False
    return has_permission(user, "force-delete-message", msg.room)


def check_can_delete(user: User, msg: Message) -> None:
    """Raise ``error-action-not-allowed`` if the settings forbid ``user`` to delete ``msg`` now
    (deleting off, or the message older than the delete window)."""
    if user.is_remote:
        return
    if not server_settings.flag("Message_AllowDeleting"):
        raise NotAllowed("Not allowed", "error-action-not-allowed")
    block = server_settings.number("Message_AllowDeleting_BlockDeleteInMinutes")
    if block and not has_permission(user, "bypass-time-limit-edit-and-delete") and round(_age_minutes(msg)) > block:
        raise NotAllowed("Not allowed", "error-action-not-allowed")


@lru_cache(maxsize=8)
def _bad_words_pattern(words: str) -> re.Pattern[str] | None:
    items = sorted(set(server_settings.values_list(words)), key=len, reverse=True)
    if not items:
        return None
    return re.compile(r"(?<!\w)(?:" + "|".join(re.escape(w) for w in items) + r")(?!\w)", re.IGNORECASE)


def filter_bad_words(text: str) -> str:
    """``text`` with the bad words masked when the filter is on (whole words, any case, one ``*``
    per character); unchanged when it is off or the list is empty."""
    if not text or not server_settings.flag("Message_AllowBadWordsFilter"):
        return text
    pattern = _bad_words_pattern(server_settings.text("Message_BadWordsFilterList"))
    if pattern is None:
        return text
    return pattern.sub(lambda m: "*" * len(m.group(0)), text)
