from django.apps import AppConfig


class FederationConfig(AppConfig):
    """Matrix federation. ``federation.protocol`` is the pure protocol core (no Django)."""

    name = "federation"
    default_auto_field = "django.db.models.BigAutoField"
