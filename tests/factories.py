"""Plain factory functions for tests: explicit, keyword-only, no magic."""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.utils import timezone

from strategies.models import (
    AfterSaleRequest,
    BacktestRun,
    Decision,
    Membership,
    Order,
    OrderItem,
    Product,
    Shop,
    Strategy,
)

_seq = itertools.count(1)


def make_shop(*, code: str | None = None, name: str = "Shop", **fields: Any) -> Shop:
    code = code or f"shop-{next(_seq)}"
    # As long as API.md's shortest (32 characters), and distinct per shop.
    fields.setdefault("api_secret", f"secret-{code}-".ljust(32, "x"))
    return Shop.objects.create(code=code, name=name, **fields)


def make_membership(*, shop: Shop, username: str | None = None, role: str = "owner") -> Membership:
    user = get_user_model().objects.create_user(
        username=username or f"user-{next(_seq)}", password="pw-for-tests-1", is_staff=True
    )
    return Membership.objects.create(user=user, shop=shop, role=role)


def make_product(*, shop: Shop, product_id: str | None = None, title: str = "Product") -> Product:
    return Product.objects.create(shop=shop, product_id=product_id or f"P{next(_seq)}", title=title)


def make_strategy(*, shop: Shop, scenario: str = "post_shipment_refund", **fields: Any) -> Strategy:
    """A strategy stored directly (tests of the create service use the service itself)."""
    fields.setdefault("name", f"Strategy {next(_seq)}")
    if "position" not in fields:
        last = Strategy.objects.filter(shop=shop, scenario=scenario).order_by("-position").first()
        fields["position"] = (last.position if last else 0) + 1
    return Strategy.objects.create(shop=shop, scenario=scenario, **fields)


def make_order(
    *,
    shop: Shop,
    order_id: str | None = None,
    status: str = "shipped",
    paid_at: dt.datetime | None = None,
    shipped_at: dt.datetime | None = None,
    received_at: dt.datetime | None = None,
    tags: list[str] | None = None,
    items: list[tuple[str, int, str]] | None = None,
) -> Order:
    now = timezone.now()
    order = Order.objects.create(
        shop=shop,
        order_id=order_id or f"OD{next(_seq):012d}",
        status=status,
        paid_at=paid_at or now - dt.timedelta(days=2),
        shipped_at=shipped_at
        or (now - dt.timedelta(days=1) if status != "pending_shipment" else None),
        received_at=received_at,
        tags=tags or [],
    )
    for product_id, quantity, price in items or [("P1001", 1, "100.00")]:
        OrderItem.objects.create(
            order=order, product_id=product_id, quantity=quantity, price=Decimal(price)
        )
    return order


def make_request(
    *,
    shop: Shop,
    order: Order | None = None,
    aftersale_id: str | None = None,
    amount: str = "9.90",
    type: str = "refund_only",
    reason: str = "no_longer_needed",
    buyer_id: str = "B1",
    applied_at: dt.datetime | None = None,
    risk_flag: bool = False,
) -> AfterSaleRequest:
    """A stored request in state `received`, as intake leaves it (payload kept minimal)."""
    order = order or make_order(shop=shop)
    aftersale_id = aftersale_id or f"AS{next(_seq):014d}"
    return AfterSaleRequest.objects.create(
        shop=shop,
        aftersale_id=aftersale_id,
        order=order,
        buyer_id=buyer_id,
        type=type,
        reason=reason,
        amount=Decimal(amount),
        applied_at=applied_at or timezone.now(),
        risk_flag=risk_flag,
        payload={"aftersale_id": aftersale_id},
        payload_digest="0" * 64,
    )


def make_decision(
    *,
    request: AfterSaleRequest,
    strategy: Strategy | None = None,
    outcome: str = "approved",
    reserve: bool = True,
    decided_at: dt.datetime | None = None,
) -> Decision:
    """A decision as the decision service records it, bypassing the matcher: an approval
    reserves its amount on today's ledger of ``strategy`` and moves the request to `approved`
    (or `manual_review`)."""
    from strategies.pipeline.ledger import ledger_for_day, ledger_reserve
    from strategies.selectors import shop_today

    decided_at = decided_at or timezone.now()
    approved = outcome == "approved"
    ledger = None
    if approved:
        strategy = strategy or make_strategy(shop=request.shop, status="active")
        if reserve:
            ledger = ledger_for_day(
                strategy=strategy, day=shop_today(shop=request.shop, now=decided_at)
            )
            assert (
                ledger_reserve(
                    ledger_id=ledger.pk,
                    amount=Decimal(str(request.amount)),
                    cap=Decimal(str(strategy.daily_cap)),
                )
                is not None
            )
    decision = Decision.objects.create(
        request=request,
        shop=request.shop,
        aftersale_id=request.aftersale_id,
        order_id=request.order.order_id,
        reason=request.reason,
        outcome=outcome,
        scenario=strategy.scenario if approved and strategy else "",
        strategy=strategy if approved else None,
        strategy_name=strategy.name if approved and strategy else "",
        action="approve_refund" if approved else "",
        amount=request.amount,
        buyer_id=request.buyer_id,
        ledger=ledger,
        decided_at=decided_at,
    )
    AfterSaleRequest.objects.filter(pk=request.pk).update(
        status="approved" if approved else "manual_review"
    )
    request.refresh_from_db()
    return decision


def make_ledger(
    *,
    strategy: Strategy,
    day: dt.date | None = None,
    consumed: str = "0.00",
    approved_count: int = 0,
) -> Any:
    """A ledger row of ``strategy`` (today in its shop's zone unless ``day`` is given)."""
    from strategies.models import DailyLedger
    from strategies.selectors import shop_today

    return DailyLedger.objects.create(
        shop=strategy.shop,
        strategy=strategy,
        day=day or shop_today(shop=strategy.shop),
        consumed=Decimal(consumed),
        approved_count=approved_count,
    )


def make_log_decision(
    *,
    shop: Shop,
    request: AfterSaleRequest | None = None,
    outcome: str = "approved",
    strategy: Strategy | None = None,
    scenario: str | None = None,
    amount: str | None = None,
    reason: str | None = None,
    decided_at: dt.datetime | None = None,
    explanations: list[dict] | None = None,
    request_status: str | None = None,
    save: bool = True,
    **request_fields: Any,
) -> Decision:
    """A decision-log row stored directly, for the monitor's tests: no matcher, no ledger
    reservation (unlike ``make_decision``), any ``decided_at`` and explanations.

    ``save=False`` returns an unsaved instance (its request is saved) for ``bulk_create``.
    """
    if request is None:
        if reason is not None:
            request_fields["reason"] = reason
        if amount is not None:
            request_fields["amount"] = amount
        request = make_request(shop=shop, **request_fields)
    if request_status or outcome:
        status = request_status or ("executed" if outcome == "approved" else "manual_review")
        AfterSaleRequest.objects.filter(pk=request.pk).update(status=status)
        request.status = status
    approved = outcome == "approved"
    decision = Decision(
        request=request,
        shop=shop,
        aftersale_id=request.aftersale_id,
        order_id=request.order.order_id,
        reason=request.reason,
        outcome=outcome,
        scenario=(scenario or (strategy.scenario if strategy else "")) if approved else "",
        strategy=strategy if approved else None,
        strategy_name=strategy.name if (strategy and approved) else "",
        action=("approve_refund" if approved else ""),
        amount=request.amount,
        explanations=explanations or [],
        buyer_id=request.buyer_id,
        decided_at=decided_at or timezone.now(),
    )
    if save:
        decision.save()
    return decision


def make_finished_backtest(
    *,
    shop: Shop,
    strategy: Strategy,
    hits: dict[str, Any] | None = None,
    kind: str = "edit",
    candidate_count: int = 1,
) -> BacktestRun:
    """A 30-day November backtest that is done, crediting ``strategy`` with ``hits``."""
    return BacktestRun.objects.create(
        shop=shop,
        strategy=strategy,
        kind=kind,
        title="tried",
        first_day=dt.date(2026, 11, 1),
        last_day=dt.date(2026, 11, 30),
        created_at=dt.datetime(2026, 12, 1, tzinfo=dt.UTC),
        status="done",
        report={
            "days": [{}] * 30,
            "candidate": {"count": candidate_count, "amount": "1.00"},
            "strategies": [
                {"id": strategy.pk, "hits": hits or {"count": 1204, "amount": "8310.50"}}
            ],
        },
    )
