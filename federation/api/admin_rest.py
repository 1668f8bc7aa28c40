"""Federation administration over the REST API (for holders of ``manage-federation``; the web
client's Federation page uses it):

``GET federation/admin.status``
    status and problems in words, server name, the allow/deny rules (and whether the environment's
    list wins), and each destination: state (up, backing off, catching up), last success, next
    attempt, last error, what is queued, how many rooms it shares with us; and the remote servers'
    signing keys we hold (key ID, the key, valid until, whether it was retired, when we fetched it).
``POST federation/admin.addRule {pattern, kind: allow|deny, note?}`` / ``admin.removeRule {pattern, kind}``
``POST federation/admin.retry {serverName}``: clear the backoff, send what is queued now.
``POST federation/admin.check {serverName?}``: the federation check (default: this server), in words.
"""

from __future__ import annotations

from datetime import UTC, datetime

from django.db import IntegrityError
from django.db.models import Count
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.permissions import has_permission
from chat.api import ApiView, ok, str_param
from chat.api_errors import PERMISSION_REQUIRED, ApiError, NotAllowed
from federation import config
from federation.bridge.stalls import shared_room_counts
from federation.handlers.check import run_checks
from federation.models import Destination, RemoteServerKey, ServerRule
from federation.status import federation_status
from federation.store.outbox import destination_state, retry_now
from rooms.serialization import iso

PATTERN_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789.-:*[]")


class FederationAdminView(ApiView):
    def initial(self, request: Request, *args: object, **kwargs: object) -> None:
        super().initial(request, *args, **kwargs)
        if not has_permission(request.user, "manage-federation"):
            raise NotAllowed(PERMISSION_REQUIRED, "error-unauthorized")


def _rules() -> dict[str, object]:
    env = config.lists_from_environment()
    stored: dict[str, list[dict[str, str]]] = {ServerRule.ALLOW: [], ServerRule.DENY: []}
    for rule in ServerRule.objects.all():
        stored[rule.kind].append({"pattern": rule.pattern, "note": rule.note, "createdAt": iso(rule.created_at) or ""})
    return {"allow": stored[ServerRule.ALLOW], "deny": stored[ServerRule.DENY],
            "fromEnvironment": {"allow": config.allowed_servers() if env[ServerRule.ALLOW] else None,
                                "deny": config.denied_servers() if env[ServerRule.DENY] else None}}


def _ms_iso(ms: int | None) -> str | None:
    return iso(datetime.fromtimestamp(ms / 1000, tz=UTC)) if ms else None


def _remote_keys() -> list[dict[str, object]]:
    """The remote servers' verify keys we hold, by server (at most 500)."""
    return [{"serverName": k.server_name, "keyId": k.key_id, "key": k.key,
             "validUntil": _ms_iso(min(k.valid_until_ts, 253402300799999)),
             "expiredAt": _ms_iso(k.expired_ts), "fetchedAt": iso(k.fetched_at)}
            for k in RemoteServerKey.objects.order_by("server_name", "key_id")[:500]]


class StatusView(FederationAdminView):
    def get(self, request: Request) -> Response:
        status = federation_status()
        dests = Destination.objects.annotate(n_pdus=Count("pdus", distinct=True), n_edus=Count("edus", distinct=True))
        shared = shared_room_counts()
        rows = [{"serverName": d.server_name, "state": destination_state(d), "lastSuccessAt": iso(d.last_success_at),
                 "nextAttemptAt": iso(d.next_attempt_at), "failingSince": iso(d.failing_since),
                 "lastError": d.last_error[:500], "queuedEvents": d.n_pdus, "queuedEdus": d.n_edus,
                 "rooms": shared.get(d.server_name, 0)}
                for d in dests.order_by("server_name")[:500]]
        return ok(state=status.state, problems=status.problems, serverName=config.server_name(),
                  rules=_rules(), destinations=rows, remoteKeys=_remote_keys())


def _rule_params(request: Request) -> tuple[str, str]:
    pattern = (str_param(request, "pattern", max_length=255) or "").strip().lower()
    kind = str_param(request, "kind") or ""
    if kind not in (ServerRule.ALLOW, ServerRule.DENY):
        raise ApiError('"kind" must be "allow" or "deny"', "error-invalid-params")
    if not pattern or not set(pattern) <= PATTERN_CHARS or (pattern.startswith("*") and not pattern.startswith("*.")):
        raise ApiError(f'"{pattern}" is not a server name or *.domain pattern', "error-invalid-params")
    return pattern, kind


class AddRuleView(FederationAdminView):
    def post(self, request: Request) -> Response:
        pattern, kind = _rule_params(request)
        try:
            note = str_param(request, "note", max_length=255) or ""
            ServerRule.objects.create(pattern=pattern, kind=kind, note=note)
        except IntegrityError:
            raise ApiError(f"{pattern} is already on the {kind} list", "error-duplicate-rule")
        config.forget_stored_rules()
        return ok(rules=_rules())


class RemoveRuleView(FederationAdminView):
    def post(self, request: Request) -> Response:
        pattern, kind = _rule_params(request)
        deleted, _ = ServerRule.objects.filter(pattern=pattern, kind=kind).delete()
        if not deleted:
            raise ApiError(f"{pattern} is not on the {kind} list", "error-rule-not-found")
        config.forget_stored_rules()
        return ok(rules=_rules())


class RetryView(FederationAdminView):
    def post(self, request: Request) -> Response:
        server = (str_param(request, "serverName", max_length=255) or "").strip()
        if not Destination.objects.filter(server_name=server).exists():
            raise ApiError(f"Nothing was ever sent to {server}", "error-invalid-params")
        return ok(sending=retry_now(server))


class CheckView(FederationAdminView):
    def post(self, request: Request) -> Response:
        target = (str_param(request, "serverName", max_length=255) or "").strip() or config.server_name()
        if not target:
            raise ApiError("Federation is not configured (no CONCORD_SERVER_NAME)", "error-federation-disabled")
        report = run_checks(target)
        status = federation_status()
        return ok(target=target, ok=report.ok and status.running, state=status.state, problems=status.problems,
                  steps=[{"label": s.label, "ok": s.ok, "detail": s.detail} for s in report.steps])
