"""RELIABILITY.md 10: the Celery settings that make at-least-once delivery safe, read from the
Celery app's own configuration (what a worker really uses)."""

from atomsite.celery import app
from strategies import tasks
from tests.subprocesses import django_setup


def test_late_acks_reject_on_worker_lost_and_prefetch_one():
    conf = app.conf
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1


def test_time_limits_and_retry_delays_stay_under_the_visibility_timeout(settings):
    conf = app.conf
    visibility = conf.broker_transport_options["visibility_timeout"]
    assert visibility == settings.CELERY_VISIBILITY_TIMEOUT
    assert 0 < conf.task_soft_time_limit < conf.task_time_limit < visibility
    assert visibility > settings.ATOM_RETRY_MAX_DELAY_SECONDS
    # The longest countdown a task can ask for: the back-off cap (with jitter at most the cap).
    assert max(tasks._backoff(n) for n in range(30)) <= settings.ATOM_RETRY_MAX_DELAY_SECONDS


def test_json_only():
    conf = app.conf
    assert conf.task_serializer == "json"
    assert list(conf.accept_content) == ["json"]


def test_the_pipeline_tasks_are_registered_under_their_names():
    app.loader.import_default_modules()
    for name in (
        "strategies.decide_request",
        "strategies.execute_decision",
        "strategies.sweep_stuck_requests",
        "strategies.roll_over_day",
    ):
        assert name in app.tasks


def test_a_visibility_timeout_below_the_time_limits_refuses_to_start():
    env = {
        "PATH": "/usr/bin:/bin",
        "DATABASE_URL": "sqlite:////tmp/unused.sqlite3",
        "SECRET_KEY": "t",
        "CELERY_VISIBILITY_TIMEOUT": "60",
        "CELERY_TASK_TIME_LIMIT": "90",
    }
    result = django_setup(env)
    assert result.returncode != 0
    assert "CELERY_VISIBILITY_TIMEOUT" in result.stderr
