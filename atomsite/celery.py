import os

from celery import Celery

from .broker import use_atomic_filesystem_transport

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "atomsite.settings")

# The demo's folder broker, without kombu's partial-file race (see broker.py).
use_atomic_filesystem_transport()

app = Celery("atom")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
