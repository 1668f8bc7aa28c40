from django.apps import AppConfig


class RoomsConfig(AppConfig):
    name = "rooms"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from accounts.user_events import on_user_created  # in ready(): apps and models are loaded by now
        from rooms.actions.memberships import do_join_default_rooms  # (models: only importable in ready())

        # Composition: a new local user joins the default rooms (Rocket.Chat's "default" channels).
        on_user_created(do_join_default_rooms)

        from rooms.actions.integration_triggers import set_delivery_scheduler  # (actions never import tasks)
        from rooms.tasks import schedule_outgoing_delivery

        # Composition: a message that triggers an outgoing integration queues the Celery task.
        set_delivery_scheduler(schedule_outgoing_delivery)
