"""Builders for the pure matcher's tests: snapshots made directly, no database."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from strategies.matching import (
    Evaluation,
    OrderSnapshot,
    RequestSnapshot,
    StrategySnapshot,
    evaluate,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
LOS_ANGELES = ZoneInfo("America/Los_Angeles")


def at(text: str, zone: ZoneInfo = SHANGHAI) -> dt.datetime:
    """An aware datetime from a local 'YYYY-MM-DD HH:MM[:SS]' in ``zone``."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=zone)


def order(**fields: Any) -> OrderSnapshot:
    defaults: dict[str, Any] = {
        "status": "shipped",
        "paid_at": at("2026-11-20 09:00"),
        "shipped_at": at("2026-11-21 08:00"),
        "received_at": None,
        "tags": frozenset(),
        "product_ids": frozenset({"P1001"}),
    }
    return OrderSnapshot(**{**defaults, **fields})


def request(*, order_fields: Mapping[str, Any] | None = None, **fields: Any) -> RequestSnapshot:
    """A refund_only request of 9.90 on a shipped order, applied 2026-11-22 10:15 Shanghai."""
    defaults: dict[str, Any] = {
        "type": "refund_only",
        "reason": "no_longer_needed",
        "amount": Decimal("9.90"),
        "applied_at": at("2026-11-22 10:15"),
        "risk_flag": False,
        "buyer_id": "B7781",
        "order": order(**(order_fields or {})),
    }
    return RequestSnapshot(**{**defaults, **fields})


def strategy(id: int = 1, **fields: Any) -> StrategySnapshot:
    """An active post_shipment_refund strategy with no restriction but the default daily cap."""
    defaults: dict[str, Any] = {
        "name": f"Strategy {id}",
        "scenario": "post_shipment_refund",
        "status": "active",
        "position": id,
    }
    return StrategySnapshot(id=id, **{**defaults, **fields})


def run(
    req: RequestSnapshot,
    *strategies: StrategySnapshot,
    zone: ZoneInfo = SHANGHAI,
    consumed: Mapping[int, Decimal] | None = None,
    buyer_approvals: int = 0,
    order_refunded: Decimal = Decimal("0.00"),
) -> Evaluation:
    return evaluate(
        req,
        strategies,
        zone=zone,
        consumed_today=consumed or {},
        buyer_approvals_30d=buyer_approvals,
        order_refunded=order_refunded,
    )


def codes(evaluation: Evaluation) -> list[tuple[int, str]]:
    return [(e.strategy_id, e.code) for e in evaluation.explanations]


def replace(snapshot: Any, **changes: Any) -> Any:
    return dataclasses.replace(snapshot, **changes)
