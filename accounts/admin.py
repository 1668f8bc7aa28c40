from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from accounts.models import AuthToken, Permission, Role, User


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
