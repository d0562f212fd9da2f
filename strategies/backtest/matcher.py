"""The pure matcher, compiled once per strategy set: the decision ``strategies.matching.evaluate``
makes, at a few microseconds a request instead of a hundred or more.

A backtest asks the same strategy set about hundreds of thousands of requests. ``evaluate``
spends most of its time on what a replay does not need at once: every check of every candidate
(most cannot fail for a given strategy), enum look-ups, and each miss's message rendered through
gettext. Here:

- each strategy is compiled into the tests of only the checks that can fail for it, in the
  order of ``matching.CHECKS``, each restating that check's pass/fail on plain values (a check
  added to ``CHECKS`` and unknown here is run as it is, so it is never skipped);
- what a request needs (its shop-local time and dates) is computed once, not per candidate;
- the scenarios of a request and the candidates in order are ``matching``'s own
  (``scenarios_for``, ``candidates``), memoized per kind of request;
- a miss is only its code: params and messages come later, for the few requests a report shows,
  from ``matching.evaluate`` itself run on the state that was recorded (``explain``).

tests/strategies/backtest/test_matcher.py holds this equal to ``evaluate`` on generated shops
and requests (hit, scenario, action and every explanation code, in order).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from strategies import matching as m
from strategies.models import (
    SCENARIOS_WITH_ORDER_STATUS,
    SCENARIOS_WITH_PRODUCTS,
    OrderStatus,
    StrategyStatus,
)

ZERO = Decimal("0.00")
UTC = dt.UTC
ACTIVE = str(StrategyStatus.ACTIVE)
TRIAL = str(StrategyStatus.TRIAL)
SHIPPED = str(OrderStatus.SHIPPED)
RECEIVED = str(OrderStatus.RECEIVED)
SCENARIOS_WITH_PRODUCTS_STR = frozenset(str(s) for s in SCENARIOS_WITH_PRODUCTS)
SCENARIOS_WITH_ORDER_STATUS_STR = frozenset(str(s) for s in SCENARIOS_WITH_ORDER_STATUS)


class Probe:
    """One request as the compiled tests read it, with the state of the moment it is decided:
    the strategies' consumption today, what the order already had approved, and the buyer's
    approvals over 30 days (counted only if a test asks)."""

    __slots__ = (
        "_buyer_count",
        "amount",
        "applied_at",
        "applied_date",
        "buyer_approvals",
        "consumed",
        "local_time",
        "order_refunded",
        "order_status",
        "products",
        "reason",
        "received_date",
        "request",
        "risk_flag",
        "shipped_date",
        "since_payment",
        "total",
        "zone",
    )

    def __init__(
        self,
        request: m.RequestSnapshot,
        *,
        zone: ZoneInfo,
        consumed: Mapping[int, Decimal],
        order_refunded: Decimal,
        buyer_approvals: Callable[[], int],
        needs: CompiledSet,
    ) -> None:
        order = request.order
        self.request = request
        self.zone = zone
        self.amount = request.amount
        # In UTC: comparing and subtracting aware datetimes of one tzinfo object skips the
        # zones' utcoffset() calls (the strategies' bounds are compiled to UTC as well).
        applied = request.applied_at
        self.applied_at = applied = applied if applied.tzinfo is UTC else applied.astimezone(UTC)
        self.reason = request.reason
        self.risk_flag = request.risk_flag
        self.order_status = order.status
        self.products = order.product_ids
        self.total = order.total
        self.consumed = consumed
        self.order_refunded = order_refunded
        self.buyer_approvals = buyer_approvals
        self._buyer_count: int | None = None
        local = applied.astimezone(zone) if needs.local_time or needs.dates else None
        self.local_time = local.time() if local is not None and needs.local_time else None
        self.applied_date = local.date() if local is not None and needs.dates else None
        if needs.dates:
            shipped, received = order.shipped_at, order.received_at
            self.shipped_date = shipped.astimezone(zone).date() if shipped else None
            self.received_date = received.astimezone(zone).date() if received else None
        else:
            self.shipped_date = self.received_date = None
        self.since_payment = (
            applied - order.paid_at.astimezone(UTC) if needs.since_payment else None
        )

    def buyer_count(self) -> int:
        if self._buyer_count is None:
            self._buyer_count = self.buyer_approvals()
        return self._buyer_count

    def context(self) -> m.Context:
        """The matcher's own context for this moment (for checks this module does not know)."""
        return m.Context(
            request=self.request,
            zone=self.zone,
            consumed_today=self.consumed,
            buyer_approvals_30d=self.buyer_count(),
            order_refunded=self.order_refunded,
        )


Test = Callable[[Probe], bool]  # True: the check fails (a miss)
Compiled = tuple[tuple[str | None, Callable[..., Any], Test], ...]


def _always(p: Probe) -> bool:
    return True


def _utc(moment: dt.datetime | None) -> dt.datetime | None:
    return None if moment is None else moment.astimezone(UTC)


def _days_miss(
    since: dt.date | None, applied: dt.date | None, low: int | None, high: int | None
) -> bool:
    if low is None and high is None:
        return False
    if since is None or applied is None:
        return True
    days = (applied - since).days
    return not ((low is None or days >= low) and (high is None or days <= high))


# One builder per check of ``matching.CHECKS``: the test of that check for one strategy, or
# None when the check cannot fail for it. Each restates exactly the check's pass/fail.


def _validity(s: m.StrategySnapshot) -> Test | None:
    start, until = _utc(s.valid_from), _utc(s.valid_until)
    if start is None and until is None:
        return None
    if until is None:
        return lambda p: p.applied_at < start  # type: ignore[operator]
    if start is None:
        return lambda p: p.applied_at >= until
    return lambda p: p.applied_at < start or p.applied_at >= until


def _window(s: m.StrategySnapshot) -> Test | None:
    start, end = s.window_start, s.window_end
    if start is None and end is None:
        return None
    in_window = m.in_window
    return lambda p: not in_window(p.local_time, start, end)  # type: ignore[arg-type]


def _products(s: m.StrategySnapshot) -> Test | None:
    chosen = s.product_ids
    if str(s.scenario) not in SCENARIOS_WITH_PRODUCTS_STR or not chosen:
        return None
    return lambda p: not (p.products and p.products <= chosen)


def _order_status(s: m.StrategySnapshot) -> Test | None:
    if str(s.scenario) not in SCENARIOS_WITH_ORDER_STATUS_STR:
        return None
    shipped, received = s.covers_shipped, s.covers_received
    s_low, s_high = s.shipped_min_days, s.shipped_max_days
    r_low, r_high = s.received_min_days, s.received_max_days

    def test(p: Probe) -> bool:
        status = p.order_status
        if status == SHIPPED and shipped:
            return _days_miss(p.shipped_date, p.applied_date, s_low, s_high)
        if status == RECEIVED and received:
            return _days_miss(p.received_date, p.applied_date, r_low, r_high)
        return True

    return test


def _reason(s: m.StrategySnapshot) -> Test | None:
    reasons = s.reasons
    if not reasons:
        return None
    return lambda p: p.reason not in reasons


def _application_time(s: m.StrategySnapshot) -> Test | None:
    if s.max_hours_since_payment is None:
        return None
    limit = dt.timedelta(hours=s.max_hours_since_payment)
    return lambda p: p.since_payment > limit  # type: ignore[operator]


def _risk(s: m.StrategySnapshot) -> Test | None:
    if not s.risk_control:
        return None
    return lambda p: p.risk_flag


def _per_request_cap(s: m.StrategySnapshot) -> Test | None:
    cap = s.per_request_cap
    if cap is None:
        return None
    return lambda p: p.amount > cap


def _order_total(s: m.StrategySnapshot) -> Test | None:
    return lambda p: p.total is not None and p.order_refunded + p.amount > p.total


def _buyer_limit(s: m.StrategySnapshot) -> Test | None:
    limit = s.max_per_buyer_30d
    if limit is None:
        return None
    return lambda p: p.buyer_count() >= limit


def _daily_cap(s: m.StrategySnapshot) -> Test | None:
    sid, cap = s.id, s.daily_cap
    return lambda p: p.consumed.get(sid, ZERO) + p.amount > cap


def _readable(s: m.StrategySnapshot) -> Test | None:
    return _always if s.unreadable else None


BUILDERS: dict[Callable[..., Any], tuple[str, Callable[[m.StrategySnapshot], Test | None]]] = {
    m.check_readable: (m.STRATEGY_UNREADABLE, _readable),
    m.check_validity: (m.OUTSIDE_VALIDITY, _validity),
    m.check_window: (m.OUTSIDE_WINDOW, _window),
    m.check_products: (m.PRODUCT_NOT_COVERED, _products),
    m.check_order_status: (m.ORDER_STATUS_NOT_COVERED, _order_status),
    m.check_reason: (m.REASON_NOT_COVERED, _reason),
    m.check_application_time: (m.APPLICATION_TOO_LATE, _application_time),
    m.check_risk: (m.RISK_FLAGGED, _risk),
    m.check_per_request_cap: (m.OVER_PER_REQUEST_CAP, _per_request_cap),
    m.check_order_total: (m.ORDER_TOTAL_EXCEEDED, _order_total),
    m.check_buyer_limit: (m.BUYER_LIMIT_REACHED, _buyer_limit),
    m.check_daily_cap: (m.DAILY_CAP_REACHED, _daily_cap),
}


def compile_strategy(s: m.StrategySnapshot) -> Compiled:
    """The tests of ``s`` in the order of ``matching.CHECKS``; an inactive strategy (anything
    but active or trial) is one test that always fails with ``inactive``."""
    if str(s.status) not in (ACTIVE, TRIAL):
        return ((m.INACTIVE, m.check_active_or_trial, _always),)
    tests: list[tuple[str | None, Callable[..., Any], Test]] = []
    for check in m.CHECKS:
        if check is m.check_active_or_trial:
            continue
        known = BUILDERS.get(check)
        if known is None:
            # A check this module does not know: run the matcher's own, never skip it.
            tests.append((None, check, _generic(check, s)))
            continue
        code, build = known
        test = build(s)
        if test is not None:
            tests.append((code, check, test))
    return tuple(tests)


def _generic(check: Callable[..., Any], s: m.StrategySnapshot) -> Test:
    return lambda p: check(s, p.context()) is not None


class Verdict:
    """What the compiled matcher decided: the hit (None: manual review), its scenario and
    action, the misses as (strategy, code) in the order ``evaluate`` explains them (a trial
    strategy that passed is ``trial_would_hit``), and, when asked, the active strategies after
    the hit that would also have taken the request (shadowed by the hit)."""

    __slots__ = ("action", "hit", "misses", "scenario", "shadowed")

    def __init__(
        self,
        hit: m.StrategySnapshot | None,
        scenario: str,
        action: str,
        misses: list[tuple[m.StrategySnapshot, str]],
        shadowed: list[m.StrategySnapshot],
    ) -> None:
        self.hit = hit
        self.scenario = scenario
        self.action = action
        self.misses = misses
        self.shadowed = shadowed

    def codes(self) -> list[tuple[int, str]]:
        return [(s.id, code) for s, code in self.misses]


class CompiledSet:
    """A strategy set compiled for one shop's zone."""

    def __init__(self, strategies: Sequence[m.StrategySnapshot], *, zone: ZoneInfo) -> None:
        self.strategies = tuple(strategies)
        self.zone = zone
        self._compiled = {id(s): compile_strategy(s) for s in self.strategies}
        active = [s for s in self.strategies if str(s.status) in (ACTIVE, TRIAL)]
        self.local_time = any(
            s.window_start is not None or s.window_end is not None for s in active
        )
        self.dates = any(
            str(s.scenario) in SCENARIOS_WITH_ORDER_STATUS_STR
            and any(
                v is not None
                for v in (
                    s.shipped_min_days,
                    s.shipped_max_days,
                    s.received_min_days,
                    s.received_max_days,
                )
            )
            for s in active
        )
        self.since_payment = any(s.max_hours_since_payment is not None for s in active)
        self.limits_buyers = any(s.max_per_buyer_30d is not None for s in self.strategies)
        self._scenarios: dict[tuple[Any, ...], tuple[str, ...]] = {}
        self._candidates: dict[
            tuple[str, ...], tuple[tuple[m.StrategySnapshot, Compiled, bool, bool], ...]
        ] = {}
        self._actions: dict[str, str] = {}

    def scenarios(self, request: m.RequestSnapshot) -> tuple[str, ...]:
        """``matching.scenarios_for``, memoized on what it reads (order status, type, tags)."""
        key = (request.order.status, request.type, request.order.tags)
        found = self._scenarios.get(key)
        if found is None:
            found = self._scenarios[key] = m.scenarios_for(request)
        return found

    def candidates(
        self, scenarios: tuple[str, ...]
    ) -> tuple[tuple[m.StrategySnapshot, Compiled, bool, bool], ...]:
        found = self._candidates.get(scenarios)
        if found is None:
            found = self._candidates[scenarios] = tuple(
                (s, self._compiled[id(s)], str(s.status) == TRIAL, str(s.status) == ACTIVE)
                for s in m.candidates(self.strategies, scenarios)
            )
        return found

    def limits_buyers_in(self, scenarios: tuple[str, ...]) -> bool:
        """Whether a strategy of these scenarios limits buyers (any status, as the live
        decision loads them): only then does it count the buyer's approvals."""
        return any(s.max_per_buyer_30d is not None for s, *_ in self.candidates(scenarios))

    def probe(
        self,
        request: m.RequestSnapshot,
        *,
        consumed: Mapping[int, Decimal],
        order_refunded: Decimal,
        buyer_approvals: Callable[[], int],
    ) -> Probe:
        return Probe(
            request,
            zone=self.zone,
            consumed=consumed,
            order_refunded=order_refunded,
            buyer_approvals=buyer_approvals,
            needs=self,
        )

    def decide(
        self,
        probe: Probe,
        scenarios: tuple[str, ...],
        *,
        shadows: bool | frozenset[str] = False,
    ) -> Verdict:
        """``evaluate``'s decision for the probe's request and state. With ``shadows``, the
        active strategies after the hit are tried too (nothing else changes): all of them
        (True) or those of the scenarios given."""
        misses: list[tuple[m.StrategySnapshot, str]] = []
        append = misses.append
        candidates = self.candidates(scenarios)
        for index, (s, tests, trial, _active) in enumerate(candidates):
            for known, check, test in tests:
                if test(probe):
                    append((s, known if known is not None else check(s, probe.context()).code))
                    break
            else:
                if trial:
                    append((s, m.TRIAL_WOULD_HIT))
                    continue
                scenario = str(s.scenario)
                action = self._actions.get(scenario)
                if action is None:
                    action = self._actions[scenario] = m.action_for(scenario)
                shadowed = (
                    self._passing(probe, candidates[index + 1 :], shadows)
                    if shadows is True or (shadows and not shadows.isdisjoint(scenarios))
                    else []
                )
                return Verdict(s, scenario, action, misses, shadowed)
        return Verdict(None, "", "", misses, [])

    @staticmethod
    def _passing(
        probe: Probe,
        rest: tuple[tuple[m.StrategySnapshot, Compiled, bool, bool], ...],
        scenarios: bool | frozenset[str],
    ) -> list[m.StrategySnapshot]:
        """The active strategies of ``rest`` (of ``scenarios``) that pass every check."""
        out = []
        for s, tests, _trial, active in rest:
            if not active or (scenarios is not True and s.scenario not in scenarios):  # type: ignore[operator]
                continue
            for _known, _check, test in tests:
                if test(probe):
                    break
            else:
                out.append(s)
        return out


def explain(
    request: m.RequestSnapshot,
    strategies: Sequence[m.StrategySnapshot],
    *,
    zone: ZoneInfo,
    consumed: Mapping[int, Decimal],
    buyer_approvals: int,
    order_refunded: Decimal,
) -> m.Evaluation:
    """The matcher's own evaluation, with its rendered explanations, for a recorded moment."""
    return m.evaluate(
        request,
        strategies,
        zone=zone,
        consumed_today=consumed,
        buyer_approvals_30d=buyer_approvals,
        order_refunded=order_refunded,
    )
