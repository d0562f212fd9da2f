"""The decision's insert and its request's new status in one statement (issue 16): the row is
the one the ORM would insert, field for field, and the request moves with it or not at all. An
approval's reservation rides in the same statement, and nothing is written when it does not fit."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from strategies.models import AfterSaleRequest, Channel, DailyLedger, Decision
from strategies.pipeline.rows import decision_insert, decision_insert_reserving
from tests.factories import make_request, make_shop, make_strategy

NOW = dt.datetime(2026, 12, 3, 6, 0, 0, 123456, tzinfo=dt.UTC)
FIELDS = [f.attname for f in Decision._meta.concrete_fields if not f.primary_key]


def unsaved(request: AfterSaleRequest, strategy) -> Decision:
    return Decision(
        request_id=request.pk,
        shop_id=request.shop_id,
        aftersale_id=request.aftersale_id,
        order_id=request.order.order_id,
        reason=request.reason,
        outcome="approved",
        scenario="post_shipment_refund",
        strategy_id=strategy.pk,
        strategy_name="名字 with 'quotes'",
        strategy_version=3,
        action="refund",
        amount=Decimal("12.30"),
        explanations=[{"code": "hit", "message": "命中", "values": [1, "2"]}],
        buyer_id=request.buyer_id,
        decided_at=NOW,
    )


@pytest.mark.django_db
def test_it_inserts_the_row_the_orm_inserts_and_moves_the_request_in_one_statement():
    shop = make_shop()
    strategy = make_strategy(shop=shop, status="active")
    first, second = make_request(shop=shop), make_request(shop=shop)

    with CaptureQueriesContext(connection) as queries:
        ours = decision_insert(unsaved(first, strategy), request_status="approved")
    assert len(queries) == 1
    theirs = unsaved(second, strategy)
    theirs.save(force_insert=True)

    assert ours.pk is not None and not ours._state.adding
    stored, expected = Decision.objects.get(pk=ours.pk), Decision.objects.get(pk=theirs.pk)
    differ = {"request_id", "aftersale_id", "order_id", "buyer_id", "idempotency_key"}
    assert {f: getattr(stored, f) for f in FIELDS if f not in differ} == {
        f: getattr(expected, f) for f in FIELDS if f not in differ
    }
    assert stored.request_id == first.pk
    assert isinstance(stored.idempotency_key, uuid.UUID)
    assert stored.idempotency_key == ours.idempotency_key
    assert stored.explanations == [{"code": "hit", "message": "命中", "values": [1, "2"]}]
    first.refresh_from_db()
    assert (first.status, first.updated_at) == ("approved", NOW)
    second.refresh_from_db()
    assert second.status == "received"  # only the decision's own request moved


@pytest.mark.django_db
def test_a_second_decision_for_the_request_fails_and_leaves_the_request_as_it_was():
    shop = make_shop()
    strategy = make_strategy(shop=shop, status="active")
    request = make_request(shop=shop)
    decision_insert(unsaved(request, strategy), request_status="manual_review")

    with pytest.raises(IntegrityError), transaction.atomic():
        decision_insert(unsaved(request, strategy), request_status="approved")

    request.refresh_from_db()
    assert request.status == "manual_review"
    assert Decision.objects.filter(request=request).count() == 1


def reserving(decision: Decision, *, claim_execution: bool = False):
    return decision_insert_reserving(
        decision,
        day=NOW.date(),
        request_status="approved",
        request_type="refund_only",
        claim_execution=claim_execution,
    )


@pytest.mark.django_db
def test_an_approval_reserves_inserts_and_moves_its_request_in_one_statement():
    shop = make_shop()
    strategy = make_strategy(shop=shop, status="active", daily_cap=Decimal("100.00"))
    first, second = make_request(shop=shop), make_request(shop=shop)

    with CaptureQueriesContext(connection) as queries:
        reserved = reserving(ours := unsaved(first, strategy))
    assert len(queries) == 1
    assert reserved is not None and reserved.execution is None
    theirs = unsaved(second, strategy)
    theirs.ledger_id = reserved.reservation.ledger_id
    theirs.save(force_insert=True)

    ledger = DailyLedger.objects.get(strategy=strategy, day=NOW.date())
    assert reserved.reservation.ledger_id == ledger.pk
    assert reserved.reservation.consumed == ledger.consumed == Decimal("12.30")
    assert ledger.approved_count == 1
    stored, expected = Decision.objects.get(pk=ours.pk), Decision.objects.get(pk=theirs.pk)
    differ = {"request_id", "aftersale_id", "order_id", "buyer_id", "idempotency_key"}
    assert {f: getattr(stored, f) for f in FIELDS if f not in differ} == {
        f: getattr(expected, f) for f in FIELDS if f not in differ
    }
    assert stored.ledger_id == ours.ledger_id == ledger.pk
    first.refresh_from_db()
    assert (first.status, first.updated_at) == ("approved", NOW)

    # The next one adds to the same row.
    again = reserving(unsaved(make_request(shop=shop), strategy))
    assert again is not None
    assert again.reservation == type(again.reservation)(ledger.pk, Decimal("24.60"))


@pytest.mark.django_db
@pytest.mark.parametrize("claim_execution", [False, True])
def test_an_approval_that_does_not_fit_the_cap_writes_nothing(claim_execution):
    shop = make_shop()
    strategy = make_strategy(shop=shop, status="active", daily_cap=Decimal("20.00"))
    assert reserving(unsaved(make_request(shop=shop), strategy)) is not None  # 12.30 of 20.00
    request = make_request(shop=shop)

    assert reserving(unsaved(request, strategy), claim_execution=claim_execution) is None

    request.refresh_from_db()
    assert request.status == "received"
    assert not Decision.objects.filter(request=request).exists()
    ledger = DailyLedger.objects.get(strategy=strategy)
    assert (ledger.consumed, ledger.approved_count) == (Decimal("12.30"), 1)


@pytest.mark.django_db
@pytest.mark.parametrize("connected", [False, True])
def test_an_approval_inserted_with_its_attempt_claimed_returns_what_the_claim_would(connected):
    shop = make_shop()
    strategy = make_strategy(shop=shop, status="active")
    channel = Channel.objects.create(shop=shop, platform="kuaishou") if connected else None
    request = make_request(shop=shop)
    decision = unsaved(request, strategy)
    decision.execution_attempts = 1
    decision.execution_sent_at = NOW
    decision.execution_lease_until = NOW + dt.timedelta(seconds=12)

    reserved = reserving(decision, claim_execution=True)

    assert reserved is not None and reserved.execution is not None
    claimed = reserved.execution
    assert claimed.channel_id == (channel.pk if channel else None)
    assert (claimed.request_id, claimed.request_type) == (request.pk, "refund_only")
    assert (claimed.amount, claimed.action) == (Decimal("12.30"), "refund")
    assert claimed.after_ambiguous is False
    stored = Decision.objects.get(pk=decision.pk)
    assert stored.idempotency_key == claimed.idempotency_key
    assert (stored.execution_attempts, stored.execution_sent_at) == (1, NOW)
    assert stored.execution_lease_until == NOW + dt.timedelta(seconds=12)
