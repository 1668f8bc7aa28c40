from typing import Any

from django.contrib import admin

from rooms.actions.integration_triggers import refresh_index_on_commit
from rooms.actions.integrations import room_ids_for
from rooms.models import (
    Integration,
    IntegrationHistory,
    Membership,
    Message,
    MessageEdit,
    MessageReport,
    Reaction,
    Room,
    Upload,
)


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    fields = ("user", "state", "roles", "muted", "banned", "unread")
    readonly_fields = ("unread",)  # derived from the room's counters (rooms.models.rooms)
    raw_id_fields = ("user",)


@admin.register(Room)
class RoomAdmin(admin.ModelAdmin):
    list_display = ("name", "type", "read_only", "broadcast", "archived", "message_count", "created_at")
    list_filter = ("type", "read_only", "broadcast", "archived")
    search_fields = ("name", "topic")
    inlines = [MembershipInline]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ("user", "room", "state", "roles", "muted", "banned", "unread")
    list_filter = ("state", "muted", "banned")
    list_select_related = ("user", "room")  # unread derives from the room's counters
    readonly_fields = ("unread", "group_mentions", "open", "seen_shown", "seen_group")
    raw_id_fields = ("user", "room", "invited_by")


class EditInline(admin.TabularInline):
    model = MessageEdit
    extra = 0
    readonly_fields = ("previous_text", "edited_at", "edited_by")


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ("id", "room", "user", "short_text", "created_at", "edited_at", "deleted_at")
    list_filter = ("pinned",)
    search_fields = ("text",)
    raw_id_fields = ("room", "user", "thread_root", "quoted", "edited_by", "pinned_by", "file")
    readonly_fields = ("html",)
    inlines = [EditInline]

    @admin.display(description="text")
    def short_text(self, obj: Message) -> str:
        return obj.text[:80]


admin.site.register(Reaction)
admin.site.register(Upload)


@admin.register(MessageReport)
class MessageReportAdmin(admin.ModelAdmin):
    """Messages users reported (``chat.reportMessage``), newest first; mark them resolved."""

    list_display = ("message", "reporter", "description", "created_at", "resolved")
    list_filter = ("resolved",)
    raw_id_fields = ("message", "reporter")


@admin.register(Integration)
class IntegrationAdmin(admin.ModelAdmin):
    """Webhooks (``integrations.*``). Saving here skips the REST checks; the trigger index refreshes
    within ``rooms.actions.integration_triggers.INDEX_SECONDS`` (or at once after a REST change)."""

    list_display = ("name", "type", "enabled", "user", "created_by", "created_at")
    list_filter = ("type", "enabled")
    search_fields = ("name",)
    raw_id_fields = ("user", "created_by")
    readonly_fields = ("room_ids",)

    def save_model(self, request: Any, obj: Integration, form: Any, change: bool) -> None:
        obj.room_ids = room_ids_for(obj.channels or [])
        super().save_model(request, obj, form, change)
        refresh_index_on_commit()

    def delete_model(self, request: Any, obj: Integration) -> None:
        super().delete_model(request, obj)
        refresh_index_on_commit()


@admin.register(IntegrationHistory)
class IntegrationHistoryAdmin(admin.ModelAdmin):
    list_display = ("integration", "url", "step", "attempts", "http_status", "error", "finished", "updated_at")
    list_filter = ("error", "finished")
    raw_id_fields = ("integration",)
