"""The matching service: a pure function from a request snapshot and the shop's ordered
strategies to a decision with its explanations. No database, no clock: everything it needs is
passed in, so it can be read and tested on its own.

The decision service (``strategies.services.decisions``) wraps it: it loads the snapshots, passes
today's consumption and the buyer's recent approvals, then tries to reserve the amount on the
hit's ledger row. If that conditional UPDATE loses a race, it calls ``evaluate`` again with the
strategy marked full, so the next strategy by priority may take the request.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class OrderSnapshot:
    status: str
    paid_at: dt.datetime
    shipped_at: dt.datetime | None
    received_at: dt.datetime | None
    tags: frozenset[str]
    product_ids: frozenset[str]


@dataclass(frozen=True)
class RequestSnapshot:
    type: str
    reason: str
    amount: Decimal
    applied_at: dt.datetime
    risk_flag: bool
    buyer_id: str
    order: OrderSnapshot


@dataclass(frozen=True)
class StrategySnapshot:
    id: int
    name: str
    scenario: str
    status: str
    position: int
    valid_from: dt.datetime | None = None
    valid_until: dt.datetime | None = None
    window_start: dt.time | None = None
    window_end: dt.time | None = None
    product_ids: frozenset[str] = frozenset()
    covers_shipped: bool = True
    shipped_min_days: int | None = None
    shipped_max_days: int | None = None
    covers_received: bool = True
    received_min_days: int | None = None
    received_max_days: int | None = None
    daily_cap: Decimal = Decimal("50000.00")
    per_request_cap: Decimal | None = None
    max_hours_since_payment: int | None = None
    reasons: frozenset[str] = frozenset()
    risk_control: bool = True
    max_per_buyer_30d: int | None = None


@dataclass(frozen=True)
class Explanation:
    scenario: str
    strategy_id: int
    strategy_name: str
    code: str
    message: str

    def as_json(self) -> dict:
        """The shape API.md gives for one entry of ``explanations``."""
        return {
            "scenario": self.scenario,
            "strategy": {"id": self.strategy_id, "name": self.strategy_name},
            "code": self.code,
            "message": self.message,
        }


@dataclass(frozen=True)
class Evaluation:
    """The outcome: ``hit`` is the strategy that approves (None: manual review)."""

    hit: StrategySnapshot | None
    scenario: str
    action: str
    explanations: tuple[Explanation, ...] = field(default_factory=tuple)


def evaluate(
    request: RequestSnapshot,
    strategies: Iterable[StrategySnapshot],
    *,
    zone: ZoneInfo,
    consumed_today: Mapping[int, Decimal],
    buyer_approvals_30d: int,
) -> Evaluation:
    raise NotImplementedError
