"""``integrations.*`` (Rocket.Chat's management calls) and ``/hooks/:integrationId/:token``.

Views parse, call one action of :mod:`rooms.actions.integrations` and answer in Rocket.Chat's
shapes: ``{integration}``, ``{integrations, offset, count, items, total}``, ``{history, ...}``.
The hook endpoint is outside ``/api/v1`` and unauthenticated: the token in its path is the
credential (a wrong id or token answers Rocket.Chat's 401 "You must be logged in to do this.").
"""

from __future__ import annotations

import json
from typing import Any

from django.http import QueryDict
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request
from rest_framework.response import Response

from chat import rate_limits
from chat.api import ApiView, PublicApiView, ok, pagination, str_param
from chat.api_errors import ApiError, NotAllowed
from rooms.actions.integrations import (
    access_integration,
    do_create_integration,
    do_remove_integration,
    do_run_incoming,
    do_update_integration,
    find_for_change,
    find_incoming,
    has_any_integration_permission,
    history_json,
    integration_json,
    visible_integrations,
)
from rooms.models import Integration, IntegrationHistory


def _body(request: Request) -> dict[str, Any]:
    data = request.data
    if isinstance(data, QueryDict):  # a form
        return dict(data.dict())
    if not isinstance(data, dict):
        raise ApiError("The body must be a JSON object", "error-invalid-params")
    return data


def _unauthorized() -> NotAllowed:
    """Rocket.Chat's ``API.v1.unauthorized()``: 403 ``{"error": "unauthorized"}``."""
    return NotAllowed("unauthorized", "unauthorized")


class CreateView(ApiView):
    """``integrations.create``: ``type`` (``webhook-incoming``/``webhook-outgoing``), ``name``,
    ``enabled``, ``username``, ``channel``, ``scriptEnabled`` (must be false), and per type
    ``alias``, ``emoji``, ``avatar``, ``overrideDestinationChannelEnabled``, ``payloadMapping``
    or ``event``, ``urls``, ``triggerWords``, ``token``, ``retryFailedCalls``, ``retryCount``,
    ``retryDelay``. Answers ``{integration}``."""

    def post(self, request: Request) -> Response:
        return ok(integration=integration_json(do_create_integration(request.user, _body(request))))


class ListView(ApiView):
    """``integrations.list``: paged (``offset``, ``count``), optionally by ``type`` and ``name``."""

    def get(self, request: Request) -> Response:
        if not has_any_integration_permission(request.user):
            raise _unauthorized()
        offset, count = pagination(request)
        qs = visible_integrations(request.user).order_by("-created_at")
        kind = str_param(request, "type", max_length=32)
        if kind:
            qs = qs.filter(type=kind)
        name = str_param(request, "name", max_length=255)
        if name:
            qs = qs.filter(name__icontains=name)
        page = [integration_json(i) for i in qs[offset:offset + count]]
        return ok(integrations=page, offset=offset, items=len(page), count=len(page), total=qs.count())


class GetView(ApiView):
    """``integrations.get``: ``integrationId``."""

    def get(self, request: Request) -> Response:
        integration_id = str_param(request, "integrationId", max_length=64)
        if not integration_id:
            raise ApiError("must have required property 'integrationId' [invalid-params]", "invalid-params")
        return ok(integration=integration_json(access_integration(request.user, integration_id)))


class UpdateView(ApiView):
    """``integrations.update`` (PUT): ``type``, ``integrationId`` (or, outgoing, ``target_url``) and
    the fields to change. Answers the updated ``{integration}``."""

    def put(self, request: Request) -> Response:
        body = _body(request)
        kind = body.get("type")
        if kind not in (Integration.INCOMING, Integration.OUTGOING):
            raise ApiError("Invalid integration type.", "error-invalid-integration-type")
        integ = find_for_change(kind, body.get("integrationId"), body.get("target_url"))
        return ok(integration=integration_json(do_update_integration(request.user, integ, body)))


class RemoveView(ApiView):
    """``integrations.remove``: ``type`` and ``integrationId`` (or, outgoing, ``target_url``)."""

    def post(self, request: Request) -> Response:
        if not has_any_integration_permission(request.user):
            raise _unauthorized()
        body = _body(request)
        kind = body.get("type")
        if kind not in (Integration.INCOMING, Integration.OUTGOING):
            raise ApiError("Invalid integration type.", "error-invalid-integration-type")
        if kind == Integration.OUTGOING and not body.get("integrationId") and not body.get("target_url"):
            raise ApiError("An integrationId or target_url needs to be provided.", "error-invalid-params")
        integ = find_for_change(kind, body.get("integrationId"), body.get("target_url"))
        return ok(integration=do_remove_integration(request.user, integ))


class HistoryView(ApiView):
    """``integrations.history``: ``id`` of an outgoing integration; its deliveries, newest first, paged."""

    def get(self, request: Request) -> Response:
        if not has_any_integration_permission(request.user, (Integration.OUTGOING,)):
            raise _unauthorized()
        integration_id = (str_param(request, "id", max_length=64) or "").strip()
        if not integration_id:
            raise ApiError("Invalid integration id.", "error-invalid-params")
        offset, count = pagination(request)
        qs = IntegrationHistory.objects.filter(integration__in=visible_integrations(request.user).filter(
            id=integration_id, type=Integration.OUTGOING)).order_by("-updated_at")
        page = [history_json(h) for h in qs[offset:offset + count]]
        return ok(history=page, offset=offset, items=len(page), count=len(page), total=qs.count())


class HookView(PublicApiView):
    """``POST`` (or ``GET``) ``/hooks/:integrationId/:token``: an incoming webhook call.

    The body is JSON, or a form with ``payload=<json>`` (Slack's and Rocket.Chat's form). Answers
    ``{"success": true}`` once the message is posted; Rocket.Chat's errors otherwise.
    """

    def _run(self, request: Request, integration_id: str, token: str, data: Any) -> Response:
        integ = find_incoming(integration_id, token)
        if integ is None:
            raise AuthenticationFailed("Invalid integration id or token provided.")
        if rate_limits.enabled():
            rate_limits.check("rest", f"hook:{integ.id}")
        do_run_incoming(integ, data)
        return ok()

    def post(self, request: Request, integration_id: str, token: str, user_id: str = "") -> Response:
        data: Any = request.data
        if isinstance(data, QueryDict):  # a form: payload=<json>
            raw = data.get("payload")
            if raw is None:
                data = {key: data.get(key) for key in data}
            else:
                try:
                    data = json.loads(raw)
                except (ValueError, RecursionError) as exc:
                    raise ApiError(f"The payload is not valid JSON: {exc}", "error-invalid-params") from exc
        return self._run(request, integration_id, token, data)

    def get(self, request: Request, integration_id: str, token: str, user_id: str = "") -> Response:
        return self._run(request, integration_id, token, {k: request.query_params.get(k)
                                                          for k in request.query_params})

