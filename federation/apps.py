from django.apps import AppConfig


class FederationConfig(AppConfig):
    """Matrix federation. ``federation.protocol`` is the pure protocol core (no Django)."""

    name = "federation"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from federation.edus import register_builtin_handlers

        register_builtin_handlers()
