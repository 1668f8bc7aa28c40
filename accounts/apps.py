from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from accounts import server_settings
        from accounts.defaults import ensure_default_roles_and_permissions
        from federation import config as federation_config

        # Federation's run-time switches are server settings; federation may not import the chat.
        federation_config.use_run_time_settings(server_settings.value)

        # One socket poll instead of a round trip when a pooled connection is lent (chat/db_pool_check.py).
        from chat import db_pool_check

        db_pool_check.install()

        # Not business logic: seeds the built-in roles and permissions after each migrate.
        post_migrate.connect(ensure_default_roles_and_permissions, sender=self)
