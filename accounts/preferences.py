"""Rocket.Chat's user preferences: the keys ``users.setPreferences`` accepts, their types and the
defaults ``users.getPreferences`` answers for keys a user never set (Rocket.Chat's
``Accounts_Default_User_Preferences_*`` defaults)."""

from __future__ import annotations

from typing import Any

from chat.api_errors import ApiError

PREFERENCES: dict[str, tuple[type | tuple[type, ...], Any]] = {
    "language": (str, ""),
    "newRoomNotification": (str, "door"),
    "newMessageNotification": (str, "chime"),
    "muteFocusedConversations": (bool, True),
    "clockMode": (int, 0),
    "useEmojis": (bool, True),
    "convertAsciiEmoji": (bool, True),
    "saveMobileBandwidth": (bool, True),
    "collapseMediaByDefault": (bool, False),
    "autoImageLoad": (bool, True),
    "emailNotificationMode": (str, "mentions"),
    "unreadAlert": (bool, True),
    "notificationsSoundVolume": (int, 100),
    "desktopNotifications": (str, "all"),
    "pushNotifications": (str, "all"),
    "enableAutoAway": (bool, True),
    "highlights": (list, []),
    "desktopNotificationRequireInteraction": (bool, False),
    "messageViewMode": (int, 0),
    "hideUsernames": (bool, False),
    "hideRoles": (bool, False),
    "displayAvatars": (bool, True),
    "hideFlexTab": (bool, False),
    "sendOnEnter": (str, "normal"),
    "idleTimeLimit": (int, 300),
    "sidebarShowFavorites": (bool, True),
    "sidebarShowUnread": (bool, False),
    "sidebarSortby": (str, "activity"),
    "sidebarViewMode": (str, "medium"),
    "sidebarDisplayAvatar": (bool, True),
    "sidebarGroupByType": (bool, True),
    "themeAppearence": (str, "auto"),
    "receiveLoginDetectionEmail": (bool, True),
    "dontAskAgainList": (list, []),
    "enableMobileRinging": (bool, True),
}


def effective(stored: dict[str, Any]) -> dict[str, Any]:
    """Every preference: the stored value where set, else the default."""
    return {key: stored.get(key, default) for key, (_, default) in PREFERENCES.items()}


def validated(data: Any) -> dict[str, Any]:
    """``data`` checked against :data:`PREFERENCES` (Rocket.Chat refuses unknown keys and wrong
    types with ``invalid-params``)."""
    if not isinstance(data, dict):
        raise ApiError("must have required property 'data' [invalid-params]", "invalid-params")
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key not in PREFERENCES:
            raise ApiError(f"must NOT have additional properties ({key}) [invalid-params]", "invalid-params")
        kind = PREFERENCES[key][0]
        if isinstance(value, bool) and kind is int or not isinstance(value, kind):
            raise ApiError(f"/data/{key} has the wrong type [invalid-params]", "invalid-params")
        if isinstance(value, list) and (len(value) > 100 or not all(isinstance(v, (str, dict)) for v in value)):
            raise ApiError(f"/data/{key} must be a list of at most 100 entries [invalid-params]", "invalid-params")
        if isinstance(value, str) and len(value) > 255:
            raise ApiError(f"/data/{key} is too long [invalid-params]", "invalid-params")
        out[key] = value
    return out
