from django.apps import AppConfig


class FederationConfig(AppConfig):
    """Matrix federation, in layers (see ``federation/__init__.py``).

    ``ready`` is the composition root: it connects the layers that must not import each other.
    """

    name = "federation"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Imported here, not at module level: Django loads app configs before models are ready.
        from federation.bridge.connect import connect_bridge
        from federation.bridge.remote_media import register_fetch_scheduler
        from federation.store.outbox import register_scheduler
        from federation.tasks import schedule_fetch, schedule_send

        connect_bridge()
        register_scheduler(schedule_send)
        register_fetch_scheduler(schedule_fetch)
