"""Celery tasks for rooms: thin wrappers around actions."""

from celery import shared_task

from rooms.actions.integrations import deliver_outgoing as _deliver_outgoing
from rooms.actions.typing import expire_typing as _expire_typing


@shared_task(name="rooms.tasks.expire_typing", ignore_result=True)
def expire_typing() -> int:
    return _expire_typing()


@shared_task(name="rooms.tasks.deliver_outgoing_webhook", ignore_result=True)
def deliver_outgoing_webhook(integration_id: str, message_id: str, url: str, trigger_word: str, attempt: int = 0,
                             history_id: str | None = None) -> None:
    """One outgoing webhook call; a failed call that retries is queued again after its back-off."""
    retry = _deliver_outgoing(integration_id, message_id, url, trigger_word, attempt, history_id)
    if retry is not None:
        deliver_outgoing_webhook.apply_async((integration_id, message_id, url, trigger_word, attempt + 1,
                                              retry.history_id), countdown=retry.delay)


def schedule_outgoing_delivery(integration_id: str, message_id: str, url: str, trigger_word: str) -> None:
    """The scheduler :mod:`rooms.actions.integration_triggers` calls after a message's commit."""
    deliver_outgoing_webhook.delay(integration_id, message_id, url, trigger_word)
