"""Federation in Django admin: server allow/deny rules (editable at run time; an environment list,
when set, wins), destinations with their state, queue and last error and a "retry now", remote
servers' keys, and the Matrix rooms we hold."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import Count, QuerySet
from django.http import HttpRequest

from federation import config
from federation.models import Destination, MatrixRoom, RemoteServerKey, ServerRule
from federation.store.outbox import destination_state, retry_now


@admin.register(ServerRule)
class ServerRuleAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("pattern", "kind", "in_force", "note", "created_at")
    list_filter = ("kind",)
    search_fields = ("pattern", "note")

    @admin.display(description="in force")
    def in_force(self, rule: ServerRule) -> str:
        if config.lists_from_environment()[rule.kind]:
            return "no: the environment's list wins"
        return "yes"

    def save_model(self, request: HttpRequest, obj: ServerRule, form: Any, change: bool) -> None:
        obj.pattern = obj.pattern.strip().lower()
        super().save_model(request, obj, form, change)
        config.forget_stored_rules()

    def delete_model(self, request: HttpRequest, obj: ServerRule) -> None:
        super().delete_model(request, obj)
        config.forget_stored_rules()


@admin.register(Destination)
class DestinationAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("server_name", "state", "queued_events", "queued_edus", "last_success_at", "next_attempt_at",
                    "last_error_words")
    search_fields = ("server_name",)
    readonly_fields = ("server_name", "retry_interval", "next_attempt_at", "failing_since", "lease_until",
                       "txn_counter", "last_success_at", "last_error")
    exclude = ("lease_token",)
    actions = ["retry"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Destination]:
        return super().get_queryset(request).annotate(n_pdus=Count("pdus", distinct=True),
                                                      n_edus=Count("edus", distinct=True))

    @admin.display(description="state")
    def state(self, dest: Destination) -> str:
        return destination_state(dest)

    @admin.display(description="queued events")
    def queued_events(self, dest: Any) -> int:
        return int(getattr(dest, "n_pdus", 0))

    @admin.display(description="queued EDUs")
    def queued_edus(self, dest: Any) -> int:
        return int(getattr(dest, "n_edus", 0))

    @admin.display(description="last error")
    def last_error_words(self, dest: Destination) -> str:
        return (dest.last_error or "")[:200]

    @admin.action(description="Retry now")
    def retry(self, request: HttpRequest, queryset: QuerySet[Destination]) -> None:
        started = sum(1 for dest in queryset if retry_now(dest.server_name))
        self.message_user(request, f"Backoff cleared for {queryset.count()} server(s); {started} send(s) started.",
                          messages.SUCCESS)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(RemoteServerKey)
class RemoteServerKeyAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("server_name", "key_id", "key", "valid_until_ts", "expired_ts", "fetched_at")
    search_fields = ("server_name",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(MatrixRoom)
class MatrixRoomAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("room_id", "room_version", "chat_room", "published")
    search_fields = ("room_id",)
    raw_id_fields = ("chat_room",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
