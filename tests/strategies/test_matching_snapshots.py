"""Snapshots of stored rows for the matcher: faithful, and free of queries once prefetched."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db.models import Prefetch

from strategies.matching import evaluate
from strategies.models import AfterSaleRequest, Product, Strategy
from tests.factories import make_order, make_product, make_request, make_strategy
from tests.strategies.orm_oracle import snapshot_request, snapshot_strategy

APPLIED = dt.datetime(2026, 11, 22, 10, 15, tzinfo=dt.UTC)


@pytest.fixture
def stored(shop):
    order = make_order(
        shop=shop,
        status="received",
        paid_at=APPLIED - dt.timedelta(days=3),
        shipped_at=APPLIED - dt.timedelta(days=2),
        received_at=APPLIED - dt.timedelta(days=1),
        tags=["refund_no_return"],
        items=[("P1", 1, "5.00"), ("P2", 2, "10.00")],
    )
    make_request(
        shop=shop,
        order=order,
        amount="12.50",
        type="return_refund",
        reason="quality_issue",
        buyer_id="B9",
        applied_at=APPLIED,
        risk_flag=True,
    )
    for position in (1, 2, 3):
        strategy = make_strategy(
            shop=shop,
            status="active",
            window_start=dt.time(22),
            window_end=dt.time(8),
            received_max_days=3,
            per_request_cap=Decimal("20.00"),
            reasons=["quality_issue"],
            max_per_buyer_30d=2,
            position=position,
        )
        for product_id in ("P1", "P2", f"X{position}"):
            product = make_product(shop=shop, product_id=f"{product_id}-{position}")
            strategy.products.add(product)
    return order


@pytest.mark.django_db
def test_it_snapshots_a_request_with_its_order_and_items_without_queries(
    stored, django_assert_num_queries
):
    with django_assert_num_queries(2):  # the request with its order, then the items
        request = (
            AfterSaleRequest.objects.select_related("order")
            .prefetch_related("order__items")
            .get(order=stored)
        )
    with django_assert_num_queries(0):
        snapshot = snapshot_request(request)

    assert snapshot.type == "return_refund"
    assert snapshot.reason == "quality_issue"
    assert snapshot.amount == Decimal("12.50")
    assert snapshot.applied_at == APPLIED
    assert snapshot.risk_flag is True
    assert snapshot.buyer_id == "B9"
    assert snapshot.order.status == "received"
    assert snapshot.order.paid_at == APPLIED - dt.timedelta(days=3)
    assert snapshot.order.shipped_at == APPLIED - dt.timedelta(days=2)
    assert snapshot.order.received_at == APPLIED - dt.timedelta(days=1)
    assert snapshot.order.tags == frozenset({"refund_no_return"})
    assert snapshot.order.product_ids == frozenset({"P1", "P2"})


@pytest.mark.django_db
def test_it_snapshots_strategies_with_their_products_without_queries(
    shop, stored, django_assert_num_queries
):
    with django_assert_num_queries(2):  # the strategies, then all their products at once
        strategies = list(
            Strategy.objects.filter(shop=shop)
            .prefetch_related(Prefetch("products", queryset=Product.objects.only("product_id")))
            .order_by("position")
        )
    with django_assert_num_queries(0):
        snapshots = [snapshot_strategy(s) for s in strategies]

    first = snapshots[0]
    assert (first.id, first.name, first.scenario, first.status, first.position) == (
        strategies[0].pk,
        strategies[0].name,
        "post_shipment_refund",
        "active",
        1,
    )
    assert first.product_ids == frozenset({"P1-1", "P2-1", "X1-1"})
    assert (first.window_start, first.window_end) == (dt.time(22), dt.time(8))
    assert (first.covers_shipped, first.shipped_min_days, first.shipped_max_days) == (
        True,
        None,
        None,
    )
    assert (first.covers_received, first.received_min_days, first.received_max_days) == (
        True,
        None,
        3,
    )
    assert first.daily_cap == Decimal("50000.00")
    assert first.per_request_cap == Decimal("20.00")
    assert first.max_hours_since_payment is None
    assert first.reasons == frozenset({"quality_issue"})
    assert first.risk_control is True
    assert first.max_per_buyer_30d == 2
    assert (first.valid_from, first.valid_until) == (None, None)


@pytest.mark.django_db
def test_stored_rows_snapshotted_are_evaluated_like_built_ones(shop):
    order = make_order(shop=shop, status="shipped", items=[("P1", 1, "30.00")])
    request = make_request(shop=shop, order=order, amount="9.90")
    make_strategy(shop=shop, status="active", per_request_cap=Decimal("5.00"), position=1)
    taker = make_strategy(shop=shop, status="active", position=2)

    request = (
        AfterSaleRequest.objects.select_related("order")
        .prefetch_related("order__items")
        .get(pk=request.pk)
    )
    strategies = Strategy.objects.filter(shop=shop).prefetch_related("products")
    evaluation = evaluate(
        snapshot_request(request),
        [snapshot_strategy(s) for s in strategies],
        zone=shop.zone,
        consumed_today={},
        buyer_approvals_30d=0,
    )
    assert evaluation.hit is not None and evaluation.hit.id == taker.pk
    assert [e.code for e in evaluation.explanations] == ["over_per_request_cap"]


def test_the_snapshot_holds_every_setting_the_matcher_reads():
    # The one list of settings is STRATEGY_SETTING_GROUPS: the matcher's snapshot holds all of
    # them but the ones it never reads (text for people, the template that made it), plus the
    # strategy's identity and place.
    import dataclasses

    from strategies.matching import SNAPSHOT_EXTRAS, StrategySnapshot
    from strategies.models import STRATEGY_SETTINGS

    snapshot = {f.name for f in dataclasses.fields(StrategySnapshot)}
    identity = {"id", "scenario", "position"}
    read = set(STRATEGY_SETTINGS) - {"remark", "products"} | {"product_ids"}
    assert snapshot - identity - (SNAPSHOT_EXTRAS - {"product_ids"}) == read
