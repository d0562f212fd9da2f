"""Builders for the backtest's tests: requests stored through the real intake (API.md payloads,
so the order state at arrival is in the payload) and decided by the real decision service at a
chosen moment, as the live pipeline would have."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

from strategies.backtest.loaders import strategy_set
from strategies.backtest.replay import Period, Replayed, replay
from strategies.models import AfterSaleRequest, Decision, Shop
from strategies.pipeline.decide import request_decide
from strategies.platforms.generic.intake import aftersale_receive

_seq = itertools.count(1)


def payload(
    *,
    applied_at: dt.datetime,
    amount: str = "10.00",
    order_id: str | None = None,
    status: str = "shipped",
    type: str = "refund_only",
    reason: str = "no_longer_needed",
    buyer_id: str = "B1",
    tags: list[str] | None = None,
    items: list[tuple[str, int, str]] | None = None,
    paid_at: dt.datetime | None = None,
    shipped_at: dt.datetime | None = None,
    received_at: dt.datetime | None = None,
    risk_flag: bool = False,
) -> dict[str, Any]:
    """An API.md intake body: a refund_only request of 10.00 on a shipped order by default."""
    n = next(_seq)
    paid_at = paid_at or applied_at - dt.timedelta(days=2)
    if status != "pending_shipment" and shipped_at is None:
        shipped_at = applied_at - dt.timedelta(days=1)
    if status in ("received", "completed") and received_at is None:
        received_at = applied_at - dt.timedelta(hours=3)
    return {
        "aftersale_id": f"AS-BT-{n:07d}",
        "buyer_id": buyer_id,
        "type": type,
        "reason": reason,
        "amount": amount,
        "applied_at": applied_at.isoformat(),
        "risk_flag": risk_flag,
        "order": {
            "order_id": order_id or f"OD-BT-{n:07d}",
            "status": status,
            "paid_at": paid_at.isoformat(),
            "shipped_at": shipped_at.isoformat() if shipped_at else None,
            "received_at": received_at.isoformat() if received_at else None,
            "tags": tags or [],
            "items": [
                {"product_id": p, "title": p, "quantity": q, "price": price}
                for p, q, price in (items or [("P1", 1, "100.00")])
            ],
        },
    }


def post(shop: Shop, body: dict[str, Any]) -> AfterSaleRequest:
    receipt = aftersale_receive(shop=shop, payload=body)
    assert receipt.created
    return receipt.request


def post_and_decide(
    shop: Shop, body: dict[str, Any], *, now: dt.datetime | None = None
) -> Decision:
    """Stores the request and decides it live at ``now`` (its applied_at plus a second)."""
    request = post(shop, body)
    moment = now or dt.datetime.fromisoformat(body["applied_at"]) + dt.timedelta(seconds=1)
    return request_decide(request_id=request.pk, now=moment)


def replay_all(
    shop: Shop, first_day: dt.date, last_day: dt.date, strategies: list | None = None
) -> list[tuple[Replayed, dict[str, Any]]]:
    """Every replayed request of the period with what it was decided in (``moment()``)."""
    snapshots = (
        strategies if strategies is not None else [m.snapshot for m in strategy_set(shop=shop)]
    )
    period = Period(first_day, last_day, shop.zone)
    out = []
    for item in replay(shop_id=shop.pk, strategies=snapshots, period=period, chunk_size=50):
        moment = None if item.skipped else item.moment()
        out.append((item, {"moment": moment, "hit": item.hit.id if item.hit else None}))
    return out


def live_by_request(shop: Shop) -> dict[int, Decision]:
    return {d.request_id: d for d in Decision.objects.filter(shop=shop)}
