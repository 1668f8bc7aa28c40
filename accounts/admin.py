from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.http import HttpRequest

from accounts import server_settings
from accounts.actions import do_reset_server_setting, do_set_server_setting
from accounts.models import AuthToken, Permission, Role, ServerSetting, User
from chat.api_errors import ApiError


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    list_display = ("username", "name", "email", "status", "type", "is_active", "is_remote")
    list_filter = ("type", "status", "is_active", "is_remote", "roles")
    search_fields = ("username", "name", "email")
    fieldsets = (*BaseUserAdmin.fieldsets, ("Concord", {"fields": ("name", "avatar", "status", "status_text", "type",
                                                                  "roles", "is_remote")}))  # type: ignore[misc]
    filter_horizontal = ("roles", "groups", "user_permissions")


@admin.register(Role)
class RoleAdmin(admin.ModelAdmin):
    list_display = ("id", "scope", "description", "protected")


@admin.register(Permission)
class PermissionAdmin(admin.ModelAdmin):
    list_display = ("id", "role_list")
    filter_horizontal = ("roles",)
    search_fields = ("id",)

    @admin.display(description="roles")
    def role_list(self, obj: Permission) -> str:
        return ", ".join(sorted(r.id for r in obj.roles.all()))


@admin.register(AuthToken)
class AuthTokenAdmin(admin.ModelAdmin):
    list_display = ("user", "name", "created_at")
    readonly_fields = ("digest",)


class ServerSettingForm(forms.ModelForm):
    """Only settings Concord honours, with a value of the setting's type (JSON: ``true``, ``5``, ``"text"``)."""

    id = forms.ChoiceField(choices=[(k, k) for k in sorted(server_settings.DEFINITIONS)], label="Setting")

    class Meta:
        model = ServerSetting
        fields = ("id", "value")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        try:
            setting = server_settings.definition(data.get("id") or self.instance.id)
            data["value"] = server_settings.check_value(setting, data.get("value"))
        except ApiError as exc:
            raise forms.ValidationError(exc.message) from exc
        return data


@admin.register(ServerSetting)
class ServerSettingAdmin(admin.ModelAdmin):
    """Changes go through the same actions as ``POST /api/v1/settings/:_id`` (every process sees
    them); deleting a row gives the setting its default (the environment's) again."""

    form = ServerSettingForm
    list_display = ("id", "value", "updated_at", "updated_by")
    readonly_fields = ("updated_at", "updated_by")

    def get_readonly_fields(self, request: HttpRequest, obj: ServerSetting | None = None) -> tuple[str, ...]:
        return ("id", "updated_at", "updated_by") if obj is not None else ("updated_at", "updated_by")

    def save_model(self, request: HttpRequest, obj: ServerSetting, form: Any, change: bool) -> None:
        by = request.user if isinstance(request.user, User) else None
        do_set_server_setting(obj.id, obj.value, by=by)

    def delete_model(self, request: HttpRequest, obj: ServerSetting) -> None:
        do_reset_server_setting(obj.id)

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        for setting_id in list(queryset.values_list("id", flat=True)):
            do_reset_server_setting(setting_id)
