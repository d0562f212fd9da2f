"""Reads for the strategy monitor and the consumption dashboard (HackSoft "selectors").

Every function takes the shop explicitly; the callers (admin, views) resolve it with
``strategies.admin.tenancy`` first. "A day" is always the shop's local calendar day (``Shop.zone``).
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db.models import Count, QuerySet, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from strategies.matching import explanation_message
from strategies.models import (
    SCENARIO_ORDER,
    DailyLedger,
    Decision,
    Outcome,
    Review,
    ReviewAction,
    ReviewResult,
    Scenario,
    Shop,
    Strategy,
    StrategyStatus,
)
from strategies.selectors import (
    Consumption,
    TrialFigure,
    shop_today,
    strategies_for_shop,
    strategy_consumption_today,
    trial_figures,
)

DASHBOARD_DAYS = 30


def local_day_bounds(
    *, zone: dt.tzinfo, first: dt.date | None, last: dt.date | None
) -> tuple[dt.datetime | None, dt.datetime | None]:
    """[start of ``first``, start of the day after ``last``) in ``zone``, as aware datetimes.

    Built from local midnights, so a 23- or 25-hour day (DST) is covered exactly. Raises
    ``ValueError`` for a day whose bounds a datetime cannot hold (9999-12-31, 0001-01-01 east of
    UTC...).
    """
    try:
        start = dt.datetime.combine(first, dt.time.min, tzinfo=zone) if first else None
        end = (
            dt.datetime.combine(last + dt.timedelta(days=1), dt.time.min, tzinfo=zone)
            if last
            else None
        )
        # The database compares in UTC: a bound that cannot be converted is out of range too.
        for bound in (start, end):
            if bound is not None:
                bound.astimezone(dt.UTC)
    except OverflowError as exc:
        raise ValueError(f"date out of range: {exc}") from exc
    return start, end


def decisions_in_local_days(
    queryset: QuerySet, *, zone: dt.tzinfo, first: dt.date | None, last: dt.date | None
) -> QuerySet:
    """Decisions decided on the shop-local days ``first``..``last`` (either end open)."""
    start, end = local_day_bounds(zone=zone, first=first, last=last)
    if start is not None:
        queryset = queryset.filter(decided_at__gte=start)
    if end is not None:
        queryset = queryset.filter(decided_at__lt=end)
    return queryset


def default_zone() -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(timezone.get_default_timezone_name())


@dataclass(frozen=True)
class StrategyConsumption:
    strategy: Strategy
    consumption: Consumption
    # A trial strategy's "would approve" over 1, 7 and 30 days (None for the others).
    trial: list[TrialFigure] | None = None

    @property
    def folded(self) -> bool:
        """Inactive: listed apart, folded away."""
        return self.strategy.status == StrategyStatus.INACTIVE


def in_tab_order(strategies: Iterable[Strategy]) -> list[Strategy]:
    """As the strategy list shows them: by scenario tab, then priority (then id)."""
    rank = {str(s): i for i, s in enumerate(SCENARIO_ORDER)}
    return sorted(strategies, key=lambda s: (rank.get(s.scenario, len(rank)), s.position, s.id))


def consumption_today(*, shop: Shop, now: dt.datetime | None = None) -> list[StrategyConsumption]:
    """The (shop-local) day of ``now``'s consumption of every strategy of the shop, in tab and
    priority order, with the trial strategies' figures: three queries."""
    strategies = in_tab_order(strategies_for_shop(shop=shop))
    consumption = strategy_consumption_today(strategies=strategies, now=now)
    trials = trial_figures(strategies=strategies, now=now)
    return [
        StrategyConsumption(strategy=s, consumption=consumption[s.id], trial=trials.get(s.id))
        for s in strategies
    ]


def local_noon(*, shop: Shop, day: dt.date) -> dt.datetime:
    """A moment inside the shop-local ``day``: what "today" is measured from for a past day."""
    return dt.datetime.combine(day, dt.time(12), tzinfo=shop.zone)


@dataclass(frozen=True)
class RefundedToday:
    """What the shop refunded today (shop-local): by its strategies (their ledgers) and by
    people in the review queue (counted against no strategy's cap)."""

    by_strategies: Decimal
    by_people: Decimal
    people_count: int

    @property
    def total(self) -> Decimal:
        return self.by_strategies + self.by_people


def refunded_today(
    *, shop: Shop, rows: list[StrategyConsumption], now: dt.datetime | None = None
) -> RefundedToday:
    """Today's refunds of ``shop``: the strategies' from ``rows`` (already loaded), the manual
    approvals carried out today in one query (index review_shop_done)."""
    today = shop_today(shop=shop, now=now)
    start, end = local_day_bounds(zone=shop.zone, first=today, last=today)
    manual = Review.objects.filter(
        shop=shop,
        action=ReviewAction.APPROVE,
        result=ReviewResult.DONE,
        finished_at__gte=start,
        finished_at__lt=end,
    ).aggregate(amount=Sum("amount"), count=Count("id"))
    return RefundedToday(
        by_strategies=sum((r.consumption.consumed for r in rows), Decimal("0.00")),
        by_people=manual["amount"] or Decimal("0.00"),
        people_count=manual["count"] or 0,
    )


@dataclass
class DailySeries:
    """Per-day figures over the last ``len(days)`` shop-local days, oldest first."""

    days: list[dt.date]
    # strategy id -> (name, hits per day, amount per day)
    hits: dict[int, list[int]] = field(default_factory=dict)
    amounts: dict[int, list[Decimal]] = field(default_factory=dict)
    names: dict[int, str] = field(default_factory=dict)
    statuses: dict[int, str] = field(default_factory=dict)
    manual_reviews: list[int] = field(default_factory=list)


def last_days(
    *, shop: Shop, days: int = DASHBOARD_DAYS, now: dt.datetime | None = None
) -> list[dt.date]:
    today = shop_today(shop=shop, now=now)
    return [today - dt.timedelta(days=offset) for offset in range(days - 1, -1, -1)]


def consumption_series(
    *, shop: Shop, days: int = DASHBOARD_DAYS, now: dt.datetime | None = None
) -> DailySeries:
    """Hits and amount per day per strategy (DailyLedger) and manual reviews per day (Decision)
    over the last ``days`` shop-local days including today: three queries."""
    day_list = last_days(shop=shop, days=days, now=now)
    index = {day: i for i, day in enumerate(day_list)}
    series = DailySeries(days=day_list)
    for strategy in in_tab_order(strategies_for_shop(shop=shop)):
        series.names[strategy.id] = f"#{strategy.position} {strategy.name}"
        series.statuses[strategy.id] = strategy.status
        series.hits[strategy.id] = [0] * days
        series.amounts[strategy.id] = [Decimal("0.00")] * days
    ledgers = DailyLedger.objects.filter(
        shop=shop, day__gte=day_list[0], day__lte=day_list[-1]
    ).values_list("strategy_id", "day", "approved_count", "consumed")
    for strategy_id, day, count, consumed in ledgers:
        if strategy_id not in series.names:  # pragma: no cover - a strategy of another shop
            continue
        series.hits[strategy_id][index[day]] = count
        series.amounts[strategy_id][index[day]] = consumed
    series.manual_reviews = [0] * days
    for day, count in manual_reviews_per_day(shop=shop, first=day_list[0], last=day_list[-1]):
        if day in index:
            series.manual_reviews[index[day]] = count
    return series


def manual_reviews_per_day(
    *, shop: Shop, first: dt.date, last: dt.date
) -> list[tuple[dt.date, int]]:
    """Manual-review decisions per shop-local day of ``decided_at`` (index shop, outcome, time)."""
    zone = shop.zone
    queryset = decisions_in_local_days(
        Decision.objects.filter(shop=shop, outcome=Outcome.MANUAL_REVIEW),
        zone=zone,
        first=first,
        last=last,
    )
    rows = (
        queryset.annotate(day=TruncDate("decided_at", tzinfo=zone))
        .values("day")
        .annotate(n=Count("id"))
        .order_by("day")
        .values_list("day", "n")
    )
    return list(rows)


def explanation_row(entry: Any) -> tuple[str, str, str, str]:
    """(scenario label, strategy name, code, message) of one entry of API.md's shape."""
    if not isinstance(entry, dict):
        return ("", "", "", str(entry))
    scenario = str(entry.get("scenario") or "")
    labels = dict(Scenario.choices)
    strategy = entry.get("strategy")
    if isinstance(strategy, dict):
        name = str(strategy.get("name") or strategy.get("id") or "")
    else:
        name = str(entry.get("strategy_name") or strategy or "")
    code = str(entry.get("code") or "")
    return (str(labels.get(scenario, scenario)), name, code, _message_for_viewer(entry, code))


def _message_for_viewer(entry: dict, code: str) -> str:
    """The message in the viewer's language, re-rendered from its params; the stored text
    (written in the language active at decision time) when it cannot be."""
    params = entry.get("params")
    if isinstance(params, dict):
        try:
            return explanation_message(code, params)
        except (KeyError, TypeError, ValueError):
            pass
    return str(entry.get("message") or "")
