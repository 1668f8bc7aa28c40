"""Run-time server settings: the few of Rocket.Chat's settings that Concord honours.

Design:

* :data:`DEFINITIONS` lists every setting Concord really enforces, with Rocket.Chat's id, type and
  visibility (``public``: readable without signing in, ``settings.public``). Its default comes from
  the environment (the Django settings, read at call time), so a server that never touches the
  settings behaves as it is configured; a value an admin stores (``POST /api/v1/settings/:_id``,
  Django admin) replaces that default. Anything not listed does not exist for the REST API
  (Rocket.Chat's answer for an unknown id).
* The enforcing code reads a setting only through :func:`value` (or its typed forms
  :func:`flag`, :func:`number`, :func:`text`). The stored values live in
  :class:`~accounts.models.ServerSetting`; :func:`value` reads them all with one Redis GET (the
  Django cache, shared by every process), loading the table into it on a miss. A writer
  (:func:`accounts.actions.do_set_server_setting`) puts the fresh table into the cache after its
  commit, so the writing process sees a change at once and every other process within
  :data:`LOCAL_SECONDS` (its own copy's lifetime).
* A reader that loaded the table just before a commit only adds its copy when the key is absent,
  so it cannot replace a writer's fresher one. Two admins writing at the same instant could leave
  one write out of the cache; the cache entry expires after :data:`CACHE_SECONDS`, which bounds it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError

from accounts.models import ServerSetting
from chat.api_errors import ApiError

CACHE_KEY = "server-settings:v1"
CACHE_SECONDS = 300
MAX_STRING_LENGTH = 10000

BOOLEAN, INT, STRING, SELECT = "boolean", "int", "string", "select"


@dataclass(frozen=True)
class SettingDefinition:
    """One honoured setting: Rocket.Chat's ``_id``, ``type``, group/section, whether it is
    ``public``, its default (a function, read when needed), the ``values`` a ``select`` takes and
    the smallest ``int`` accepted."""

    id: str
    type: str
    default: Callable[[], Any]
    group: str
    public: bool = True
    section: str = ""
    values: tuple[str, ...] = ()
    min_value: int | None = None
    description: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def _env(name: str, fallback: Any) -> Callable[[], Any]:
    return lambda: getattr(settings, name, fallback)


DEFINITIONS: dict[str, SettingDefinition] = {d.id: d for d in (
    SettingDefinition("Site_Name", STRING, _env("SITE_NAME", "Concord"), "General",
                      description="The name shown by the web client and sign-in pages (CONCORD_SITE_NAME)."),
    SettingDefinition("Accounts_RegistrationForm", SELECT,
                      lambda: "Public" if getattr(settings, "OPEN_REGISTRATION", True) else "Disabled",
                      "Accounts", section="Registration", values=("Public", "Disabled"),
                      description="Self sign-up (users.register, the sign-up page): Public or Disabled "
                                  "(CONCORD_OPEN_REGISTRATION)."),
    SettingDefinition("Accounts_AllowUserProfileChange", BOOLEAN, lambda: True, "Accounts",
                      description="Users may change their own profile (users.updateOwnBasicInfo)."),
    SettingDefinition("Accounts_AllowUserAvatarChange", BOOLEAN, lambda: True, "Accounts",
                      description="Users may change their own avatar (users.setAvatar, users.resetAvatar)."),
    SettingDefinition("Accounts_AllowDeleteOwnAccount", BOOLEAN, _env("CONCORD_ALLOW_DELETE_OWN_ACCOUNT", False),
                      "Accounts", description="Users may delete their own account (users.deleteOwnAccount; "
                                              "CONCORD_ALLOW_DELETE_OWN_ACCOUNT)."),
    SettingDefinition("FileUpload_Enabled", BOOLEAN, lambda: True, "FileUpload",
                      description="Files may be uploaded to rooms."),
    SettingDefinition("FileUpload_MaxFileSize", INT, _env("MAX_UPLOAD_BYTES", 100 * 1024 * 1024), "FileUpload",
                      min_value=-1, description="Largest upload in bytes, -1 for no limit (CONCORD_MAX_UPLOAD_MB)."),
    SettingDefinition("FileUpload_MediaTypeWhiteList", STRING, lambda: "", "FileUpload",
                      description="Comma separated media types (type/* allowed) an upload may have; "
                                  "empty: any."),
    SettingDefinition("Message_AllowEditing", BOOLEAN, lambda: True, "Message",
                      description="Users may edit their own messages (edit-message holders always may)."),
    SettingDefinition("Message_AllowEditing_BlockEditInMinutes", INT, lambda: 0, "Message", min_value=0,
                      description="Minutes after which a message can no longer be edited; 0: never "
                                  "(bypass-time-limit-edit-and-delete holders exempt)."),
    SettingDefinition("Message_AllowDeleting", BOOLEAN, lambda: True, "Message",
                      description="Messages may be deleted (force-delete-message holders always may)."),
    SettingDefinition("Message_AllowDeleting_BlockDeleteInMinutes", INT, lambda: 0, "Message", min_value=0,
                      description="Minutes after which a message can no longer be deleted; 0: never "
                                  "(bypass-time-limit-edit-and-delete holders exempt)."),
    SettingDefinition("Message_AllowBadWordsFilter", BOOLEAN, lambda: False, "Message",
                      description="Words of Message_BadWordsFilterList are masked with * in new and edited "
                                  "messages."),
    SettingDefinition("Message_BadWordsFilterList", STRING, lambda: "", "Message",
                      description="Comma separated words the bad words filter masks."),
    SettingDefinition("Federation_Matrix_enabled", BOOLEAN, _env("CONCORD_FEDERATION_ENABLED", True), "Federation",
                      section="Matrix Bridge",
                      description="Matrix federation on (it also needs CONCORD_SERVER_NAME; "
                                  "CONCORD_FEDERATION_ENABLED)."),
    SettingDefinition("Federation_Matrix_enable_ephemeral_events", BOOLEAN, lambda: True, "Federation",
                      section="Matrix Bridge", public=False,
                      description="Typing, read receipts and presence cross servers (each also needs its own "
                                  "switch: Federation_Matrix_typing, _receipts, _presence)."),
    *(SettingDefinition(f"Federation_Matrix_{kind}", BOOLEAN, _env(f"CONCORD_FEDERATION_{kind.upper()}", True),
                        "Federation", section="Matrix Bridge", public=False,
                        description=f"{what} cross servers, both ways, while "
                                    f"Federation_Matrix_enable_ephemeral_events is on (Concord's own switch; "
                                    f"CONCORD_FEDERATION_{kind.upper()}).")
      for kind, what in (("typing", "Typing notifications"), ("receipts", "Read receipts"),
                         ("presence", "Presence (online, away, offline)"))),
    SettingDefinition("Federation_Matrix_max_size_of_public_rooms_users", INT,
                      _env("CONCORD_FEDERATION_MAX_REMOTE_ROOM_SIZE", 100), "Federation", section="Matrix Bridge",
                      min_value=0, description="Largest remote public room users may join from the directory; "
                                               "0: no cap (CONCORD_FEDERATION_MAX_REMOTE_ROOM_SIZE)."),
)}


def definition(setting_id: object) -> SettingDefinition:
    """The definition of ``setting_id``; Rocket.Chat's ``error-invalid-setting`` (400) if Concord
    does not honour such a setting."""
    found = DEFINITIONS.get(setting_id) if isinstance(setting_id, str) else None
    if found is None:
        raise ApiError("Invalid setting", "error-invalid-setting")
    return found


def check_value(setting: SettingDefinition, new: object) -> Any:
    """``new`` if it is a valid value of ``setting`` (its type, a ``select``'s choices, an
    ``int``'s bounds); else ``error-invalid-setting-value`` (400). An integral float counts as an int."""
    def bad(why: str) -> ApiError:
        return ApiError(f"Invalid value for setting {setting.id}: {why}", "error-invalid-setting-value")

    if setting.type == BOOLEAN:
        if not isinstance(new, bool):
            raise bad("a boolean is expected")
        return new
    if setting.type == INT:
        if isinstance(new, float) and math.isfinite(new) and new.is_integer():
            new = int(new)
        if not isinstance(new, int) or isinstance(new, bool):
            raise bad("an integer is expected")
        if setting.min_value is not None and new < setting.min_value:
            raise bad(f"it must be at least {setting.min_value}")
        if abs(new) > 2**53 - 1:
            raise bad("it is too large")
        return new
    if not isinstance(new, str):
        raise bad("a string is expected")
    if "\x00" in new or len(new) > MAX_STRING_LENGTH:
        raise bad(f"at most {MAX_STRING_LENGTH} characters, no NUL")
    if setting.type == SELECT and new not in setting.values:
        raise bad(f"one of {', '.join(setting.values)} is expected")
    return new


def load_stored() -> dict[str, Any]:
    """The stored values, read from the database (none before the table exists)."""
    try:
        return {k: v for k, v in ServerSetting.objects.values_list("id", "value") if k in DEFINITIONS}
    except DatabaseError:  # before migrate
        return {}


LOCAL_SECONDS = 1.0
"""How long a process reuses the values it last read from the shared cache: the hot paths
(every chat message reads the bad-words switch, every inbound message the federation switches)
would otherwise pay a Redis round trip per read. A change reaches the writing process at once and
every other process within this time."""

_local: tuple[float, dict[str, Any]] | None = None


def stored_values() -> dict[str, Any]:
    """The stored values as every process sees them: this process's copy if under
    :data:`LOCAL_SECONDS` old, else the shared cache, else the database."""
    global _local
    now = time.monotonic()
    local = _local
    if local is not None and now - local[0] < LOCAL_SECONDS:
        return local[1]
    values = cache.get(CACHE_KEY)
    if not isinstance(values, dict):
        values = load_stored()
        cache.add(CACHE_KEY, values, timeout=CACHE_SECONDS)
    _local = (now, values)
    return values


def publish_stored() -> None:
    """Put the table, as committed, into the shared cache (writers call it after commit)."""
    global _local
    values = load_stored()
    cache.set(CACHE_KEY, values, timeout=CACHE_SECONDS)
    _local = (time.monotonic(), values)


def forget_stored() -> None:
    """Drop the cached copies: the next read loads the table (tests whose database was emptied)."""
    global _local
    _local = None
    cache.delete(CACHE_KEY)


def value(setting_id: str) -> Any:
    """The value of an honoured setting now: the stored one if valid, else its default.

    Raises:
        ApiError: ``setting_id`` is not a setting Concord honours (a programming error here).
    """
    setting = definition(setting_id)
    stored = stored_values()
    if setting_id in stored:
        try:
            return check_value(setting, stored[setting_id])
        except ApiError:  # a row written around the checks (e.g. by hand): the default instead
            pass
    return setting.default()


def flag(setting_id: str) -> bool:
    """A ``boolean`` setting's value."""
    return bool(value(setting_id))


def number(setting_id: str) -> int:
    """An ``int`` setting's value."""
    return int(value(setting_id))


def text(setting_id: str) -> str:
    """A ``string`` or ``select`` setting's value."""
    return str(value(setting_id))


def values_list(text_value: str) -> list[str]:
    """A comma separated setting value as its stripped, non-empty items."""
    return [item.strip() for item in text_value.split(",") if item.strip()]


def setting_document(setting: SettingDefinition, stored: dict[str, Any], fields: Iterable[str] = ()) -> dict[str, Any]:
    """Rocket.Chat's setting object: ``_id`` and ``value``, plus the requested ``fields`` among
    ``type``, ``public``, ``packageValue`` (the default), ``group``, ``section``, ``values``,
    ``hidden``, ``readonly``, ``i18nLabel``, ``i18nDescription``."""
    current = setting.default()
    if setting.id in stored:
        try:
            current = check_value(setting, stored[setting.id])
        except ApiError:
            pass
    doc: dict[str, Any] = {"_id": setting.id, "value": current}
    available: dict[str, Callable[[], Any]] = {
        "type": lambda: setting.type, "public": lambda: setting.public, "packageValue": setting.default,
        "group": lambda: setting.group, "section": lambda: setting.section or None,
        "values": lambda: [{"key": v, "i18nLabel": v} for v in setting.values] if setting.values else None,
        "hidden": lambda: False, "readonly": lambda: False, "i18nLabel": lambda: setting.id,
        "i18nDescription": lambda: setting.description,
    }
    for name in fields:
        getter = available.get(name)
        if getter is not None:
            extra = getter()
            if extra is not None:
                doc[name] = extra
    return doc
