"""``manage.py setup_periodic_tasks``: declares the beat schedules (notifications.schedules)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from notifications.schedules import schedules_declare


class Command(BaseCommand):
    help = "Creates or updates the Celery beat schedules (idempotent; never deletes)."

    def handle(self, *args: Any, **options: Any) -> None:
        for name, outcome in schedules_declare().items():
            if options["verbosity"] >= 1:
                self.stdout.write(f"{outcome:>9}  {name}")
