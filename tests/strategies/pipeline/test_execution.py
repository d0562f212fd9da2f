"""Execution through the gateway: state guards, the lease, retries with one idempotency key,
permanent failure with the reservation released once (RELIABILITY.md 3, 6, 7)."""

import datetime as dt
import threading
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from strategies.models import DailyLedger, Decision
from strategies.pipeline.execute import ExecutionState, decision_execute
from strategies.platforms.base import GatewayError
from strategies.tasks import execute_decision
from tests.factories import make_decision, make_request, make_shop, make_strategy
from tests.worker import wait_until


@pytest.fixture
def decision(shop):
    strategy = make_strategy(shop=shop, status="active", daily_cap=Decimal("1000.00"))
    return make_decision(request=make_request(shop=shop, amount="25.00"), strategy=strategy)


def state(decision: Decision) -> tuple[str, bool, bool, int]:
    decision.refresh_from_db()
    decision.request.refresh_from_db()
    return (
        decision.request.status,
        decision.executed_at is not None,
        decision.failed_at is not None,
        decision.execution_attempts,
    )


def test_the_simulated_gateway_executes_an_approval_once(decision, settings):
    settings.ATOM_GATEWAY = "simulated"
    assert decision_execute(decision_id=decision.pk).state is ExecutionState.EXECUTED
    assert state(decision) == ("executed", True, False, 1)
    assert decision_execute(decision_id=decision.pk).state is ExecutionState.DONE
    assert state(decision) == ("executed", True, False, 1)


def test_a_replayed_task_makes_one_gateway_call(decision, gateway_server):
    assert execute_decision.run(decision.pk) == "executed"
    assert execute_decision.run(decision.pk) == "done"
    assert len(gateway_server.calls) == 1
    assert gateway_server.calls[0].idempotency_key == str(decision.idempotency_key)
    assert gateway_server.calls[0].body == {
        "aftersale_id": decision.aftersale_id,
        "action": "approve_refund",
        "amount": "25.00",
    }


def test_a_manual_review_is_never_sent(shop, gateway_server):
    manual = make_decision(request=make_request(shop=shop), outcome="manual_review")
    assert decision_execute(decision_id=manual.pk).state is ExecutionState.DONE
    assert gateway_server.calls == []


def test_5xx_and_timeouts_are_retried_with_the_same_key_then_executed_once(
    decision,
    gateway_server,
):
    gateway_server.script = ["timeout", 500, 503]
    gateway_server.timeout_sleep = 1.5
    for _ in range(3):
        with pytest.raises(GatewayError) as exc:
            decision_execute(decision_id=decision.pk)
        assert exc.value.permanent is False
        assert state(decision)[0] == "approved"
    assert decision_execute(decision_id=decision.pk).state is ExecutionState.EXECUTED
    assert {c.idempotency_key for c in gateway_server.calls} == {str(decision.idempotency_key)}
    assert [c.status for c in gateway_server.calls][1:] == [500, 503, 200]
    # The platform approved the timed-out call late: one approval, one key, whatever it saw.
    wait_until(lambda: gateway_server.calls[0].status)
    assert gateway_server.approved_keys() == {str(decision.idempotency_key)}
    assert state(decision) == ("executed", True, False, 4)
    assert decision_execute(decision_id=decision.pk).state is ExecutionState.DONE
    assert len(gateway_server.calls) == 4


def test_a_final_4xx_fails_the_request_and_releases_the_reservation_once(
    decision,
    gateway_server,
):
    ledger = DailyLedger.objects.get(pk=decision.ledger_id)
    assert ledger.consumed == Decimal("25.00")
    gateway_server.script = [500, 422]
    with pytest.raises(GatewayError):
        decision_execute(decision_id=decision.pk)
    assert decision_execute(decision_id=decision.pk).state is ExecutionState.FAILED
    # The failing task runs again (redelivered): no call, no second release.
    assert execute_decision.run(decision.pk) == "done"
    assert len(gateway_server.calls) == 2
    assert state(decision) == ("failed", False, True, 2)
    assert "422" in decision.failure_reason
    assert decision.released_at is not None
    ledger.refresh_from_db()
    assert (ledger.consumed, ledger.approved_count) == (Decimal("0.00"), 0)


def test_a_lease_left_by_a_dead_worker_expires_and_the_rerun_executes_once(
    decision,
    gateway_server,
):
    # A worker claimed the execution and died before (or during) the gateway call.
    Decision.objects.filter(pk=decision.pk).update(
        execution_lease_until=timezone.now() + dt.timedelta(seconds=30), execution_attempts=1
    )
    busy = decision_execute(decision_id=decision.pk)
    assert busy.state is ExecutionState.BUSY
    assert 0 < busy.retry_after <= 31
    assert gateway_server.calls == []
    later = timezone.now() + dt.timedelta(seconds=31)
    assert decision_execute(decision_id=decision.pk, now=later).state is ExecutionState.EXECUTED
    assert len(gateway_server.calls) == 1
    assert state(decision) == ("executed", True, False, 2)


def test_a_copy_that_loses_the_claim_as_the_holder_gives_the_lease_back_claims_again(
    decision, gateway_server, monkeypatch
):
    """The holder's attempt ends (lease given back, still open) between this copy's lost claim
    and its look at the lease: the copy must not stop as if the approval were done."""
    from strategies.pipeline import execute

    real_claim = execute.decision_claim_execution
    claims: list[object] = []

    def claim_raced_by_the_holder(**kwargs):
        if not claims:
            held = timezone.now() + dt.timedelta(seconds=30)
            Decision.objects.filter(pk=decision.pk).update(execution_lease_until=held)
            claims.append(real_claim(**kwargs))  # lost: the lease is held
            # ... and the holder's failed attempt gives it back just after.
            Decision.objects.filter(pk=decision.pk).update(execution_lease_until=None)
            return claims[-1]
        claims.append(real_claim(**kwargs))
        return claims[-1]

    monkeypatch.setattr(execute, "decision_claim_execution", claim_raced_by_the_holder)
    assert decision_execute(decision_id=decision.pk).state is ExecutionState.EXECUTED
    assert claims[0] is None and claims[1] is not None
    assert len(gateway_server.calls) == 1
    assert state(decision) == ("executed", True, False, 1)


@pytest.mark.django_db(transaction=True)
def test_two_copies_running_at_once_make_one_gateway_call(gateway_server):
    shop = make_shop()
    decision = make_decision(request=make_request(shop=shop), strategy=None)
    gateway_server.script = ["hold"]
    results: list[ExecutionState] = []

    def run() -> None:
        try:
            results.append(decision_execute(decision_id=decision.pk).state)
        finally:
            connection.close()

    first = threading.Thread(target=run)
    first.start()
    assert gateway_server.held.wait(5)
    run()  # the second copy, while the first is inside the gateway call
    gateway_server.release()
    first.join(5)
    assert sorted(r.value for r in results) == ["busy", "executed"]
    assert len(gateway_server.calls) == 1
    assert state(decision) == ("executed", True, False, 1)
