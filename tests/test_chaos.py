"""The chaos run in CI (RELIABILITY.md): a few hundred requests through a real worker pool while
the whole worker is SIGKILLed twice and the broker (a Redis server of the test's own, never the
machine's) is SIGKILLed and restarted empty; the sweeper heals what was lost. Every request is
decided once, every approval paid once at the gateway, no cap leaks, the ledgers add up.

The full run (5,000 requests) is ``python bench/chaos/run.py``; the scenario lives in
``bench/chaos/core.py`` and is the same.
"""

from collections.abc import Iterator

import pytest

from bench.chaos.core import (
    CHAOS_WORKER_ENV,
    ChaosConfig,
    RedisServer,
    WorkerAndDeciders,
    broker,
    run_chaos,
)
from bench.common import free_port
from tests.worker import DeciderProcesses


def assert_every_request_paid_once(report) -> None:
    assert report.violations == []
    assert report.stored == 400
    assert report.decisions == 400
    assert report.executed == report.approved == report.gateway_approving_calls


def assert_caps_were_reached(report) -> None:
    """The run proved something: approvals and manual reviews both, and caps reached (and held)
    on the way."""
    assert report.approved > 0
    assert report.manual_review > 0
    assert report.turned_away_at_cap > 0


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    server = RedisServer(free_port()).start()
    yield server
    server.kill()


@pytest.mark.chaos
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_it_decides_and_pays_every_request_once_through_worker_kills_and_a_redis_restart(
    celery_worker,
    gateway_server,
    own_redis,
):
    config = ChaosConfig(count=400, kills=2, redis_restarts=1, shops=2, timeout=90)

    workers = []

    def start_worker():
        workers.append(
            celery_worker(
                pool="prefork",
                concurrency=2,
                gateway=gateway_server,
                env={**CHAOS_WORKER_ENV, "CELERY_BROKER_URL": own_redis.url},
            )
        )
        return workers[-1]

    with broker(own_redis.url):
        report = run_chaos(
            config=config, redis=own_redis, gateway=gateway_server, start_worker=start_worker
        )
    print("\n".join(report.lines()))
    if report.violations:
        print("last worker's log:\n" + workers[-1].log())

    assert_every_request_paid_once(report)
    # The chaos really happened: the sweeper healed lost messages.
    assert (report.worker_kills, report.redis_restarts) == (2, 1)
    assert report.swept_decide + report.swept_execute > 0
    assert_caps_were_reached(report)


@pytest.mark.chaos
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_with_postgres_dispatch_it_pays_every_request_once_through_decider_kills(
    celery_worker, gateway_server, own_redis, settings
):
    """The same run with ATOM_DISPATCH=postgres: each kill takes the supervisor, its deciders and
    the Celery worker beside them (retries) at once, mid-decision and mid-call."""
    settings.ATOM_DISPATCH = "postgres"  # the feeders' intake sends NOTIFY
    config = ChaosConfig(count=400, kills=2, redis_restarts=1, shops=2, timeout=90)
    env = {**CHAOS_WORKER_ENV, "CELERY_BROKER_URL": own_redis.url}
    started: list[DeciderProcesses] = []

    def start_worker():
        deciders = DeciderProcesses(processes=2, gateway=gateway_server, env=env).start()
        started.append(deciders)
        celery = celery_worker(pool="prefork", concurrency=1, gateway=gateway_server, env=env)
        return WorkerAndDeciders(deciders, celery)

    try:
        with broker(own_redis.url):
            report = run_chaos(
                config=config, redis=own_redis, gateway=gateway_server, start_worker=start_worker
            )
    finally:
        for deciders in started:
            deciders.kill()
    print("\n".join(report.lines()))
    if report.violations:
        print("last deciders' log:\n" + started[-1].log())

    assert_every_request_paid_once(report)
    assert (report.worker_kills, report.redis_restarts) == (2, 1)
    assert_caps_were_reached(report)
