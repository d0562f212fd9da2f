"""The core's beat schedules, declared in code (HackSoft): the sweeper and the midnight roll-over.

Idempotent: each task is found by its name and only changed where it differs from the
declaration; nothing is ever deleted, and an operator's ``enabled`` switch is left alone. Every
app declares its own schedules in its ``AppConfig.declare_schedules`` and ``manage.py
setup_periodic_tasks`` runs them all. Run it again after adding a shop in a new time zone.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

from strategies.models import Shop
from strategies.pipeline.publish import (
    POLL_TASK,
    RECHECK_TASK,
    REFRESH_TASK,
    ROLL_OVER_TASK,
    SWEEP_TASK,
)


def interval_schedule(*, every: int, period: str) -> IntervalSchedule:
    found = IntervalSchedule.objects.filter(every=every, period=period).order_by("id").first()
    return found or IntervalSchedule.objects.create(every=every, period=period)


def crontab_schedule(*, minute: str, hour: str, zone: str) -> CrontabSchedule:
    spec = {
        "minute": minute,
        "hour": hour,
        "day_of_week": "*",
        "day_of_month": "*",
        "month_of_year": "*",
    }
    for schedule in CrontabSchedule.objects.filter(**spec).order_by("id"):
        if str(schedule.timezone) == zone:
            return schedule
    return CrontabSchedule.objects.create(timezone=zone, **spec)


def schedule_declare(*, name: str, task: str, **fields: Any) -> str:
    """Creates or updates one PeriodicTask; returns "created", "updated" or "unchanged"."""
    fields.setdefault("interval", None)
    fields.setdefault("crontab", None)
    fields.setdefault("kwargs", "{}")
    fields.setdefault("description", "")
    fields["task"] = task
    existing = PeriodicTask.objects.filter(name=name).first()
    if existing is None:
        PeriodicTask.objects.create(name=name, **fields)
        return "created"
    changed = [key for key, value in fields.items() if getattr(existing, key) != value]
    if not changed:
        return "unchanged"
    for key in changed:
        setattr(existing, key, fields[key])
    existing.save()
    return "updated"


def schedules_declare() -> dict[str, str]:
    zones = sorted(set(Shop.objects.values_list("timezone", flat=True))) or [settings.TIME_ZONE]
    results = {
        "sweep stuck requests": schedule_declare(
            name="sweep stuck requests",
            task=SWEEP_TASK,
            interval=interval_schedule(every=30, period=IntervalSchedule.SECONDS),
        )
    }
    # API.md `unknown`: the reservation is kept and the platform asked again until it says.
    results["recheck unknown executions"] = schedule_declare(
        name="recheck unknown executions",
        task=RECHECK_TASK,
        interval=interval_schedule(every=5, period=IntervalSchedule.MINUTES),
        description="Asks the platform again whether each execution left unknown was paid.",
    )
    # Each connected channel is polled every KUAISHOU_POLL_SECONDS / DOUYIN_POLL_SECONDS; this
    # beat only looks for the ones due.
    results["poll connected channels"] = schedule_declare(
        name="poll connected channels",
        task=POLL_TASK,
        interval=interval_schedule(every=60, period=IntervalSchedule.SECONDS),
        description="Lists what changed on each connected marketplace (finds lost pushes).",
    )
    results["refresh channel tokens"] = schedule_declare(
        name="refresh channel tokens",
        task=REFRESH_TASK,
        interval=interval_schedule(every=10, period=IntervalSchedule.MINUTES),
        description="Refreshes Kuaishou and Douyin tokens ahead of expiry; alerts before one dies.",
    )
    for zone in zones:
        name = f"roll-over {zone}"
        results[name] = schedule_declare(
            name=name,
            task=ROLL_OVER_TASK,
            crontab=crontab_schedule(minute="0", hour="0", zone=zone),
            # The task rolls every shop over to its own local day (idempotent), so it takes
            # no arguments; the zone is in the name, the crontab and the description.
            description=f"Pre-creates the new day's ledger rows at midnight in {zone}.",
        )
    return results
