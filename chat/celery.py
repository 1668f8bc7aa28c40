"""The Celery application. Tasks live in each app's ``tasks.py`` and stay thin.

Database connections between tasks: Celery's Django fix-up closes every connection after each task
and, in prefork children, closes Django's whole connection pool too, so that each task of a prefork
child opened a new PostgreSQL connection (a server process forked and authenticated per task: most
of a short task's cost). :func:`_reuse_database_connections` replaces those steps (before and after
each task) with what Django does before and after each request
(:func:`django.db.close_old_connections`): a pooled connection goes back to its process's pool (and
is checked as it is lent again, ``chat/db_pool_check.py``), a broken or expired one is dropped.
Connections inherited over a fork are still closed by the fix-up when a child starts
(``worker_process_init``), and caches are closed after each task as before.
"""

import os
from typing import Any

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chat.settings")

app = Celery("chat")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.worker_init.connect(weak=False)
def _reuse_database_connections(**kwargs: Any) -> None:
    """Swap the Django fix-up's after-task step for one that keeps pooled connections (see above).
    Runs after the fix-up installed its handlers (its ``worker_init`` receiver was connected when
    the app was made, before this one)."""
    from celery.fixups.django import DjangoWorkerFixup  # only a worker needs it (imports Django's db layer)

    for fixup in getattr(app, "_fixups", ()):
        worker_fixup = getattr(fixup, "_worker_fixup", None)
        if not isinstance(worker_fixup, DjangoWorkerFixup):
            continue
        signals.task_prerun.disconnect(worker_fixup.on_task_prerun)
        signals.task_postrun.disconnect(worker_fixup.on_task_postrun)

        def before_task(sender: Any = None, **kw: Any) -> None:
            if not getattr(getattr(sender, "request", None), "is_eager", False):
                _close_old_connections()

        def after_task(sender: Any = None, _fixup: DjangoWorkerFixup = worker_fixup, **kw: Any) -> None:
            if not getattr(getattr(sender, "request", None), "is_eager", False):
                _close_old_connections()
                _fixup.close_cache()

        signals.task_prerun.connect(before_task, weak=False)
        signals.task_postrun.connect(after_task, weak=False)


def _close_old_connections() -> None:
    from django.db import close_old_connections  # Django is set up by the time a task runs

    close_old_connections()
