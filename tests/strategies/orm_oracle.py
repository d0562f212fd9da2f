"""Plain, immutable snapshots of stored rows for the pure matcher (``strategies.matching``).

No queries of their own when the caller loaded what they read:
- ``snapshot_request`` reads ``request.order`` and ``request.order.items.all()``: load them with
  ``select_related("order").prefetch_related("order__items")``.
- ``snapshot_strategy`` reads ``strategy.products.all()``: load them with
  ``prefetch_related("products")`` (``Product.objects.only("product_id")`` is enough).
"""

from __future__ import annotations

from decimal import Decimal

from strategies.matching import OrderSnapshot, RequestSnapshot, StrategySnapshot
from strategies.models import AfterSaleRequest, Order, Strategy


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
