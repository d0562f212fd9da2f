import os
from typing import Any

from celery import Celery, Task
from celery.signals import task_postrun, task_prerun

from .broker import use_atomic_filesystem_transport, use_lean_redis_transport

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "atomsite.settings")

# The demo's folder broker, without kombu's partial-file race (see broker.py).
use_atomic_filesystem_transport()
# One Redis client per connection pool, not one per command (see broker.py).
use_lean_redis_transport()

app = Celery("atom")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@task_prerun.connect
@task_postrun.connect
def close_old_db_connections(sender: Task | None = None, **kwargs: Any) -> None:
    """Keeps a worker's PostgreSQL connection across tasks as CONN_MAX_AGE says.

    Celery's Django fixup closes the connection before and after EVERY task unless
    CELERY_DB_REUSE_MAX is set (settings set it), which costs a new PostgreSQL connection per
    task. Instead, like Django after a web request, this closes only a connection that is
    obsolete (CONN_MAX_AGE) or unusable (after an error, with CONN_HEALTH_CHECKS). An eager task
    runs inside its caller's transaction and is left alone.
    """
    if sender is not None and getattr(sender.request, "is_eager", False):
        return
    from django.db import close_old_connections

    close_old_connections()
