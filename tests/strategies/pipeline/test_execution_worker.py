"""RELIABILITY.md 25 on a real Celery worker over Redis and PostgreSQL, against a real local
gateway: the platform paid, ATOM did not hear so, and the retry was refused. The ledger still
equals the money paid."""

import os
import signal
from decimal import Decimal

import pytest
from celery import current_app

from strategies.models import AfterSaleRequest, DailyLedger, Decision
from tests.factories import make_request, make_shop, make_strategy
from tests.worker import wait_until

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True), pytest.mark.timeout(90)]


def settled(request: AfterSaleRequest) -> str:
    request.refresh_from_db()
    return request.status if request.status in ("executed", "failed", "unknown") else ""


@pytest.fixture
def shop():
    shop = make_shop()
    make_strategy(shop=shop, status="active", daily_cap=Decimal("1000.00"))
    return shop


def test_paid_then_too_slow_then_refused_is_executed_and_the_ledger_equals_the_money_paid(
    celery_worker, gateway_server, shop
):
    gateway_server.script = ["pay-stall", 422]
    gateway_server.timeout_sleep = 1.5
    celery_worker(gateway=gateway_server)
    request = make_request(shop=shop, amount="9.00")
    current_app.send_task("strategies.decide_request", args=[request.pk])
    assert wait_until(lambda: settled(request), timeout=30) == "executed"
    assert [c.method for c in gateway_server.calls] == ["POST", "POST", "GET"]
    decision = Decision.objects.get(request=request)
    assert gateway_server.approved_keys() == {str(decision.idempotency_key)}
    assert DailyLedger.objects.get().consumed == Decimal("9.00")


def test_a_worker_killed_mid_call_then_a_refusal_is_checked_with_the_platform(
    celery_worker, gateway_server, shop
):
    """The dead worker's call went through (the platform carried on); the retry is refused.
    Without the attempt marked sent before the call, that refusal would release 9.00 that
    was paid."""
    gateway_server.script = ["hold", 422]
    worker = celery_worker(gateway=gateway_server, pool="prefork", concurrency=1)
    request = make_request(shop=shop, amount="9.00")
    current_app.send_task("strategies.decide_request", args=[request.pk])
    assert gateway_server.held.wait(15)
    [child] = worker.pool_pids()
    os.kill(child, signal.SIGKILL)
    gateway_server.release()  # the platform finishes the approval the dead task asked for
    assert wait_until(lambda: settled(request), timeout=40) == "executed"
    assert [(c.method, c.status) for c in gateway_server.calls] == [
        ("POST", 200),
        ("POST", 422),
        ("GET", 200),
    ]
    decision = Decision.objects.get(request=request)
    assert decision.execution_ambiguous_at is not None
    assert decision.released_at is None
    assert DailyLedger.objects.get().consumed == Decimal("9.00")


def test_unsettled_by_the_platform_it_waits_for_a_person_with_its_reservation(
    celery_worker, gateway_server, shop
):
    gateway_server.script = ["pay-stall", 422]
    gateway_server.status_script = ["garbage"]
    gateway_server.timeout_sleep = 1.5
    celery_worker(gateway=gateway_server)
    request = make_request(shop=shop, amount="9.00")
    current_app.send_task("strategies.decide_request", args=[request.pk])
    assert wait_until(lambda: settled(request), timeout=30) == "unknown"
    assert DailyLedger.objects.get().consumed == Decimal("9.00")
    assert Decision.objects.get(request=request).released_at is None
