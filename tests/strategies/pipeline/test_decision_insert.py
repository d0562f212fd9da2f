"""The decision's insert and its request's new status in one statement (issue 16): the row is
the one the ORM would insert, field for field, and the request moves with it or not at all."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from strategies.models import AfterSaleRequest, Decision
from strategies.pipeline.rows import decision_insert
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
