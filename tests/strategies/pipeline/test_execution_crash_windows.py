"""The crash windows of deciding and executing inline (issue 16), with the claim that also
marks the attempt sent (``rows.EXECUTION_CLAIM``) and the one-statement "mark executed".

- dies after the decision commits, before calling: its first attempt was claimed by the
  decision's insert, so once that lease expires the sweeper re-enqueues the execution, which
  calls the gateway once (counting the dead attempt as possibly sent);
- dies after the claim (the attempt marked sent), whether or not it had called: once the lease
  expires the next attempt counts it as ambiguous, so a refusal is checked with the platform;
- a misconfigured gateway fails before sending: the mark and the lease are given back, nothing
  ambiguous is left.
"""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from strategies.models import AfterSaleRequest, Decision
from strategies.pipeline import execute
from strategies.pipeline.execute import ExecutionState, decision_execute
from strategies.pipeline.rows import decision_claim_execution, decision_mark_executed
from strategies.pipeline.sweep import requests_sweep_stuck
from strategies.tasks import decide_request, execute_decision
from tests.factories import make_decision, make_request, make_strategy


class WorkerKilled(BaseException):
    """Stands for the worker process dying at that point."""


@pytest.fixture
def approvable(shop):
    make_strategy(shop=shop, status="active", daily_cap=Decimal("1000.00"))
    return make_request(shop=shop, amount="25.00")


def expire_lease(decision_id: int) -> None:
    Decision.objects.filter(pk=decision_id).update(
        execution_lease_until=timezone.now() - dt.timedelta(seconds=1)
    )


@pytest.mark.django_db(transaction=True)
def test_dying_after_the_decision_commits_is_swept_and_executed_once(
    approvable, gateway_server, sent, settings, monkeypatch
):
    def killed(**kwargs):
        raise WorkerKilled

    monkeypatch.setattr(execute, "decision_execute", killed)
    with pytest.raises(WorkerKilled):
        decide_request.run(approvable.pk)
    monkeypatch.undo()
    decision = Decision.objects.get(request=approvable)
    # Committed with its first attempt claimed: nobody else calls while that lease runs.
    assert decision.execution_attempts == 1
    assert decision.execution_lease_until is not None and decision.execution_sent_at is not None
    assert gateway_server.calls == []

    settings.ATOM_SWEEP_AFTER_SECONDS = 60
    AfterSaleRequest.objects.filter(pk=approvable.pk).update(
        updated_at=timezone.now() - dt.timedelta(seconds=61)
    )
    assert requests_sweep_stuck().execute == []
    expire_lease(decision.pk)
    assert requests_sweep_stuck().execute == [decision.pk]
    assert execute_decision.run(decision.pk) == "executed"
    decision.refresh_from_db()
    assert decision.execution_attempts == 2 and decision.execution_ambiguous_at is not None
    assert execute_decision.run(decision.pk) == "done"
    assert [c.idempotency_key for c in gateway_server.calls] == [str(decision.idempotency_key)]
    approvable.refresh_from_db()
    assert approvable.status == "executed"


@pytest.fixture
def decision(shop):
    strategy = make_strategy(shop=shop, status="active", daily_cap=Decimal("1000.00"))
    return make_decision(request=make_request(shop=shop, amount="9.00"), strategy=strategy)


def test_the_claim_marks_the_attempt_sent(decision):
    now = timezone.now()
    claim = decision_claim_execution(
        decision_id=decision.pk, now=now, lease_until=now + dt.timedelta(seconds=30)
    )
    assert claim is not None and claim.channel_id is None and not claim.after_ambiguous
    decision.refresh_from_db()
    assert decision.execution_sent_at == now and decision.execution_ambiguous_at is None


def test_dying_after_the_claim_makes_the_next_attempt_ambiguous(decision, gateway_server):
    """What a worker killed right after the claim (before or after calling) leaves behind: the
    attempt marked sent. The retry's refusal is not taken as final."""
    now = timezone.now()
    assert decision_claim_execution(
        decision_id=decision.pk, now=now, lease_until=now + dt.timedelta(seconds=30)
    )
    assert decision_execute(decision_id=decision.pk).state is ExecutionState.BUSY  # lease runs
    expire_lease(decision.pk)
    gateway_server.script = [422]
    gateway_server.status_script = [True]  # the dead worker's call had gone through
    assert decision_execute(decision_id=decision.pk).state is ExecutionState.EXECUTED
    decision.refresh_from_db()
    assert decision.execution_ambiguous_at == now
    assert [(c.method, c.status) for c in gateway_server.calls] == [("POST", 422), ("GET", 200)]


def test_a_misconfigured_gateway_leaves_nothing_ambiguous(decision, gateway_server, monkeypatch):
    def broken():
        raise RuntimeError("no gateway configured")

    monkeypatch.setattr(execute, "gateway_get", broken)
    with pytest.raises(RuntimeError):
        decision_execute(decision_id=decision.pk)
    decision.refresh_from_db()
    assert (decision.execution_sent_at, decision.execution_lease_until) == (None, None)
    monkeypatch.undo()
    gateway_server.script = [422]  # final: no earlier attempt could have sent anything
    assert decision_execute(decision_id=decision.pk).state is ExecutionState.FAILED
    assert [c.method for c in gateway_server.calls] == ["POST"]


def test_mark_executed_records_once_and_moves_only_an_approved_request(decision):
    now = timezone.now()
    assert decision_mark_executed(decision_id=decision.pk, request_id=decision.request_id, now=now)
    assert not decision_mark_executed(
        decision_id=decision.pk, request_id=decision.request_id, now=now
    )
    decision.refresh_from_db()
    decision.request.refresh_from_db()
    assert decision.executed_at == now and decision.request.status == "executed"

    other = make_decision(request=make_request(shop=decision.shop))
    AfterSaleRequest.objects.filter(pk=other.request_id).update(status="superseded")
    assert decision_mark_executed(decision_id=other.pk, request_id=other.request_id, now=now)
    other.request.refresh_from_db()
    assert other.request.status == "superseded"  # never moved from anything but approved
