"""Rocket.Chat's settings calls, over the settings Concord honours (:mod:`accounts.server_settings`).

``GET settings.public``
    no sign-in; the public settings, paged (``offset``/``count``), optionally only the ids in
    ``_id=a,b``; ``query``/``sort``/``fields`` as below.
``GET settings``
    signed in; every setting for holders of ``view-privileged-setting``, the public ones for others.
``GET settings/:_id`` (``view-privileged-setting``)
    ``{_id, value}``.
``POST settings/:_id {value}`` (``edit-privileged-setting``)
    stores the value; it applies at once, in every process.

Lists answer ``{settings: [{_id, value, ...fields}], count, offset, total}``. ``query`` is a JSON
object matched against each setting's ``_id``, ``type``, ``public``, ``group``, ``section`` and
``value`` (equality, ``$in``, ``$nin``, ``$ne``, ``$eq``, ``$regex`` with ``$options: "i"``,
``$and``/``$or``); ``sort`` orders by those fields (``1``/``-1``); ``fields`` adds ``type``,
``public``, ``packageValue``, ``group``, ``section``, ``values``, ``hidden``, ``readonly``,
``i18nLabel``, ``i18nDescription`` (``includeDefaults=true`` adds ``packageValue``). An id Concord
does not honour is Rocket.Chat's 400 (``error-invalid-setting``); a value of the wrong type is
``error-invalid-setting-value``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from rest_framework.request import Request
from rest_framework.response import Response

from accounts import actions, server_settings
from accounts.permissions import has_permission
from chat.api import ApiView, PublicApiView, json_param, ok, pagination
from chat.api_errors import ApiError, NotAllowed

UNAUTHORIZED = "User does not have the permissions required for this action [error-unauthorized]"
_QUERY_FIELDS = ("_id", "type", "public", "group", "section", "value")
MAX_QUERY_DEPTH = 8
MAX_REGEX_LENGTH = 200


def _bad_query(why: str) -> ApiError:
    return ApiError(f'The "query" param is not usable: {why}.', "error-invalid-params")


def _match_value(actual: Any, condition: Any) -> bool:
    if not isinstance(condition, dict):
        return bool(actual == condition)
    for op, operand in condition.items():
        if op == "$eq":
            ok_ = actual == operand
        elif op == "$ne":
            ok_ = actual != operand
        elif op in ("$in", "$nin"):
            if not isinstance(operand, list):
                raise _bad_query(f"{op} takes a list")
            ok_ = (actual in operand) == (op == "$in")
        elif op == "$regex":
            if not isinstance(operand, str) or len(operand) > MAX_REGEX_LENGTH:
                raise _bad_query(f"$regex takes a string of at most {MAX_REGEX_LENGTH} characters")
            options = condition.get("$options", "")
            flags = re.IGNORECASE if isinstance(options, str) and "i" in options else 0
            try:
                ok_ = isinstance(actual, str) and re.search(operand, actual, flags) is not None
            except re.error as exc:
                raise _bad_query(f"$regex is not a valid expression ({exc})") from exc
        elif op == "$options":
            continue
        else:
            raise _bad_query(f"the operator {op} is not supported")
        if not ok_:
            return False
    return True


def _matches(doc: dict[str, Any], query: dict[str, Any], depth: int = 0) -> bool:
    if depth > MAX_QUERY_DEPTH:
        raise _bad_query("it is nested too deeply")
    for key, condition in query.items():
        if key in ("$and", "$or"):
            if not isinstance(condition, list) or not all(isinstance(q, dict) for q in condition):
                raise _bad_query(f"{key} takes a list of objects")
            results = [_matches(doc, q, depth + 1) for q in condition]
            if not (all(results) if key == "$and" else any(results)):
                return False
        elif key in _QUERY_FIELDS:
            if not _match_value(doc.get(key), condition):
                return False
        else:
            raise _bad_query(f"the field {key} cannot be queried")
    return True


def _sort_key(field: str) -> Callable[[tuple[dict[str, Any], dict[str, Any]]], tuple[bool, str]]:
    def key(pair: tuple[dict[str, Any], dict[str, Any]]) -> tuple[bool, str]:
        return pair[0].get(field) is None, str(pair[0].get(field))
    return key


def _listing(request: Request, *, public_only: bool, ids: list[str] | None = None) -> Response:
    """One page of settings, filtered, sorted and shaped as Rocket.Chat lists them."""
    offset, count = pagination(request)
    query = json_param(request, "query") or {}
    sort = json_param(request, "sort") or {"_id": 1}
    fields = json_param(request, "fields") or {}
    if not isinstance(query, dict) or not isinstance(sort, dict) or not isinstance(fields, dict):
        raise ApiError('"query", "sort" and "fields" must be JSON objects', "error-invalid-params")
    wanted = [name for name, on in fields.items() if on]
    if str(request.query_params.get("includeDefaults", "")).lower() == "true":
        wanted.append("packageValue")
    stored = server_settings.stored_values()
    found: list[tuple[dict[str, Any], dict[str, Any]]] = []
    for setting in server_settings.DEFINITIONS.values():
        if public_only and not setting.public:
            continue
        if ids is not None and setting.id not in ids:
            continue
        full = server_settings.setting_document(setting, stored, ("type", "public", "group", "section"))
        if _matches(full, query):
            found.append((full, server_settings.setting_document(setting, stored, wanted)))
    for key, direction in reversed(list(sort.items())):
        if key not in _QUERY_FIELDS or direction not in (1, -1):
            raise ApiError(f'"sort" takes fields among {", ".join(_QUERY_FIELDS)} with 1 or -1',
                           "error-invalid-params")
        found.sort(key=_sort_key(key), reverse=direction == -1)
    page = [doc for _full, doc in found[offset:offset + count]]
    return ok(settings=page, count=len(page), offset=offset, total=len(found))


class SettingsPublicView(PublicApiView):
    """``settings.public``: the public settings, without signing in."""

    def get(self, request: Request) -> Response:
        raw_ids = request.query_params.get("_id")
        ids = server_settings.values_list(raw_ids) if raw_ids else None
        return _listing(request, public_only=True, ids=ids)


class SettingsView(ApiView):
    """``settings``: all settings for ``view-privileged-setting`` holders, the public ones for others."""

    def get(self, request: Request) -> Response:
        return _listing(request, public_only=not has_permission(request.user, "view-privileged-setting"))


class SettingView(ApiView):
    """``settings/:_id``: read (``view-privileged-setting``) or change (``edit-privileged-setting``,
    body ``{"value": ...}``) one setting."""

    def get(self, request: Request, setting_id: str) -> Response:
        if not has_permission(request.user, "view-privileged-setting"):
            raise NotAllowed(UNAUTHORIZED, "error-unauthorized")
        setting = server_settings.definition(setting_id)
        return ok(_id=setting.id, value=server_settings.value(setting.id))

    def post(self, request: Request, setting_id: str) -> Response:
        if not has_permission(request.user, "edit-privileged-setting"):
            raise NotAllowed(UNAUTHORIZED, "error-unauthorized")
        setting = server_settings.definition(setting_id)
        data = request.data
        if not hasattr(data, "keys") or "value" not in data:
            raise ApiError('The "value" param is required', "error-invalid-params")
        actions.do_set_server_setting(setting.id, data["value"], by=request.user)
        return ok()
