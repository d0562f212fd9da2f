"""The ORM's reading of what the decision service reads in plain SQL: the oracle that
``strategies.pipeline.rows`` is held equal to (tests/strategies/pipeline/test_rows_oracle.py),
written the obvious way, for clarity rather than speed.

``oracle_request`` and ``oracle_strategies`` return what ``request_lock_and_load`` and
``strategies_load`` return. The snapshots they build make no queries of their own when the
caller loaded what they read:
- ``snapshot_request`` reads ``request.order`` and ``request.order.items.all()``: load them with
  ``select_related("order").prefetch_related("order__items")``.
- ``snapshot_strategy`` reads ``strategy.products.all()``: load them with
  ``prefetch_related("products")`` (``Product.objects.only("product_id")`` is enough).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.db.models import Sum

from strategies.matching import OrderSnapshot, RequestSnapshot, StrategySnapshot
from strategies.models import AfterSaleRequest, DailyLedger, Decision, Order, Outcome, Strategy
from strategies.pipeline.rows import LoadedRequest, LoadedStrategy


def snapshot_order(order: Order) -> OrderSnapshot:
    return OrderSnapshot(
        status=order.status,
        paid_at=order.paid_at,
        shipped_at=order.shipped_at,
        received_at=order.received_at,
        tags=frozenset(order.tags or ()),
        product_ids=frozenset(item.product_id for item in order.items.all()),
        total=sum((item.price * item.quantity for item in order.items.all()), Decimal("0.00")),
    )


def snapshot_request(request: AfterSaleRequest) -> RequestSnapshot:
    return RequestSnapshot(
        type=request.type,
        reason=request.reason,
        amount=Decimal(request.amount),
        applied_at=request.applied_at,
        risk_flag=request.risk_flag,
        buyer_id=request.buyer_id,
        order=snapshot_order(request.order),
    )


def snapshot_strategy(strategy: Strategy) -> StrategySnapshot:
    return StrategySnapshot(
        id=strategy.pk,
        name=strategy.name,
        scenario=strategy.scenario,
        status=strategy.status,
        position=strategy.position,
        valid_from=strategy.valid_from,
        valid_until=strategy.valid_until,
        window_start=strategy.window_start,
        window_end=strategy.window_end,
        product_ids=frozenset(product.product_id for product in strategy.products.all()),
        covers_shipped=strategy.covers_shipped,
        shipped_min_days=strategy.shipped_min_days,
        shipped_max_days=strategy.shipped_max_days,
        covers_received=strategy.covers_received,
        received_min_days=strategy.received_min_days,
        received_max_days=strategy.received_max_days,
        daily_cap=Decimal(strategy.daily_cap),
        per_request_cap=(
            None if strategy.per_request_cap is None else Decimal(strategy.per_request_cap)
        ),
        max_hours_since_payment=strategy.max_hours_since_payment,
        reasons=frozenset(strategy.reasons or ()),
        risk_control=strategy.risk_control,
        max_per_buyer_30d=strategy.max_per_buyer_30d,
    )


def oracle_request(request_id: int) -> LoadedRequest:
    request = (
        AfterSaleRequest.objects.select_related("order", "shop")
        .prefetch_related("order__items")
        .get(pk=request_id)
    )
    return LoadedRequest(
        id=request.pk,
        status=request.status,
        shop_id=request.shop_id,
        shop_timezone=request.shop.timezone,
        aftersale_id=request.aftersale_id,
        order_id=request.order.order_id,
        shop_limits_buyers=Strategy.objects.filter(
            shop_id=request.shop_id, max_per_buyer_30d__isnull=False
        ).exists(),
        snapshot=snapshot_request(request),
    )


def oracle_strategies(
    *, shop_id: int, scenarios: tuple[str, ...], day: dt.date, order_id: str
) -> tuple[list[LoadedStrategy], Decimal]:
    strategies = (
        Strategy.objects.filter(shop_id=shop_id, scenario__in=scenarios)
        .prefetch_related("products")
        .order_by("scenario", "position", "id")
    )
    loaded = []
    for strategy in strategies:
        ledger = DailyLedger.objects.filter(strategy=strategy, day=day).first()
        loaded.append(
            LoadedStrategy(
                snapshot=snapshot_strategy(strategy),
                version=strategy.history.order_by("-history_id")
                .values_list("history_id", flat=True)
                .first(),
                ledger_id=ledger.pk if ledger else None,
                consumed=ledger.consumed if ledger else None,
                cap_refused=ledger is not None and ledger.cap_refused_at is not None,
            )
        )
    refunded = Decision.objects.filter(
        shop_id=shop_id, order_id=order_id, outcome=Outcome.APPROVED, released_at__isnull=True
    ).aggregate(total=Sum("amount"))["total"]
    # Read with the strategies, in one statement: nothing when no strategy is a candidate.
    return loaded, (refunded or Decimal("0.00")) if loaded else Decimal("0.00")
