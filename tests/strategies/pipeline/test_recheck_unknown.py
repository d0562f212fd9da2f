"""ATOM finds out what an `unknown` execution became (API.md): the platform is asked again on
the beat, and a definite answer is recorded as a confirmation would be; anything else leaves
the request `unknown` with its reservation kept."""

from decimal import Decimal

from strategies.models import AfterSaleRequest, DailyLedger, Decision, ExecutionConfirmation
from strategies.pipeline.execute import decision_confirm_not_paid
from strategies.pipeline.recheck import unknown_executions_recheck
from strategies.tasks import recheck_unknown_executions
from tests.strategies.pipeline.test_execution_confirm import left_unknown


def consumed(decision: Decision) -> tuple[Decimal, int]:
    ledger = DailyLedger.objects.get(pk=decision.ledger_id)
    return ledger.consumed, ledger.approved_count


def status(decision: Decision) -> str:
    return AfterSaleRequest.objects.get(pk=decision.request_id).status


def test_the_platform_saying_it_approved_makes_it_executed_and_keeps_the_reservation(
    shop, gateway_server
):
    decision = left_unknown(shop, gateway_server)  # the stalled call had paid
    gets = len(gateway_server.calls)
    gateway_server.status_script = []  # the status check answers the truth now: approved

    assert recheck_unknown_executions.run() == {"paid": 1, "not_paid": 0, "still_unknown": 0}

    assert status(decision) == "executed"
    decision.refresh_from_db()
    assert decision.executed_at is not None and decision.released_at is None
    assert consumed(decision) == (Decimal("9.00"), 1)
    audit = ExecutionConfirmation.objects.get(decision=decision)
    assert (audit.verdict, audit.user, audit.username) == ("paid", None, "")
    # One read, nothing sent again.
    [check] = gateway_server.calls[gets:]
    assert check.method == "GET"
    # Settled: the next run has nothing to ask.
    assert unknown_executions_recheck().paid == []
    assert len(gateway_server.calls) == gets + 1


def test_the_platform_saying_it_did_not_approve_fails_it_and_releases_once(shop, gateway_server):
    decision = left_unknown(shop, gateway_server)
    gateway_server.status_script = [False]

    result = unknown_executions_recheck()

    assert (result.paid, result.not_paid) == ([], [decision.pk])
    assert status(decision) == "failed"
    decision.refresh_from_db()
    assert decision.failed_at is not None and decision.released_at is not None
    assert decision.failure_reason.endswith("confirmed not paid by the platform's status check")
    assert consumed(decision) == (Decimal("0.00"), 0)
    assert ExecutionConfirmation.objects.get(decision=decision).verdict == "not_paid"


def test_no_clear_answer_leaves_it_unknown_with_its_reservation_and_asks_again_later(
    shop, gateway_server
):
    decision = left_unknown(shop, gateway_server)
    gateway_server.status_script = ["garbage", 500]

    assert unknown_executions_recheck().still_unknown == [decision.pk]
    assert unknown_executions_recheck().still_unknown == [decision.pk]

    assert status(decision) == "unknown"
    assert consumed(decision) == (Decimal("9.00"), 1)
    assert not ExecutionConfirmation.objects.exists()
    gateway_server.status_script = []
    assert unknown_executions_recheck().paid == [decision.pk]


def test_a_person_who_confirmed_first_wins_and_the_check_records_nothing(
    shop, owner, gateway_server
):
    decision = left_unknown(shop, gateway_server)
    assert decision_confirm_not_paid(decision_id=decision.pk, user=owner) is True
    gateway_server.status_script = []

    result = unknown_executions_recheck()

    assert (result.paid, result.not_paid, result.still_unknown) == ([], [], [])
    assert ExecutionConfirmation.objects.get(decision=decision).user == owner
    assert consumed(decision) == (Decimal("0.00"), 0)
