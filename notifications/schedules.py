"""Notifications' own beat schedules: the alert sweep, the purge of old delivery attempts and
the review queue's deadline digest
(declared like the core's, ``strategies.schedules``)."""

from __future__ import annotations

from django.conf import settings
from django_celery_beat.models import IntervalSchedule

from strategies.schedules import crontab_schedule, interval_schedule, schedule_declare


def schedules_declare() -> dict[str, str]:
    return {
        "sweep alerts": schedule_declare(
            name="sweep alerts",
            task="notifications.sweep_alerts",
            interval=interval_schedule(every=1, period=IntervalSchedule.MINUTES),
        ),
        "purge old delivery attempts": schedule_declare(
            name="purge old delivery attempts",
            task="notifications.purge_old_attempts",
            crontab=crontab_schedule(minute="30", hour="3", zone=settings.TIME_ZONE),
        ),
        # Once a day, in the morning: requests close to their platform deadline (each named
        # once, so a second run the same day sends nothing new).
        "review deadline digest": schedule_declare(
            name="review deadline digest",
            task="notifications.review_digest",
            crontab=crontab_schedule(minute="0", hour="9", zone=settings.TIME_ZONE),
        ),
    }
