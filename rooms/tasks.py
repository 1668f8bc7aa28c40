"""Celery tasks for rooms: thin wrappers around actions."""

from celery import shared_task

from rooms.actions.typing import expire_typing as _expire_typing


@shared_task(name="rooms.tasks.expire_typing", ignore_result=True)
def expire_typing() -> int:
    return _expire_typing()
