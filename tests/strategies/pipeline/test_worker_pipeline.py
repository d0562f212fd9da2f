"""The pipeline on a real Celery worker over Redis and PostgreSQL, against a real local gateway
(RELIABILITY.md 3, 5, 6, 7, 8)."""

import signal
from contextlib import contextmanager
from decimal import Decimal

import pytest
from celery import current_app
from django.db import transaction

from strategies.models import AfterSaleRequest, DailyLedger, Decision
from strategies.pipeline import publish
from strategies.pipeline.decide import request_decide
from strategies.pipeline.sweep import requests_sweep_stuck
from tests.factories import make_request, make_shop, make_strategy
from tests.worker import wait_until

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True), pytest.mark.timeout(90)]


def final(request: AfterSaleRequest) -> str:
    request.refresh_from_db()
    return request.status if request.status in ("executed", "failed", "manual_review") else ""


@pytest.fixture
def shop_with_strategy():
    shop = make_shop()
    strategy = make_strategy(shop=shop, status="active", daily_cap=Decimal("1000.00"))
    return shop, strategy


def test_a_request_decided_twice_is_decided_and_executed_once(
    celery_worker,
    gateway_server,
    shop_with_strategy,
):
    """RELIABILITY.md 3: the decide task replayed."""
    shop, _ = shop_with_strategy
    celery_worker(gateway=gateway_server)
    request = make_request(shop=shop, amount="12.34")
    for _ in range(3):
        current_app.send_task("strategies.decide_request", args=[request.pk])
    assert wait_until(lambda: final(request)) == "executed"
    decision = Decision.objects.get(request=request)
    # Let every replay run to the end before counting.
    wait_until(lambda: len(gateway_server.calls) >= 1)
    current_app.send_task("strategies.execute_decision", args=[decision.pk])
    wait_until(lambda: decision_attempts(decision) == 1, timeout=3)
    assert Decision.objects.filter(request=request).count() == 1
    assert len(gateway_server.calls) == 1
    assert gateway_server.calls[0].idempotency_key == str(decision.idempotency_key)
    assert DailyLedger.objects.get().consumed == Decimal("12.34")


def decision_attempts(decision: Decision) -> int:
    decision.refresh_from_db()
    return decision.execution_attempts


def test_gateway_5xx_and_timeouts_are_retried_with_one_key_and_executed_once(
    celery_worker,
    gateway_server,
    shop_with_strategy,
):
    """RELIABILITY.md 7: back-off retries on a real worker."""
    shop, _ = shop_with_strategy
    gateway_server.script = [500, "timeout", 503]
    gateway_server.timeout_sleep = 1.3
    celery_worker(gateway=gateway_server)
    request = make_request(shop=shop)
    current_app.send_task("strategies.decide_request", args=[request.pk])
    assert wait_until(lambda: final(request), timeout=30) == "executed"
    decision = Decision.objects.get(request=request)
    assert len(gateway_server.calls) == 4
    assert {c.idempotency_key for c in gateway_server.calls} == {str(decision.idempotency_key)}
    assert gateway_server.approved_keys() == {str(decision.idempotency_key)}
    assert decision_attempts(decision) == 4
    assert decision.executed_at is not None


def test_a_final_4xx_fails_and_releases_once_even_when_the_failing_task_runs_twice(
    celery_worker,
    gateway_server,
    shop_with_strategy,
):
    """RELIABILITY.md 7: permanent refusal."""
    shop, strategy = shop_with_strategy
    celery_worker(gateway=gateway_server, pool="prefork", concurrency=2)
    keep = make_request(shop=shop, amount="10.00")
    current_app.send_task("strategies.decide_request", args=[keep.pk])
    assert wait_until(lambda: final(keep), timeout=30) == "executed"
    gateway_server.script = [503, 422]
    request = make_request(shop=shop, amount="40.00")
    current_app.send_task("strategies.decide_request", args=[request.pk])
    assert wait_until(lambda: final(request), timeout=30) == "failed"
    decision = Decision.objects.get(request=request)
    for _ in range(2):
        current_app.send_task("strategies.execute_decision", args=[decision.pk])
    requests_sweep_stuck(older_than=0)  # nothing left to sweep for a failed request
    wait_until(lambda: not worker_busy(), timeout=5)
    decision.refresh_from_db()
    assert decision.failed_at is not None and "422" in decision.failure_reason
    assert decision.released_at is not None
    ledger = DailyLedger.objects.get(strategy=strategy)
    assert (ledger.consumed, ledger.approved_count) == (Decimal("10.00"), 1)
    assert [
        c.status for c in gateway_server.calls if c.idempotency_key == str(decision.idempotency_key)
    ] == [503, 422]


def worker_busy() -> bool:
    """True while the worker's queue still holds messages."""
    import redis
    from django.conf import settings

    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    try:
        return bool(client.llen("celery") or client.hlen("unacked"))
    finally:
        client.close()


def test_a_crash_after_the_decision_commits_is_executed_once_by_the_rerun(
    celery_worker,
    gateway_server,
    shop_with_strategy,
    monkeypatch,
):
    """RELIABILITY.md 6: the decision committed, the execution message never left."""
    shop, _ = shop_with_strategy
    request = make_request(shop=shop)
    monkeypatch.setattr(
        publish, "publish_now", lambda name, args, countdown=None: False
    )  # the crash
    decision = request_decide(request_id=request.pk)
    monkeypatch.undo()
    assert final(request) == "" and decision.outcome == "approved"
    celery_worker(gateway=gateway_server)
    assert requests_sweep_stuck(older_than=0).execute == [decision.pk]
    assert wait_until(lambda: final(request)) == "executed"
    current_app.send_task("strategies.execute_decision", args=[decision.pk])  # a late duplicate
    requests_sweep_stuck(older_than=0)
    wait_until(lambda: not worker_busy(), timeout=5)
    assert len(gateway_server.calls) == 1
    assert decision_attempts(decision) == 1


@contextmanager
def broker_down():
    """Points the in-process Celery app at a port where nothing listens."""
    import socket

    from kombu import pools

    def reset() -> None:
        current_app._pool = None
        current_app.amqp._producer_pool = None
        pools.reset()

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    conf = current_app.conf
    saved = conf.broker_url, conf.broker_write_url
    conf.broker_url = conf.broker_write_url = f"redis://127.0.0.1:{port}/4"
    reset()
    try:
        yield
    finally:
        conf.broker_url, conf.broker_write_url = saved
        reset()


def test_a_request_accepted_while_the_broker_is_down_is_swept_and_decided(
    celery_worker,
    gateway_server,
    shop_with_strategy,
    caplog,
):
    """RELIABILITY.md 8: the publish after commit fails; the sweeper heals it."""
    shop, _ = shop_with_strategy
    with broker_down(), transaction.atomic():
        request = make_request(shop=shop)
        publish.publish_on_commit(publish.DECIDE_TASK, request.pk)
    assert f"could not publish strategies.decide_request [{request.pk}]" in caplog.text
    assert AfterSaleRequest.objects.get(pk=request.pk).status == "received"  # kept, not lost
    celery_worker(gateway=gateway_server)
    assert requests_sweep_stuck(older_than=0).decide == [request.pk]
    assert wait_until(lambda: final(request)) == "executed"
    assert len(gateway_server.calls) == 1


def test_sigkill_of_the_pool_child_mid_gateway_call_still_executes_exactly_once(
    celery_worker,
    gateway_server,
    shop_with_strategy,
):
    """RELIABILITY.md 5: the task dies inside the gateway call; the message is redelivered
    (reject on worker lost), the lease expires, the retry uses the same key."""
    shop, _ = shop_with_strategy
    gateway_server.script = ["hold"]
    worker = celery_worker(gateway=gateway_server, pool="prefork", concurrency=1)
    request = make_request(shop=shop)
    current_app.send_task("strategies.decide_request", args=[request.pk])
    assert gateway_server.held.wait(15)
    [child] = worker.pool_pids()
    import os

    os.kill(child, signal.SIGKILL)
    gateway_server.release()  # the platform finishes the approval the dead task asked for
    assert wait_until(lambda: final(request), timeout=30) == "executed"
    decision = Decision.objects.get(request=request)
    key = str(decision.idempotency_key)
    assert {c.idempotency_key for c in gateway_server.calls} == {key}
    assert gateway_server.approved_keys() == {key}
    assert [c.status for c in gateway_server.calls] == [200, 409]  # the retry: already approved
    assert decision_attempts(decision) == 2
    assert Decision.objects.count() == 1
    assert DailyLedger.objects.get().approved_count == 1


def test_sigkill_of_the_whole_worker_mid_task_then_a_new_worker_executes_once(
    celery_worker,
    gateway_server,
    shop_with_strategy,
):
    """RELIABILITY.md 5: the whole worker dies; its unacked message waits in Redis, the sweeper
    re-enqueues the approval, a new worker executes it once."""
    shop, _ = shop_with_strategy
    gateway_server.script = ["hold"]
    first = celery_worker(gateway=gateway_server)
    request = make_request(shop=shop)
    current_app.send_task("strategies.decide_request", args=[request.pk])
    assert gateway_server.held.wait(15)
    first.kill(signal.SIGKILL)
    gateway_server.release()
    celery_worker(gateway=gateway_server)
    # The dead worker's lease still runs: the sweeper leaves it alone until it expires.
    assert requests_sweep_stuck(older_than=0).execute == []
    swept = wait_until(lambda: requests_sweep_stuck(older_than=0).execute, timeout=30)
    assert swept == [Decision.objects.get().pk]
    assert wait_until(lambda: final(request), timeout=30) == "executed"
    decision = Decision.objects.get(request=request)
    assert gateway_server.approved_keys() == {str(decision.idempotency_key)}
    assert len(gateway_server.calls) == 2
    assert decision_attempts(decision) == 2
