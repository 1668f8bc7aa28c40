"""Integrations: creating and changing webhooks, running incoming ones, delivering outgoing ones.

Follows Rocket.Chat 6.x (``integrations.*``, ``/hooks/:integrationId/:token``, its outgoing payload
and retry policy), without scripts: ``scriptEnabled: true`` is refused, and an incoming
integration may instead map payload fields to the message (:mod:`rooms.payload_mapping`).

* Permissions as Rocket.Chat: ``manage-{incoming,outgoing}-integrations`` manage every integration
  of the kind, ``manage-own-...`` those the user created. Creating one for a room needs membership
  in it unless the user holds both.
* An integration posts as its user (who gets the ``bot`` role, as in Rocket.Chat: it may then set
  ``alias``/``avatar``). Posting goes through :func:`rooms.actions.messages.do_send_message`, so
  every rule of ``chat.postMessage`` holds (muted, read-only, attachments' links, bad words...).
  A public channel the user is not in is joined first (Rocket.Chat's ``joinChannel``).
* Outgoing: which messages trigger what is decided after commit by
  :mod:`rooms.actions.integration_triggers`; :func:`deliver_outgoing` runs in a Celery task, makes
  one HTTP call and reports a retry delay when the call failed and the integration retries
  (``retryFailedCalls``, ``retryCount``, ``retryDelay``). A 2xx JSON answer with ``text`` or
  ``attachments`` is posted back to the room. A 410 answer disables the integration.
"""

from __future__ import annotations

import hmac
import json
import secrets
from dataclasses import dataclass
from typing import Any

import requests
from django.conf import settings
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from accounts.actions import do_add_global_role
from accounts.models import Role, User
from accounts.permissions import has_permission
from chat import ids
from chat.api_errors import ApiError, NotAllowed, NotFound
from rooms.actions.integration_triggers import SCOPED_CHANNELS, refresh_index_on_commit
from rooms.actions.memberships import do_join
from rooms.actions.messages import do_send_message
from rooms.actions.rooms import do_get_or_create_dm
from rooms.models import Integration, IntegrationHistory, Membership, Message, Room
from rooms.payload_mapping import MappingError, apply_mapping, check_mapping
from rooms.serialization import iso

OUTGOING_TIMEOUT_SECONDS = 15
MAX_RESPONSE_BYTES = 256 * 1024
SUCCESS_STATUSES = (200, 201, 202)  # Rocket.Chat's successResults
MAX_URLS = 20
MAX_TRIGGER_WORDS = 100
MAX_RETRY_COUNT = 20
OUTGOING_EVENTS = ("sendMessage",)
JSON_TYPES = ("application/json", "text/javascript", "application/javascript", "application/x-javascript")

_PERMS = {
    Integration.INCOMING: ("manage-incoming-integrations", "manage-own-incoming-integrations"),
    Integration.OUTGOING: ("manage-outgoing-integrations", "manage-own-outgoing-integrations"),
}
ALL_PERMISSIONS = _PERMS[Integration.INCOMING] + _PERMS[Integration.OUTGOING]


# ---------------------------------------------------------------------------------------------
# Permissions and reading


def has_any_integration_permission(user: User, kinds: tuple[str, ...] = (Integration.INCOMING,
                                                                          Integration.OUTGOING)) -> bool:
    """Whether ``user`` holds any manage permission for integrations of ``kinds``."""
    return any(has_permission(user, perm, None) for kind in kinds for perm in _PERMS[kind])


def may_manage(user: User, integ: Integration) -> bool:
    """Rocket.Chat's rule: the ``manage-*`` permission of its kind, or ``manage-own-*`` for its creator."""
    any_perm, own_perm = _PERMS[integ.type]
    return has_permission(user, any_perm) or (integ.created_by_id == user.id and has_permission(user, own_perm))


def visible_integrations(user: User) -> QuerySet[Integration]:
    """The integrations ``user`` may list: all of a kind with ``manage-*``, own ones with ``manage-own-*``."""
    q = Q(pk__in=[])
    for kind, (any_perm, own_perm) in _PERMS.items():
        if has_permission(user, any_perm):
            q |= Q(type=kind)
        elif has_permission(user, own_perm):
            q |= Q(type=kind, created_by=user)
    return Integration.objects.filter(q).select_related("user", "created_by")


def access_integration(user: User, integration_id: str) -> Integration:
    """``integrations.get``: the integration if ``user`` may manage it (Rocket.Chat's errors otherwise)."""
    integ = Integration.objects.select_related("user", "created_by").filter(id=integration_id).first()
    if integ is None:
        raise ApiError("The integration does not exists.", "error-invalid-integration")
    if not may_manage(user, integ):
        raise ApiError("not-authorized", "not-authorized")
    return integ


def find_for_change(kind: Any, integration_id: Any, target_url: Any = None) -> Integration:
    """The integration ``integrations.update``/``remove`` name: by id, or an outgoing one by URL."""
    integ = None
    if kind == Integration.OUTGOING and isinstance(target_url, str) and target_url:
        integ = next((i for i in Integration.objects.filter(type=kind) if target_url in (i.urls or [])), None)
    elif isinstance(integration_id, str) and integration_id:
        integ = Integration.objects.filter(id=integration_id, type=kind).first()
    if integ is None:
        raise ApiError("No integration found.", "error-invalid-integration")
    return integ


def integration_json(integ: Integration) -> dict[str, Any]:
    """An integration in Rocket.Chat's shape (``IIncomingIntegration`` / ``IOutgoingIntegration``)."""
    data: dict[str, Any] = {
        "_id": integ.id, "type": integ.type, "name": integ.name, "enabled": integ.enabled,
        "username": integ.user.username, "userId": integ.user_id, "channel": list(integ.channels),
        "alias": integ.alias, "avatar": integ.avatar, "emoji": integ.emoji, "scriptEnabled": False,
        "token": integ.token, "_createdAt": iso(integ.created_at), "_updatedAt": iso(integ.updated_at),
        "_createdBy": ({"_id": integ.created_by_id, "username": integ.created_by.username}
                       if integ.created_by is not None else None),
    }
    if integ.type == Integration.INCOMING:
        data["overrideDestinationChannelEnabled"] = integ.override_destination_channel
        data["payloadMapping"] = dict(integ.payload_mapping or {})
    else:
        data.update({
            "event": integ.event, "urls": list(integ.urls), "triggerWords": list(integ.trigger_words),
            "triggerWordAnywhere": integ.trigger_word_anywhere, "runOnEdits": integ.run_on_edits,
            "impersonateUser": integ.impersonate_user, "retryFailedCalls": integ.retry_failed_calls,
        })
        if integ.retry_failed_calls:
            data.update(retryCount=integ.retry_count, retryDelay=integ.retry_delay)
    return data


def history_json(h: IntegrationHistory) -> dict[str, Any]:
    """One delivery in the shape of Rocket.Chat's ``IIntegrationHistory``."""
    return {"_id": h.id, "type": Integration.OUTGOING, "integration": {"_id": h.integration_id}, "event": h.event,
            "step": h.step, "url": h.url, "data": h.data, "triggerWord": h.trigger_word,
            "httpResult": h.http_result or None, "httpError": h.http_error or None, "httpStatus": h.http_status,
            "attempts": h.attempts, "error": h.error, "finished": h.finished, "_createdAt": iso(h.created_at),
            "_updatedAt": iso(h.updated_at)}


# ---------------------------------------------------------------------------------------------
# Creating, updating, removing


def _string(data: dict[str, Any], key: str, default: str = "", *, max_length: int = 255) -> str:
    value = data.get(key, default)
    if value is None:
        return default
    if not isinstance(value, str) or "\x00" in value:
        raise ApiError(f'The "{key}" field must be a string.', "error-invalid-params")
    if len(value) > max_length:
        raise ApiError(f'The "{key}" field is too long (at most {max_length} characters).', "error-invalid-params")
    return value


def _flag(data: dict[str, Any], key: str, default: bool) -> bool:
    value = data.get(key, default)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise ApiError(f'The "{key}" field must be a boolean.', "error-invalid-params")
    return value


def _check_no_script(data: dict[str, Any]) -> None:
    if data.get("scriptEnabled") is True:
        raise ApiError("Integration scripts are not supported by this server: send scriptEnabled: false "
                       "(incoming webhooks can map payload fields with payloadMapping instead).",
                       "error-scripts-not-supported")


def _split_channels(value: Any) -> list[str]:
    if isinstance(value, list) and all(isinstance(c, str) for c in value):
        parts = value
    elif isinstance(value, str):
        parts = value.split(",")
    else:
        raise ApiError("Invalid channel", "error-invalid-channel")
    channels = [c.strip() for c in parts if c.strip()]
    if not channels:
        raise ApiError("Invalid channel", "error-invalid-channel")
    return channels


def _resolve_channels(actor: User, kind: str, channels: list[str]) -> list[str]:
    """Check each channel as Rocket.Chat does; returns the ids of the rooms the ``#`` entries name.

    Raises ``error-invalid-channel-start-with-chars`` for an entry not starting with ``#``/``@``
    (or, outgoing, not a scoped name), ``error-invalid-room`` for an unknown one, and
    ``error-invalid-channel`` for a room the actor is not in (unless they hold both permissions)
    or, outgoing, a scope other than public channels without ``manage-outgoing-integrations``.
    """
    any_perm, own_perm = _PERMS[kind]
    both = has_permission(actor, any_perm) and has_permission(actor, own_perm)
    room_ids: list[str] = []
    for channel in channels:
        if kind == Integration.OUTGOING and channel.lower() in SCOPED_CHANNELS:
            if channel.lower() != "all_public_channels" and not has_permission(actor, any_perm):
                raise ApiError("Invalid Channel", "error-invalid-channel")
            continue
        if channel[0] not in "#@":
            raise ApiError("Invalid channel. Start with @ or #", "error-invalid-channel-start-with-chars")
        name = channel[1:]
        if channel[0] == "#":
            room = Room.objects.filter(Q(id=name) | Q(name=name), type__in=(Room.CHANNEL, Room.GROUP)).first()
            if room is None:
                raise ApiError("Invalid room", "error-invalid-room")
            if not both and not Membership.objects.filter(room=room, user=actor, state=Membership.JOINED).exists():
                raise ApiError("Invalid Channel", "error-invalid-channel")
            room_ids.append(room.id)
        elif not User.objects.filter(Q(id=name) | Q(username=name)).exists():
            raise ApiError("Invalid room", "error-invalid-room")
    return room_ids


def room_ids_for(channels: list[str]) -> list[str]:
    """The ids of the rooms the ``#`` entries of ``channels`` name (unknown ones left out; no checks)."""
    names = [c[1:] for c in channels if isinstance(c, str) and c.startswith("#")]
    return list(Room.objects.filter(Q(id__in=names) | Q(name__in=names), type__in=(Room.CHANNEL, Room.GROUP))
                .values_list("id", flat=True)) if names else []


def _check_urls(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(u, str) for u in value):
        raise ApiError("Invalid URLs", "error-invalid-urls")
    urls = [u.strip() for u in value if u and u.strip()]
    if not urls or len(urls) > MAX_URLS:
        raise ApiError("Invalid URLs", "error-invalid-urls")
    for url in urls:
        if not url.lower().startswith(("http://", "https://")) or len(url) > 2048:
            raise ApiError("Invalid URLs (http or https URLs only)", "error-invalid-urls")
    return urls


def _check_trigger_words(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, list) or not all(isinstance(w, str) for w in value) or len(value) > MAX_TRIGGER_WORDS:
        raise ApiError("Invalid triggerWords", "error-invalid-triggerWords")
    return [w.strip() for w in value if w and w.strip()][:MAX_TRIGGER_WORDS]


def _apply_fields(actor: User, integ: Integration, data: dict[str, Any], *, creating: bool) -> None:
    """Validate ``data`` (Rocket.Chat's field names) onto ``integ``; absent fields keep their value."""
    _check_no_script(data)
    current = integration_json(integ) if not creating else {}

    def pick(key: str) -> Any:
        return data[key] if key in data and data[key] is not None else current.get(key)

    name = pick("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 255:
        raise ApiError('The "name" field is required.', "error-invalid-params")
    integ.name = name.strip()
    if creating and not isinstance(data.get("enabled"), bool):
        raise ApiError('The "enabled" field must be a boolean.', "error-invalid-params")
    integ.enabled = _flag(data, "enabled", integ.enabled)
    username = pick("username")
    if not isinstance(username, str) or not username.strip():
        raise ApiError("Invalid username", "error-invalid-username")
    user = User.objects.filter(username=username.strip(), is_active=True).first()
    if user is None:
        raise ApiError("Invalid user", "error-invalid-user")
    integ.user = user
    for key, attr, length in (("alias", "alias", 255), ("emoji", "emoji", 64), ("avatar", "avatar", 1024)):
        setattr(integ, attr, _string(data, key, getattr(integ, attr), max_length=length))
    channel_value = pick("channel")
    if integ.type == Integration.OUTGOING:
        event = pick("event")
        if event not in OUTGOING_EVENTS:
            raise ApiError("Invalid event type", "error-invalid-event-type")
        integ.event = event
    channels = _split_channels(channel_value)
    integ.room_ids = _resolve_channels(actor, integ.type, channels)
    integ.channels = channels
    if integ.type == Integration.INCOMING:
        integ.override_destination_channel = _flag(data, "overrideDestinationChannelEnabled",
                                                   integ.override_destination_channel)
        if "payloadMapping" in data:
            try:
                integ.payload_mapping = check_mapping(data["payloadMapping"])
            except MappingError as exc:
                raise ApiError(str(exc), "error-invalid-payload-mapping") from exc
        if creating:
            integ.token = secrets.token_urlsafe(36)[:48]
        return
    integ.urls = _check_urls(pick("urls"))
    if "triggerWords" in data:
        integ.trigger_words = _check_trigger_words(data["triggerWords"])
    if "token" in data or creating:
        integ.token = _string(data, "token", "", max_length=128).strip() or ids.random_id(24)
    integ.trigger_word_anywhere = _flag(data, "triggerWordAnywhere", integ.trigger_word_anywhere)
    integ.run_on_edits = _flag(data, "runOnEdits", integ.run_on_edits)
    integ.impersonate_user = _flag(data, "impersonateUser", integ.impersonate_user)
    integ.retry_failed_calls = _flag(data, "retryFailedCalls", integ.retry_failed_calls)
    if integ.retry_failed_calls:  # Rocket.Chat's defaults: 4 retries, delays in powers of ten
        count = data.get("retryCount", integ.retry_count or None)
        try:
            count = int(count) if count is not None and not isinstance(count, bool) else 0
        except (TypeError, ValueError) as exc:
            raise ApiError('The "retryCount" field must be a number.', "error-invalid-params") from exc
        integ.retry_count = min(count, MAX_RETRY_COUNT) if count > 0 else 4
        delay = _string(data, "retryDelay", integ.retry_delay, max_length=32).strip().lower() or "powers-of-ten"
        if delay not in Integration.RETRY_DELAYS:
            raise ApiError(f"Invalid retryDelay (one of {', '.join(Integration.RETRY_DELAYS)})",
                           "error-invalid-retry-delay")
        integ.retry_delay = delay


@transaction.atomic
def do_create_integration(actor: User, data: dict[str, Any]) -> Integration:
    """``integrations.create``. Guarantees: the actor may create integrations of the type, every
    field is valid, the integration's user holds the ``bot`` role, and every process sees the new
    outgoing trigger from the commit on."""
    kind = data.get("type")
    if kind not in _PERMS:
        raise ApiError("Invalid integration type.", "error-invalid-integration-type")
    if not has_any_integration_permission(actor, (kind,)):
        raise ApiError("Unauthorized", "not_authorized")
    integ = Integration(type=kind, created_by=actor)
    _apply_fields(actor, integ, data, creating=True)
    integ.save(force_insert=True)
    bot = Role.objects.filter(id="bot").first()
    if bot is not None and "bot" not in integ.user.role_names():
        do_add_global_role(integ.user, bot)  # Rocket.Chat gives the integration's user the bot role
    if kind == Integration.OUTGOING:
        refresh_index_on_commit()
    return integ


@transaction.atomic
def do_update_integration(actor: User, integ: Integration, data: dict[str, Any]) -> Integration:
    """``integrations.update``: the fields given replace the stored ones (after the same checks as create)."""
    integ = Integration.objects.select_for_update(of=("self",)).select_related("user", "created_by").get(id=integ.id)
    if not may_manage(actor, integ):
        raise ApiError("Unauthorized", "not_authorized")
    _apply_fields(actor, integ, data, creating=False)
    integ.save()
    if integ.type == Integration.OUTGOING:
        refresh_index_on_commit()
    return integ


@transaction.atomic
def do_remove_integration(actor: User, integ: Integration) -> dict[str, Any]:
    """``integrations.remove``; returns the removed integration's JSON."""
    if not may_manage(actor, integ):
        raise ApiError("Unauthorized", "not_authorized")
    data = integration_json(integ)
    integ.delete()
    if integ.type == Integration.OUTGOING:
        refresh_index_on_commit()
    return data


@transaction.atomic
def do_disable_integration(integration_id: str) -> None:
    """Turn an integration off (an outgoing receiver answered 410 Gone, as Rocket.Chat does)."""
    Integration.objects.filter(id=integration_id).update(enabled=False, updated_at=timezone.now())
    refresh_index_on_commit()


# ---------------------------------------------------------------------------------------------
# Posting as an integration (incoming hooks, outgoing answers)


def _room_for(user: User, target: str) -> Room:
    """The room ``target`` names for the integration's user, as Rocket.Chat's webhooks resolve it:
    ``#name``/``#id``, ``@username`` (the DM with them, created if needed), or a bare id or name.
    A public channel the user is not in is joined; any other room needs membership."""
    kind, name = (target[0], target[1:]) if target[:1] in ("#", "@") else ("", target)
    if kind == "@":
        other = User.objects.filter(Q(username=name) | Q(id=name), is_active=True).first()
        if other is None:
            raise NotFound("The user does not exist", "error-invalid-user")
        room, _created = do_get_or_create_dm(user, [other])
        return room
    room = (Room.objects.filter(id=name).first() if kind == "" else None) \
        or Room.objects.filter(Q(id=name) | Q(name=name), type__in=(Room.CHANNEL, Room.GROUP)).first()
    if room is None:
        raise NotFound("Invalid room", "error-invalid-room")
    if not Membership.objects.filter(room=room, user=user, state=Membership.JOINED).exists():
        if room.type != Room.CHANNEL:
            raise NotAllowed("The integration's user is not in this room", "error-not-allowed")
        do_join(room, user)
    return room


def _message_fields(body: dict[str, Any], integ: Integration) -> dict[str, Any]:
    """Text, attachments and alias/emoji/avatar of a webhook message, with Rocket.Chat's fallbacks
    (``msg`` for ``text``; ``username``, ``icon_emoji``, ``icon_url`` for alias, emoji, avatar)."""
    def first(*keys: str, default: str) -> str:
        for key in keys:
            value = body.get(key)
            if isinstance(value, str) and value:
                return value
        return default

    text = body.get("text") if body.get("text") not in (None, "") else body.get("msg", "")
    tmid = body.get("tmid")
    return {"text": text if text is not None else "", "attachments": body.get("attachments"),
            "alias": first("username", "alias", default=integ.alias)[:255],
            "emoji": first("icon_emoji", "emoji", default=integ.emoji)[:64],
            "avatar": first("icon_url", "avatar", default=integ.avatar)[:1024],
            "thread_root_id": tmid if isinstance(tmid, str) and tmid else None}


def post_webhook_message(integ: Integration, user: User, targets: list[str], body: dict[str, Any]) -> list[Message]:
    """Post ``body`` (Rocket.Chat's webhook message fields) as ``user`` into each target room."""
    fields = _message_fields(body, integ)
    messages = []
    for target in targets:
        room = _room_for(user, target)
        messages.append(do_send_message(user, room, fields["text"], attachments=fields["attachments"],
                                        alias=fields["alias"], emoji=fields["emoji"], avatar=fields["avatar"],
                                        thread_root_id=fields["thread_root_id"]))
    return messages


def _targets_override(body: dict[str, Any]) -> list[str]:
    value = body.get("roomId") or body.get("channel")
    if isinstance(value, str):
        return [c.strip() for c in value.split(",") if c.strip()]
    if isinstance(value, list) and all(isinstance(c, str) for c in value):
        return [c.strip() for c in value if c.strip()]
    raise ApiError("Invalid channel", "error-invalid-channel")


def find_incoming(integration_id: str, token: str) -> Integration | None:
    """The incoming integration with that id whose token matches (compared in constant time)."""
    integ = Integration.objects.select_related("user").filter(id=integration_id, type=Integration.INCOMING).first()
    if integ is None or not hmac.compare_digest(integ.token.encode(), token.encode()):
        return None
    return integ


@transaction.atomic
def do_run_incoming(integ: Integration, payload: Any) -> list[Message]:
    """Post what an incoming webhook received. Guarantees, as Rocket.Chat: a disabled integration
    posts nothing (``error-service-unavailable``, 503); an empty payload posts nothing; a payload
    naming its own ``channel``/``roomId`` is refused unless the integration allows overriding.
    With a ``payloadMapping`` the message is built from the mapped fields only. All target rooms
    get the message or none does (one transaction)."""
    if not integ.enabled:
        raise ApiError("Service Unavailable", "error-service-unavailable", status_code=503)
    if integ.payload_mapping:
        body: dict[str, Any] = apply_mapping(integ.payload_mapping, payload)
    elif isinstance(payload, dict):
        body = payload
    else:
        raise ApiError("The payload must be a JSON object", "error-invalid-params")
    if not body:
        return []
    targets = list(integ.channels)
    if body.get("channel") or body.get("roomId"):
        if not integ.override_destination_channel:
            raise ApiError("overriding destination channel is disabled for this integration",
                           "error-invalid-params")
        targets = _targets_override(body)
    return post_webhook_message(integ, integ.user, targets, body)


# ---------------------------------------------------------------------------------------------
# Outgoing delivery (called by the Celery task)


@dataclass(frozen=True)
class Retry:
    """Call again after ``delay`` seconds, continuing history row ``history_id``."""

    delay: float
    history_id: str


def retry_delay_seconds(policy: str, tries: int) -> float | None:
    """Rocket.Chat's wait before retry ``tries + 1``: powers of ten (0.1 s, 1 s, 10 s, ...), powers
    of two (2 s, 4 s, 8 s, ...) or increments of two (2 s, 4 s, 6 s, ...); None for an unknown one."""
    if policy == "powers-of-ten":
        return float(10 ** (tries + 2)) / 1000
    if policy == "powers-of-two":
        return float(2 ** (tries + 1))
    if policy == "increments-of-two":
        return float((tries + 1) * 2)
    return None


def outgoing_payload(integ: Integration, msg: Message, trigger_word: str) -> dict[str, Any]:
    """Rocket.Chat's ``sendMessage`` payload for ``msg``."""
    room = msg.room
    data: dict[str, Any] = {
        "token": integ.token, "bot": False, "channel_id": room.id, "channel_name": room.name or None,
        "message_id": msg.id, "timestamp": iso(msg.created_at),
        "user_id": msg.user_id, "user_name": msg.user.username if msg.user else None, "text": msg.text,
        "siteUrl": getattr(settings, "SITE_URL", "") or "",
    }
    if trigger_word:
        data["trigger_word"] = trigger_word
    if msg.alias:
        data["alias"] = msg.alias
    if msg.edited_at:
        data["isEdited"] = True
    if msg.thread_root_id:
        data["tmid"] = msg.thread_root_id
    return data


def _answer_json(response: requests.Response, content: bytes) -> Any:
    content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if content_type not in JSON_TYPES:
        return None
    try:
        return json.loads(content)
    except (ValueError, RecursionError):
        return None


def _finish(history: IntegrationHistory, step: str, *, error: bool = False, finished: bool = True) -> None:
    history.step, history.error, history.finished = step, error, finished
    history.save()


def deliver_outgoing(integration_id: str, message_id: str, url: str, trigger_word: str, attempt: int = 0,
                     history_id: str | None = None) -> Retry | None:
    """Make one outgoing call for ``message_id`` to ``url``; returns when to try again, if ever.

    Guarantees: nothing is sent for a removed or disabled integration or a deleted message; the
    call is a JSON ``POST`` of :func:`outgoing_payload` with a timeout; a 2xx answer with a JSON
    body holding ``text`` or ``attachments`` is posted to the message's room as the integration's
    user (or, with ``impersonateUser``, the message's author); 410 disables the integration; any
    other failure (network error, timeout, other status) is retried while ``retryFailedCalls``
    allows (``retryCount`` retries, ``retryDelay`` policy). Each call updates one
    :class:`IntegrationHistory` row per (message, URL).
    """
    integ = Integration.objects.select_related("user").filter(id=integration_id).first()
    msg = Message.objects.select_related("room", "user").filter(id=message_id).first()
    if integ is None or not integ.enabled or msg is None or msg.deleted_at is not None:
        if history_id:
            IntegrationHistory.objects.filter(id=history_id).update(step="stopped-integration-or-message-gone",
                                                                    finished=True, updated_at=timezone.now())
        return None
    data = outgoing_payload(integ, msg, trigger_word)
    history = IntegrationHistory.objects.filter(id=history_id).first() if history_id else None
    if history is None:
        history = IntegrationHistory.objects.create(integration=integ, event=integ.event, url=url, data=data,
                                                    trigger_word=trigger_word, step="start-execute-trigger-url")
    history.attempts = attempt + 1
    status: int | None = None
    content = b""
    answer: Any = None
    try:
        with requests.post(url, json=data, timeout=OUTGOING_TIMEOUT_SECONDS, allow_redirects=False, stream=True,
                           headers={"User-Agent": "Concord-Integrations"}) as response:
            status = response.status_code
            content = response.raw.read(MAX_RESPONSE_BYTES + 1, decode_content=True)[:MAX_RESPONSE_BYTES]
            answer = _answer_json(response, content)
        history.http_status, history.http_result, history.http_error = status, content.decode("utf-8", "replace"), ""
    except requests.RequestException as exc:
        history.http_status, history.http_result, history.http_error = None, "", f"{type(exc).__name__}: {exc}"
    if status in SUCCESS_STATUSES:
        if isinstance(answer, dict) and (answer.get("text") or answer.get("attachments")):
            author = msg.user if integ.impersonate_user and msg.user is not None else integ.user
            try:
                post_webhook_message(integ, author, [msg.room_id], answer)
            except ApiError as exc:
                history.http_error = f"{exc.error_type}: {exc.message}"
                _finish(history, "after-http-call-send-message-failed", error=True)
                return None
            _finish(history, "url-response-sent-message")
        else:
            _finish(history, "after-http-call")
        return None
    if status == 410:
        do_disable_integration(integ.id)
        _finish(history, "after-process-http-status-410", error=True)
        return None
    if integ.retry_failed_calls and attempt < integ.retry_count:
        delay = retry_delay_seconds(integ.retry_delay, attempt)
        if delay is not None:
            _finish(history, f"going-to-retry-{attempt + 1}", error=True, finished=False)
            return Retry(delay, history.id)
        _finish(history, "failed-and-retry-delay-is-invalid", error=True)
        return None
    _finish(history, "too-many-retries" if integ.retry_failed_calls else "failed-and-not-configured-to-retry",
            error=True)
    return None
