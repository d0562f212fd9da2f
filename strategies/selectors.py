"""Reads over strategies and their consumption (HackSoft "selectors")."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from django.db.models import Count, QuerySet, Sum
from django.utils import timezone

from .charts import fill_percent
from .models import (
    BacktestRun,
    BacktestStatus,
    DailyLedger,
    Shop,
    Strategy,
    StrategyStatus,
    TrialHit,
)

# Above this percentage the consumption label turns red (the seeds: ">90%").
CONSUMPTION_WARNING_PERCENT = Decimal("90")


def shop_today(*, shop: Shop, now: dt.datetime | None = None) -> dt.date:
    """The shop-local calendar day of ``now``: "today" always means the shop's own day."""
    return (now or timezone.now()).astimezone(shop.zone).date()


@dataclass(frozen=True)
class Consumption:
    consumed: Decimal
    approved_count: int
    daily_cap: Decimal

    @property
    def percent(self) -> Decimal:
        if self.daily_cap <= 0:
            return Decimal("0.00")
        return (self.consumed * 100 / self.daily_cap).quantize(Decimal("0.01"), ROUND_HALF_UP)

    @property
    def shown_percent(self) -> Decimal:
        """The percentage bars and labels show: 100 at most (a cap lowered below today's use
        is full, not 199.98%)."""
        return fill_percent(self.consumed, self.daily_cap)

    @property
    def over_cap(self) -> bool:
        return self.consumed > self.daily_cap

    @property
    def is_warning(self) -> bool:
        # On the exact amounts, not the rounded percentage: 90.004% shows "90.00%" but is red.
        return self.consumed * 100 > self.daily_cap * CONSUMPTION_WARNING_PERCENT


def strategy_consumption_today(
    *, strategies: Iterable[Strategy], now: dt.datetime | None = None
) -> dict[int, Consumption]:
    """Today's consumption per strategy id, in one query whatever the number of strategies.

    Each strategy is measured on its own shop's local day (strategies of several shops may be
    listed together for a superuser).
    """
    strategies = list(strategies)
    if not strategies:
        return {}
    days = {s.id: shop_today(shop=s.shop, now=now) for s in strategies}
    rows = DailyLedger.objects.filter(
        strategy_id__in=list(days), day__in=set(days.values())
    ).values_list("strategy_id", "day", "consumed", "approved_count")
    found = {sid: (consumed, count) for sid, day, consumed, count in rows if days[sid] == day}
    result = {}
    for s in strategies:
        consumed, count = found.get(s.id, (Decimal("0.00"), 0))
        result[s.id] = Consumption(consumed=consumed, approved_count=count, daily_cap=s.daily_cap)
    return result


def strategies_for_shop(*, shop: Shop) -> QuerySet[Strategy]:
    return (
        Strategy.objects.filter(shop=shop)
        .select_related("shop")
        .order_by("scenario", "position", "id")
    )


def strategy_latest_backtests(*, strategy_ids: Iterable[int]) -> dict[int, BacktestRun]:
    """The latest finished backtest about each strategy (one query, whatever the number)."""
    ids = list(strategy_ids)
    if not ids:
        return {}
    runs = (
        BacktestRun.objects.filter(strategy_id__in=ids, status=BacktestStatus.DONE)
        .order_by("strategy_id", "-created_at", "-id")
        .distinct("strategy_id")
    )
    return {run.strategy_id: run for run in runs if run.strategy_id is not None}


def strategy_product_counts(*, strategy_ids: Iterable[int]) -> dict[int, int]:
    """How many products each strategy is restricted to (one query; absent: none)."""
    rows = (
        Strategy.products.through.objects.filter(strategy_id__in=list(strategy_ids))
        .order_by()
        .values("strategy_id")
        .annotate(n=Count("id"))
    )
    return {row["strategy_id"]: row["n"] for row in rows}


# The periods a trial strategy's results are shown over, in shop-local days including today.
TRIAL_PERIODS = (1, 7, 30)


@dataclass(frozen=True)
class TrialFigure:
    """What a trial strategy would have approved over ``days`` shop-local days."""

    days: int
    count: int
    amount: Decimal


def trial_figures(
    *, strategies: Iterable[Strategy], now: dt.datetime | None = None
) -> dict[int, list[TrialFigure]]:
    """Today's, 7 days' and 30 days' "would approve N / amount" of each trial strategy, in one
    query (the (strategy, day) index of the trial results); others are left out."""
    trials = [s for s in strategies if s.status == StrategyStatus.TRIAL]
    if not trials:
        return {}
    today = {s.id: shop_today(shop=s.shop, now=now) for s in trials}
    first = min(today.values()) - dt.timedelta(days=max(TRIAL_PERIODS) - 1)
    rows = (
        TrialHit.objects.filter(strategy_id__in=list(today), day__gte=first)
        .values("strategy_id", "day")
        .annotate(n=Count("id"), total=Sum("amount"))
        .values_list("strategy_id", "day", "n", "total")
    )
    per_day: dict[int, list[tuple[dt.date, int, Decimal]]] = {pk: [] for pk in today}
    for strategy_id, day, n, total in rows:
        per_day[strategy_id].append((day, n, total))
    result = {}
    for pk, days in per_day.items():
        figures = []
        for period in TRIAL_PERIODS:
            since = today[pk] - dt.timedelta(days=period - 1)
            inside = [(n, total) for day, n, total in days if since <= day <= today[pk]]
            figures.append(
                TrialFigure(
                    days=period,
                    count=sum(n for n, _ in inside),
                    amount=sum((t for _, t in inside), Decimal("0.00")),
                )
            )
        result[pk] = figures
    return result
