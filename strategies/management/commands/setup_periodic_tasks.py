"""``manage.py setup_periodic_tasks``: declares every app's beat schedules, in one transaction.

An app takes part by giving its ``AppConfig`` a ``declare_schedules()`` that returns
``{name: "created" | "updated" | "unchanged"}`` (``strategies.schedules`` for the core).
"""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.core.management.base import BaseCommand
from django.db import transaction


class Command(BaseCommand):
    help = "Creates or updates the Celery beat schedules (idempotent; never deletes)."

    def handle(self, *args: Any, **options: Any) -> None:
        results: dict[str, str] = {}
        with transaction.atomic():
            for config in apps.get_app_configs():
                declare = getattr(config, "declare_schedules", None)
                if declare is not None:
                    results.update(declare())
        for name, outcome in results.items():
            if options["verbosity"] >= 1:
                self.stdout.write(f"{outcome:>9}  {name}")
