"""The pipeline over RabbitMQ, where its guarantee differs from Redis' (docs/production.md
"Which broker").

Redis keeps a message a dead worker had taken in its ``unacked`` hash until the visibility
timeout (an hour by default) passes, so the sweeper is what brings it back sooner
(``test_worker_pipeline``: the whole worker SIGKILLed). RabbitMQ requeues every unacknowledged
message the moment the dead worker's connection drops: the next worker gets it at once, with no
sweep. Exactly once still rests on PostgreSQL (the decision's unique row, the execution lease and
claim, the one idempotency key), and the sweeper's backlog check reads RabbitMQ's queue length.

The tests run on a vhost of their own (``TEST_RABBITMQ_URL``, created with rabbitmqctl when
missing), purged before and after each test (the ``rabbitmq`` fixture, conftest.py).
"""

from __future__ import annotations

import signal
from decimal import Decimal

import pytest
from celery import current_app

from strategies.models import AfterSaleRequest, DailyLedger, Decision
from strategies.pipeline import sweep
from tests.factories import make_request, make_shop, make_strategy
from tests.worker import wait_until

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True), pytest.mark.timeout(90)]


def final(request: AfterSaleRequest) -> str:
    request.refresh_from_db()
    return request.status if request.status in ("executed", "failed", "manual_review") else ""


@pytest.fixture
def shop():
    shop = make_shop()
    make_strategy(shop=shop, status="active", daily_cap=Decimal("1000.00"))
    return shop


def test_a_request_sent_twice_is_decided_and_executed_once(
    rabbitmq, celery_worker, gateway_server, shop
):
    celery_worker(gateway=gateway_server, env={"CELERY_BROKER_URL": rabbitmq})
    request = make_request(shop=shop, amount="9.00")
    for _ in range(2):  # at least once: a duplicate is harmless
        current_app.send_task("strategies.decide_request", args=[request.pk])
    assert wait_until(lambda: final(request), timeout=30) == "executed"
    decision = Decision.objects.get(request=request)
    wait_until(lambda: sweep.broker_backlog() == 0, timeout=10)
    assert gateway_server.approved_keys() == {str(decision.idempotency_key)}
    assert DailyLedger.objects.get().consumed == Decimal("9.00")


def test_the_whole_worker_killed_mid_task_is_redelivered_at_once_without_a_sweep(
    rabbitmq, celery_worker, gateway_server, shop
):
    """On Redis this message would wait out the visibility timeout (an hour) in ``unacked``;
    RabbitMQ requeues it when the dead worker's connection drops, and the lease then keeps the
    redelivered copy from calling the gateway before the dead call's lease expired."""
    gateway_server.script = ["hold"]
    env = {"CELERY_BROKER_URL": rabbitmq}
    first = celery_worker(gateway=gateway_server, env=env)
    request = make_request(shop=shop, amount="9.00")
    current_app.send_task("strategies.decide_request", args=[request.pk])
    assert gateway_server.held.wait(15)
    first.kill(signal.SIGKILL)
    gateway_server.release()  # the platform finishes the approval the dead task asked for
    celery_worker(gateway=gateway_server, env=env)
    # No sweep anywhere in this test: the redelivery alone carries it to the end.
    assert wait_until(lambda: final(request), timeout=45) == "executed"
    decision = Decision.objects.get(request=request)
    key = str(decision.idempotency_key)
    assert {c.idempotency_key for c in gateway_server.calls} == {key}
    assert gateway_server.approved_keys() == {key}
    assert [c.status for c in gateway_server.calls] == [200, 409]  # the retry: already approved
    assert Decision.objects.count() == 1
    assert DailyLedger.objects.get().approved_count == 1


def test_the_sweepers_backlog_is_the_length_of_the_rabbitmq_queue(rabbitmq):
    assert sweep.broker_backlog() == 0
    for request_id in (1, 2, 3):  # no worker listens in this test: they stay queued
        current_app.send_task("strategies.decide_request", args=[request_id])
    assert wait_until(lambda: sweep.broker_backlog() == 3, timeout=5)
