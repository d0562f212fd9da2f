"""The report of a backtest: what happened (the baseline: the live decisions) next to what the
replayed set would have done (the candidate), built one replayed request at a time and saved as
JSON on the run (money as strings, two decimals).

- totals, before and after: requests and amount auto-approved;
- the requests whose outcome changes, by what became of them in reality (the request's status:
  executed by ATOM, left for manual review, failed...), and the headline: what the candidate
  would have refunded that went to a person instead;
- per strategy: hits and amount (and the baseline's), requests shadowed by a higher priority
  (it would also have taken them), requests turned away by its cap, per day the time its cap
  ran out and the 95% / 100% alerts; for a trial strategy, what it would have approved;
  misses by explanation code and the share of its scenario's requests (the performance view);
- per day: the baseline's and the candidate's approvals (the charts).

The changed requests themselves are handed to ``on_change`` (the service stores them, with the
state each was replayed in, for the per-request trace and the CSV).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

from strategies.backtest.loaders import Member
from strategies.backtest.replay import REACHED, WARNING, Period, Replayed
from strategies.matching import DAILY_CAP_REACHED, TRIAL_WOULD_HIT
from strategies.models import BacktestChangeKind, RequestStatus

ZERO = Decimal("0.00")
# What the candidate would have refunded that a person had to handle: the headline. (No
# refusal state exists yet; a request left for manual review is a person's work.)
HEADLINE_REALITY = str(RequestStatus.MANUAL_REVIEW)
REPORT_VERSION = 1


def money(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.01")))


class _Tally:
    """A count and an amount."""

    __slots__ = ("amount", "count")

    def __init__(self) -> None:
        self.count = 0
        self.amount = ZERO

    def add(self, amount: Decimal) -> None:
        self.count += 1
        self.amount += amount

    def as_json(self) -> dict[str, Any]:
        return {"count": self.count, "amount": money(self.amount)}


class _StrategyDay:
    __slots__ = ("baseline", "cap_out_at", "cap_turned_away", "hits", "misses", "warned", "would")

    def __init__(self) -> None:
        self.baseline = _Tally()  # what the strategy approved live that day
        self.hits = _Tally()
        self.would = _Tally()
        self.cap_turned_away = 0
        self.cap_out_at: str | None = None
        self.warned = False
        self.misses: dict[str, int] = {}


def classify(item: Replayed) -> str | None:
    """The change a replayed request is, or None when it was decided as live."""
    if not item.changed:
        return None
    if item.hit is None:
        return str(BacktestChangeKind.LOST)
    if item.baseline_approved:
        return str(BacktestChangeKind.MOVED)
    return str(BacktestChangeKind.GAINED)


class ReportBuilder:
    """``add`` every replayed request, then ``as_json``."""

    def __init__(
        self,
        *,
        members: Sequence[Member],
        period: Period,
        on_change: Callable[[Replayed, str], None] | None = None,
    ) -> None:
        self.members = list(members)
        self.period = period
        self.zone = period.zone
        self.on_change = on_change
        self.requests = 0
        self.skipped = 0
        self.from_order_row = 0
        self.baseline = _Tally()
        self.candidate = _Tally()
        self.changes: dict[str, _Tally] = {k: _Tally() for k in BacktestChangeKind.values}
        self.by_reality: dict[str, dict[str, _Tally]] = {
            k: defaultdict(_Tally) for k in BacktestChangeKind.values
        }
        self.days: dict[dt.date, dict[str, _Tally]] = defaultdict(
            lambda: {"baseline": _Tally(), "candidate": _Tally()}
        )
        self.day_requests: Counter[dt.date] = Counter()
        self.scenario_requests: Counter[tuple[dt.date, str]] = Counter()
        self.baseline_hits: dict[int, _Tally] = defaultdict(_Tally)
        self.shadowed: Counter[int] = Counter()
        # Per day, per strategy: everything per strategy is summed from these at the end.
        self.by_day: dict[dt.date, dict[int, _StrategyDay]] = {}
        self._day_of: dt.date | None = None
        self._today: dict[int, _StrategyDay] = {}

    def _strategy_day(self, sid: int) -> _StrategyDay:
        found = self._today.get(sid)
        if found is None:
            found = self._today[sid] = _StrategyDay()
        return found

    def add(self, item: Replayed) -> None:
        self.requests += 1
        stored = item.stored
        day = item.day
        if day != self._day_of:  # the requests come day by day
            self._day_of = day
            self._today = self.by_day.setdefault(day, {})
        amount = stored.amount
        self.day_requests[day] += 1
        if item.baseline_approved:
            self.baseline.add(amount)
            self.days[day]["baseline"].add(amount)
            if stored.strategy_id is not None:
                self.baseline_hits[stored.strategy_id].add(amount)
                self._strategy_day(stored.strategy_id).baseline.add(amount)
        verdict = item.verdict
        if verdict is None:
            self.skipped += 1
            return
        if not stored.from_payload:
            self.from_order_row += 1
        for scenario in item.scenarios:
            self.scenario_requests[(day, scenario)] += 1
        hit = verdict.hit
        if hit is not None:
            self.candidate.add(amount)
            self.days[day]["candidate"].add(amount)
            self._strategy_day(hit.id).hits.add(amount)
            for shadowed in verdict.shadowed:
                self.shadowed[shadowed.id] += 1
        strategy_day = self._strategy_day
        for strategy, code in verdict.misses:
            today = strategy_day(strategy.id)
            if code == TRIAL_WOULD_HIT:
                today.would.add(amount)
                continue
            misses = today.misses
            misses[code] = misses.get(code, 0) + 1
            if code == DAILY_CAP_REACHED:
                today.cap_turned_away += 1
        for sid, level in item.events:
            today = strategy_day(sid)
            if level == WARNING:
                today.warned = True
            elif level == REACHED and today.cap_out_at is None:
                today.cap_out_at = stored.now.astimezone(self.zone).strftime("%H:%M")
        kind = classify(item)
        if kind is None:
            return
        self.changes[kind].add(amount)
        self.by_reality[kind][stored.status].add(amount)
        if self.on_change is not None:
            self.on_change(item, kind)

    def as_json(self, *, edited: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
        gained = self.by_reality[BacktestChangeKind.GAINED].get(HEADLINE_REALITY, _Tally())
        return {
            "version": REPORT_VERSION,
            "first_day": self.period.first_day.isoformat(),
            "last_day": self.period.last_day.isoformat(),
            "zone": self.zone.key,
            "requests": self.requests,
            "skipped": self.skipped,
            "from_order_row": self.from_order_row,
            "baseline": self.baseline.as_json(),
            "candidate": self.candidate.as_json(),
            "changes": {
                kind: {
                    **tally.as_json(),
                    "by_reality": {
                        status: t.as_json() for status, t in sorted(self.by_reality[kind].items())
                    },
                }
                for kind, tally in self.changes.items()
            },
            "headline": {**gained.as_json(), "reality": HEADLINE_REALITY},
            "days": [
                {
                    "day": day.isoformat(),
                    "requests": self.day_requests.get(day, 0),
                    "baseline": self.days[day]["baseline"].as_json()
                    if day in self.days
                    else _Tally().as_json(),
                    "candidate": self.days[day]["candidate"].as_json()
                    if day in self.days
                    else _Tally().as_json(),
                }
                for day in self.period.days()
            ],
            "strategies": [self._strategy_json(m) for m in self.members],
            "edited": list(edited),
        }

    def _strategy_json(self, member: Member) -> dict[str, Any]:
        s = member.snapshot
        scenario = str(s.scenario)
        days = []
        hits, would = _Tally(), _Tally()
        misses: Counter[str] = Counter()
        cap_turned_away = 0
        for day in self.period.days():
            found = self.by_day.get(day, {}).get(s.id)
            scenario_requests = self.scenario_requests.get((day, scenario), 0)
            if found is None and not scenario_requests:
                continue
            found = found or _StrategyDay()
            hits.count += found.hits.count
            hits.amount += found.hits.amount
            would.count += found.would.count
            would.amount += found.would.amount
            misses.update(found.misses)
            cap_turned_away += found.cap_turned_away
            days.append(
                {
                    "day": day.isoformat(),
                    "scenario_requests": scenario_requests,
                    "hits": found.hits.as_json(),
                    "baseline_hits": found.baseline.as_json(),
                    "would": found.would.as_json(),
                    "cap_turned_away": found.cap_turned_away,
                    "cap_out_at": found.cap_out_at,
                    "alert_95": found.warned,
                    "alert_100": found.cap_out_at is not None,
                    "misses": dict(Counter(found.misses).most_common()),
                }
            )
        baseline = self.baseline_hits.get(s.id) or _Tally()
        return {
            "id": s.id,
            "name": s.name,
            "scenario": scenario,
            "status": str(s.status),
            "position": s.position,
            "daily_cap": money(s.daily_cap),
            "version": member.version,
            "unsaved": member.version is None,
            "hits": hits.as_json(),
            "baseline_hits": baseline.as_json(),
            "shadowed": self.shadowed.get(s.id, 0),
            "cap_turned_away": cap_turned_away,
            "would": would.as_json(),
            "misses": dict(misses.most_common()),
            "scenario_requests": sum(
                n for (_d, sc), n in self.scenario_requests.items() if sc == scenario
            ),
            "days": days,
        }
