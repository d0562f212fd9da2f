"""An ambiguous attempt, then a refusal (RELIABILITY.md 25, API.md 1.1 "Outbound").

The platform paid on the first call but answered after the timeout; the retry got a 4xx. That
refusal is not final: the platform is asked (``GET /aftersales/{id}``) and the request is
``executed``, ``failed`` (reservation released) or ``unknown`` (reservation kept) as it says.
Never ``failed`` with its reservation released while the money may have moved.
"""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from strategies.models import DailyLedger, Decision
from strategies.pipeline.execute import ExecutionState, decision_execute
from strategies.pipeline.sweep import SweepResult, requests_sweep_stuck
from strategies.platforms.base import GatewayError
from strategies.tasks import execute_decision
from tests.factories import make_decision, make_request, make_strategy
from tests.strategies.platforms.generic.api_client import get_signed

AMOUNT = Decimal("9.00")


@pytest.fixture
def decision(shop):
    strategy = make_strategy(shop=shop, status="active", daily_cap=Decimal("1000.00"))
    return make_decision(request=make_request(shop=shop, amount="9.00"), strategy=strategy)


def ledger_consumed(decision: Decision) -> Decimal:
    return DailyLedger.objects.get(pk=decision.ledger_id).consumed


def status(decision: Decision) -> str:
    decision.request.refresh_from_db()
    return decision.request.status


def methods(gateway_server) -> list[tuple[str, int]]:
    return [(c.method, c.status) for c in gateway_server.calls]


def first_attempt_times_out_after_paying(decision, gateway_server) -> None:
    gateway_server.timeout_sleep = 1.5
    with pytest.raises(GatewayError) as exc:
        decision_execute(decision_id=decision.pk)
    assert exc.value.ambiguous
    decision.refresh_from_db()
    assert decision.execution_ambiguous_at is not None  # durable: any worker's retry sees it
    assert status(decision) == "approved"


def test_paid_then_timed_out_then_refused_is_executed_after_the_status_check(
    decision, gateway_server
):
    gateway_server.script = ["pay-stall", 422]
    first_attempt_times_out_after_paying(decision, gateway_server)
    assert decision_execute(decision_id=decision.pk).state is ExecutionState.EXECUTED
    assert status(decision) == "executed"
    # The first call is still stalling (it answers 200 to nobody later).
    assert methods(gateway_server)[1:] == [("POST", 422), ("GET", 200)]
    assert gateway_server.approved_keys() == {str(decision.idempotency_key)}
    assert gateway_server.calls[2].path == f"/aftersales/{decision.aftersale_id}"
    decision.refresh_from_db()
    assert decision.executed_at is not None and decision.released_at is None
    assert ledger_consumed(decision) == AMOUNT  # the ledger equals the money paid


@pytest.mark.parametrize("answer", ["garbage", {"approved": "yes"}, 500, 404, "stall"])
def test_refused_after_an_ambiguous_attempt_with_no_clear_answer_is_unknown_and_keeps_its_money(
    decision, gateway_server, answer, sent
):
    gateway_server.script = ["pay-stall", 422]
    gateway_server.status_script = [answer]
    first_attempt_times_out_after_paying(decision, gateway_server)
    gateway_server.timeout_sleep = 3  # a stalled status check outlives its deadline
    assert execute_decision.run(decision.pk) == "unknown"
    assert status(decision) == "unknown"
    decision.refresh_from_db()
    assert (decision.executed_at, decision.failed_at, decision.released_at) == (None, None, None)
    assert decision.execution_lease_until is None
    assert "422" in decision.failure_reason
    assert ledger_consumed(decision) == AMOUNT  # reservation kept
    # Nothing runs it again by itself: the claim, the task and the sweeper leave it alone.
    assert execute_decision.run(decision.pk) == "done"
    assert requests_sweep_stuck(older_than=0) == SweepResult(decide=[], execute=[])
    assert sent == []
    assert [c.method for c in gateway_server.calls] == ["POST", "POST", "GET"]


def test_the_api_shows_a_request_awaiting_confirmation_as_unknown(
    client, shop, decision, gateway_server
):
    gateway_server.script = ["pay-stall", 422]
    gateway_server.status_script = ["garbage"]
    first_attempt_times_out_after_paying(decision, gateway_server)
    assert decision_execute(decision_id=decision.pk).state is ExecutionState.UNKNOWN
    response = get_signed(client, shop, decision.aftersale_id)
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "unknown"
    assert body["decision"]["outcome"] == "approved"


def test_refused_after_an_ambiguous_attempt_the_platform_did_not_carry_out_is_failed(
    decision, gateway_server
):
    gateway_server.script = ["drop", 422]  # the connection died; the platform never paid
    with pytest.raises(GatewayError) as exc:
        decision_execute(decision_id=decision.pk)
    assert exc.value.ambiguous
    assert decision_execute(decision_id=decision.pk).state is ExecutionState.FAILED
    assert methods(gateway_server) == [("POST", 0), ("POST", 422), ("GET", 200)]
    assert status(decision) == "failed"
    decision.refresh_from_db()
    assert decision.released_at is not None
    assert "did not approve" in decision.failure_reason
    assert ledger_consumed(decision) == Decimal("0.00")


@pytest.mark.parametrize("earlier", [[], [500], [503, 302]])
def test_a_refusal_with_no_ambiguous_attempt_before_fails_at_once_without_asking(
    decision, gateway_server, earlier
):
    """5xx and 3xx are answers: nothing about them is ambiguous."""
    gateway_server.script = [*earlier, 422]
    for _ in earlier:
        with pytest.raises(GatewayError) as exc:
            decision_execute(decision_id=decision.pk)
        assert not exc.value.ambiguous
    assert decision_execute(decision_id=decision.pk).state is ExecutionState.FAILED
    assert [c.method for c in gateway_server.calls] == ["POST"] * (len(earlier) + 1)
    assert status(decision) == "failed"
    assert ledger_consumed(decision) == Decimal("0.00")


def test_an_ambiguous_attempt_counts_even_after_later_clear_ones(decision, gateway_server):
    gateway_server.script = ["pay-stall", 503, 422]
    gateway_server.status_script = ["garbage"]
    first_attempt_times_out_after_paying(decision, gateway_server)
    with pytest.raises(GatewayError):
        decision_execute(decision_id=decision.pk)
    assert decision_execute(decision_id=decision.pk).state is ExecutionState.UNKNOWN
    assert ledger_consumed(decision) == AMOUNT


def test_an_attempt_whose_worker_died_mid_call_is_ambiguous(decision, gateway_server):
    """A worker killed inside the call leaves its attempt marked sent and its lease to expire
    (what ``decision_execute`` writes before calling): the next attempt treats it as
    ambiguous, so its 4xx is checked with the platform."""
    dead = timezone.now() - dt.timedelta(minutes=1)
    Decision.objects.filter(pk=decision.pk).update(
        execution_attempts=1, execution_sent_at=dead, execution_lease_until=dead
    )
    gateway_server.script = [422]
    gateway_server.status_script = [True]  # the dead worker's call had gone through
    assert decision_execute(decision_id=decision.pk).state is ExecutionState.EXECUTED
    decision.refresh_from_db()
    assert decision.execution_ambiguous_at == dead
    assert methods(gateway_server) == [("POST", 422), ("GET", 200)]
    assert ledger_consumed(decision) == AMOUNT


def test_a_clear_attempt_leaves_nothing_that_looks_like_a_dead_worker(decision, gateway_server):
    gateway_server.script = [503, 422]
    with pytest.raises(GatewayError):
        decision_execute(decision_id=decision.pk)
    decision.refresh_from_db()
    assert (decision.execution_sent_at, decision.execution_ambiguous_at) == (None, None)
    assert decision_execute(decision_id=decision.pk).state is ExecutionState.FAILED
