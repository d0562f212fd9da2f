"""setup_periodic_tasks declares the beat schedules idempotently: one midnight roll-over per
shop time zone carrying that zone; running it again changes nothing; nothing is deleted."""

import io
import json

import pytest
from django.core.management import call_command
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

from tests.factories import make_shop


def _snapshot():
    return sorted(
        PeriodicTask.objects.values_list(
            "id", "name", "task", "interval_id", "crontab_id", "kwargs", "enabled", "date_changed"
        )
    )


@pytest.mark.django_db
def test_it_declares_every_schedule_with_one_roll_over_per_time_zone():
    make_shop(timezone="Asia/Shanghai")
    make_shop(timezone="Asia/Shanghai")
    make_shop(timezone="America/Los_Angeles")

    call_command("setup_periodic_tasks", stdout=io.StringIO())

    tasks = {t.name: t for t in PeriodicTask.objects.select_related("interval", "crontab")}
    sweep = tasks["sweep stuck requests"]
    assert sweep.task == "strategies.sweep_stuck_requests"
    assert (sweep.interval.every, sweep.interval.period) == (30, IntervalSchedule.SECONDS)
    recheck = tasks["recheck unknown executions"]
    assert recheck.task == "strategies.recheck_unknown_executions"
    assert (recheck.interval.every, recheck.interval.period) == (5, IntervalSchedule.MINUTES)
    alerts = tasks["sweep alerts"]
    assert alerts.task == "notifications.sweep_alerts"
    assert (alerts.interval.every, alerts.interval.period) == (1, IntervalSchedule.MINUTES)
    assert tasks["purge old delivery attempts"].task == "notifications.purge_old_attempts"

    roll_overs = {n: t for n, t in tasks.items() if t.task == "strategies.roll_over_day"}
    assert sorted(roll_overs) == ["roll-over America/Los_Angeles", "roll-over Asia/Shanghai"]
    for zone in ("America/Los_Angeles", "Asia/Shanghai"):
        task = roll_overs[f"roll-over {zone}"]
        assert (task.crontab.minute, task.crontab.hour) == ("0", "0")
        assert str(task.crontab.timezone) == zone
        # strategies.roll_over_day takes no arguments: it rolls each shop to its own day.
        assert (json.loads(task.kwargs), json.loads(task.args)) == ({}, [])
        assert zone in task.description


@pytest.mark.django_db
def test_running_it_twice_changes_nothing():
    make_shop(timezone="Europe/Berlin")
    call_command("setup_periodic_tasks", stdout=io.StringIO())
    before = _snapshot()
    schedules = (IntervalSchedule.objects.count(), CrontabSchedule.objects.count())

    call_command("setup_periodic_tasks", stdout=io.StringIO())

    assert _snapshot() == before
    assert (IntervalSchedule.objects.count(), CrontabSchedule.objects.count()) == schedules


@pytest.mark.django_db
def test_it_keeps_operator_switches_and_other_tasks_and_repairs_its_own():
    call_command("setup_periodic_tasks", stdout=io.StringIO())
    PeriodicTask.objects.filter(name="sweep alerts").update(enabled=False, task="wrong.name")
    PeriodicTask.objects.create(
        name="an operator's own task",
        task="strategies.sweep_stuck_requests",
        interval=IntervalSchedule.objects.first(),
    )

    call_command("setup_periodic_tasks", stdout=io.StringIO())

    alerts = PeriodicTask.objects.get(name="sweep alerts")
    assert (alerts.task, alerts.enabled) == ("notifications.sweep_alerts", False)
    assert PeriodicTask.objects.filter(name="an operator's own task").exists()


@pytest.mark.django_db
def test_a_new_time_zone_gets_its_roll_over_on_the_next_run():
    make_shop(timezone="Asia/Shanghai")
    call_command("setup_periodic_tasks", stdout=io.StringIO())
    make_shop(timezone="Australia/Sydney")

    call_command("setup_periodic_tasks", stdout=io.StringIO())

    names = set(
        PeriodicTask.objects.filter(task="strategies.roll_over_day").values_list("name", flat=True)
    )
    assert names == {"roll-over Asia/Shanghai", "roll-over Australia/Sydney"}
