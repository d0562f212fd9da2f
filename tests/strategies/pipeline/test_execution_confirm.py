"""A person settles what the platform could not: "paid" or "not paid" for a request left
``unknown`` (issue 11.2). Guarded (only from ``unknown``), idempotent, audited; a reservation is
released only on a definite "not paid", and only once."""

import threading
from decimal import Decimal

import pytest
from django.db import connection

from strategies.models import DailyLedger, Decision, ExecutionConfirmation
from strategies.pipeline.execute import (
    ExecutionState,
    decision_confirm_not_paid,
    decision_confirm_paid,
    decision_execute,
)
from strategies.platforms.base import GatewayError
from tests.factories import make_decision, make_membership, make_request, make_strategy


def left_unknown(shop, gateway_server) -> Decision:
    """An approval taken to `unknown` by the real execution: paid, timed out, refused, and
    the platform's status check answered garbage."""
    strategy = make_strategy(shop=shop, status="active", daily_cap=Decimal("1000.00"))
    decision = make_decision(request=make_request(shop=shop, amount="9.00"), strategy=strategy)
    gateway_server.script = ["pay-stall", 422]
    gateway_server.status_script = ["garbage"]
    gateway_server.timeout_sleep = 1.2
    with pytest.raises(GatewayError):
        decision_execute(decision_id=decision.pk)
    assert decision_execute(decision_id=decision.pk).state is ExecutionState.UNKNOWN
    return decision


def consumed(decision: Decision) -> tuple[Decimal, int]:
    ledger = DailyLedger.objects.get(pk=decision.ledger_id)
    return ledger.consumed, ledger.approved_count


def request_status(decision: Decision) -> str:
    decision.request.refresh_from_db()
    return decision.request.status


def test_confirmed_paid_is_executed_keeps_its_reservation_and_is_audited(
    shop, owner, gateway_server
):
    decision = left_unknown(shop, gateway_server)
    assert decision_confirm_paid(decision_id=decision.pk, user=owner) is True
    assert request_status(decision) == "executed"
    decision.refresh_from_db()
    assert decision.executed_at is not None and decision.released_at is None
    assert consumed(decision) == (Decimal("9.00"), 1)
    audit = ExecutionConfirmation.objects.get(decision=decision)
    assert (audit.verdict, audit.user, audit.username) == ("paid", owner, owner.username)
    assert audit.confirmed_at == decision.executed_at
    # Idempotent and guarded: a second "paid", or a late "not paid", changes nothing.
    assert decision_confirm_paid(decision_id=decision.pk, user=owner) is False
    assert decision_confirm_not_paid(decision_id=decision.pk, user=owner) is False
    assert request_status(decision) == "executed"
    assert consumed(decision) == (Decimal("9.00"), 1)
    assert ExecutionConfirmation.objects.count() == 1


def test_confirmed_not_paid_is_failed_and_releases_its_reservation_once(
    shop, owner, gateway_server
):
    decision = left_unknown(shop, gateway_server)
    assert consumed(decision) == (Decimal("9.00"), 1)
    assert decision_confirm_not_paid(decision_id=decision.pk, user=owner) is True
    assert request_status(decision) == "failed"
    decision.refresh_from_db()
    assert decision.failed_at is not None and decision.released_at is not None
    assert decision.failure_reason.endswith(f"confirmed not paid by {owner.username}")
    assert consumed(decision) == (Decimal("0.00"), 0)
    assert ExecutionConfirmation.objects.get(decision=decision).verdict == "not_paid"
    assert decision_confirm_not_paid(decision_id=decision.pk, user=owner) is False
    assert decision_confirm_paid(decision_id=decision.pk, user=owner) is False
    assert consumed(decision) == (Decimal("0.00"), 0)
    assert ExecutionConfirmation.objects.count() == 1


@pytest.mark.parametrize("status", ["approved", "executed", "failed", "manual_review"])
def test_only_a_request_awaiting_confirmation_can_be_confirmed(shop, owner, status):
    decision = make_decision(request=make_request(shop=shop, amount="9.00"))
    decision.request.status = status
    decision.request.save(update_fields=["status"])
    assert decision_confirm_not_paid(decision_id=decision.pk, user=owner) is False
    assert decision_confirm_paid(decision_id=decision.pk, user=owner) is False
    assert request_status(decision) == status
    decision.refresh_from_db()
    assert (decision.executed_at, decision.failed_at, decision.released_at) == (None, None, None)
    assert consumed(decision) == (Decimal("9.00"), 1)
    assert not ExecutionConfirmation.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_two_people_confirming_at_once_settle_it_once(gateway_server):
    from tests.factories import make_shop

    shop = make_shop()
    decision = left_unknown(shop, gateway_server)
    users = [make_membership(shop=shop).user for _ in range(2)]
    results: list[bool] = []
    barrier = threading.Barrier(2)

    def confirm(user, paid: bool) -> None:
        try:
            barrier.wait(5)
            confirm_ = decision_confirm_paid if paid else decision_confirm_not_paid
            results.append(confirm_(decision_id=decision.pk, user=user))
        finally:
            connection.close()

    threads = [
        threading.Thread(target=confirm, args=(users[0], False)),
        threading.Thread(target=confirm, args=(users[1], False)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert sorted(results) == [False, True]
    assert ExecutionConfirmation.objects.count() == 1
    assert consumed(decision) == (Decimal("0.00"), 0)  # released once, not twice
