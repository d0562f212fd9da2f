"""The backtest's compiled matcher decides exactly as ``strategies.matching.evaluate`` does:
the same hit, scenario and action, and the same explanation codes in the same order, on
generated shops, requests and states (hypothesis). No database."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from decimal import Decimal

from hypothesis import event, given, settings
from hypothesis import strategies as st

from strategies import matching as m
from strategies.backtest.matcher import CompiledSet
from strategies.models import SCENARIO_ORDER
from tests.strategies.matching_builders import LOS_ANGELES, SHANGHAI, at, order, request


def cents(low: int, high: int) -> st.SearchStrategy[Decimal]:
    """Amounts in a range, or whole ones from a few values, so sums meet bounds exactly."""
    wide = st.integers(low, high).map(lambda c: Decimal(c).scaleb(-2))
    whole = st.sampled_from([c for c in (0, 500, 1000, 1500, 2000) if low <= c <= high])
    return wide | whole.map(lambda c: Decimal(c).scaleb(-2))


BASE = at("2026-11-22 00:00")
REASONS = ("no_longer_needed", "quality_issue", "other")
# Whole hours in a small range, so boundaries (applied exactly at valid_until...) are drawn often.
MOMENTS = st.integers(-12, 12).map(lambda hours: BASE + dt.timedelta(hours=hours))
DAYS = st.none() | st.integers(0, 4)


@st.composite
def strategies_of(draw, likely: tuple[str, ...]) -> list[m.StrategySnapshot]:
    result = []
    for strategy_id in draw(st.lists(st.integers(1, 500), min_size=1, max_size=10, unique=True)):
        daily_cap = draw(cents(1, 20000))
        per_request = draw(st.none() | cents(1, 20000))
        window = draw(st.none() | st.tuples(st.integers(0, 23), st.integers(0, 23)))
        valid_from = draw(st.none() | MOMENTS)
        valid_until = draw(st.none() | MOMENTS)
        if valid_from and valid_until and valid_from >= valid_until:
            valid_until = None
        s_min, s_max, r_min, r_max = (draw(DAYS) for _ in range(4))
        pick = draw(st.integers(0, 9))
        scenario = (
            likely[pick % len(likely)]
            if pick >= 5 and likely
            else SCENARIO_ORDER[pick % len(SCENARIO_ORDER)]
        )
        restricted = draw(st.booleans())
        result.append(
            m.StrategySnapshot(
                id=strategy_id,
                name=f"S{strategy_id}",
                scenario=scenario,
                status=draw(st.sampled_from(["inactive", "trial", "active", "active", "paused"])),
                position=draw(st.integers(1, 4)),
                valid_from=valid_from if restricted else None,
                valid_until=valid_until if restricted else None,
                window_start=dt.time(window[0]) if window and restricted else None,
                window_end=dt.time(window[1]) if window and restricted else None,
                product_ids=draw(st.sampled_from([frozenset(), frozenset({"P1"})])),
                covers_shipped=draw(st.booleans()),
                shipped_min_days=s_min if restricted else None,
                shipped_max_days=s_max if restricted else None,
                covers_received=draw(st.booleans()),
                received_min_days=r_min if restricted else None,
                received_max_days=r_max if restricted else None,
                daily_cap=daily_cap,
                per_request_cap=None if per_request is None else min(per_request, daily_cap),
                max_hours_since_payment=draw(st.none() | st.integers(1, 100)),
                reasons=draw(st.lists(st.sampled_from(REASONS), max_size=2).map(frozenset)),
                risk_control=draw(st.booleans()),
                max_per_buyer_30d=draw(st.none() | st.integers(1, 3)),
            )
        )
    return result


KINDS = st.sampled_from(
    [
        ("shipped", "refund_only", frozenset()),
        ("received", "refund_only", frozenset()),
        ("shipped", "return_refund", frozenset()),
        ("received", "refund_no_return", frozenset({"refund_no_return"})),
        ("shipped", "refund_no_return", frozenset({"refund_no_return", "vip"})),
        ("pending_shipment", "refund_only", frozenset()),
        ("completed", "return_refund", frozenset({"refund_no_return"})),
    ]
)


@st.composite
def cases(draw):
    status, kind, tags = draw(KINDS)
    applied = draw(MOMENTS)
    shipped = (
        None
        if status == "pending_shipment"
        else applied - dt.timedelta(minutes=draw(st.integers(0, 5 * 24 * 60)))
    )
    received = (
        None
        if status in ("pending_shipment", "shipped") or draw(st.integers(0, 9)) == 0
        else applied - dt.timedelta(minutes=draw(st.integers(0, 3 * 24 * 60)))
    )
    req = request(
        type=kind,
        reason=draw(st.sampled_from(REASONS)),
        amount=draw(cents(1, 5000)),
        applied_at=applied,
        risk_flag=draw(st.booleans()),
        order=order(
            status=status,
            paid_at=applied - dt.timedelta(hours=draw(st.integers(0, 150))),
            shipped_at=shipped,
            received_at=received,
            tags=tags,
            product_ids=draw(
                st.sampled_from([frozenset(), frozenset({"P1"}), frozenset({"P1", "P2"})])
            ),
            total=draw(st.none() | cents(1, 6000)),
        ),
    )
    strategies = draw(strategies_of(m.scenarios_for(req)))
    consumed = {s.id: draw(cents(0, 20000)) for s in strategies if draw(st.booleans())}
    zone = draw(st.sampled_from([SHANGHAI, LOS_ANGELES]))
    return req, strategies, consumed, draw(st.integers(0, 4)), draw(cents(0, 3000)), zone


@settings(max_examples=300, deadline=None)
@given(case=cases())
def test_the_compiled_matcher_decides_and_explains_as_evaluate_does(case):
    req, strategies, consumed, buyer_approvals, refunded, zone = case
    expected = m.evaluate(
        req,
        strategies,
        zone=zone,
        consumed_today=consumed,
        buyer_approvals_30d=buyer_approvals,
        order_refunded=refunded,
    )
    compiled = CompiledSet(strategies, zone=zone)
    probe = compiled.probe(
        req, consumed=consumed, order_refunded=refunded, buyer_approvals=lambda: buyer_approvals
    )
    verdict = compiled.decide(probe, compiled.scenarios(req), shadows=True)

    event("hit" if expected.hit else "manual review")
    assert (verdict.hit, verdict.scenario, verdict.action) == (
        expected.hit,
        expected.scenario,
        expected.action,
    )
    assert verdict.codes() == [(e.strategy_id, e.code) for e in expected.explanations]

    # Shadowed: exactly the active strategies after the hit that pass every check.
    ctx = m.Context(
        request=req,
        zone=zone,
        consumed_today=consumed,
        buyer_approvals_30d=buyer_approvals,
        order_refunded=refunded,
    )
    order_ = m.candidates(strategies, m.scenarios_for(req))
    after = order_[order_.index(expected.hit) + 1 :] if expected.hit else []
    passing = [s for s in after if s.status == "active" and m.first_miss(s, ctx) is None]
    assert verdict.shadowed == passing
    # Counted for one scenario only: the same, filtered.
    one = frozenset({"post_shipment_refund"})
    probe = compiled.probe(
        req, consumed=consumed, order_refunded=refunded, buyer_approvals=lambda: buyer_approvals
    )
    scoped = compiled.decide(probe, compiled.scenarios(req), shadows=one)
    assert scoped.codes() == verdict.codes()
    assert scoped.shadowed == [s for s in passing if s.scenario in one]


def test_the_buyer_is_counted_only_when_a_tried_strategy_limits_buyers():
    unlimited = m.StrategySnapshot(
        id=1, name="S1", scenario="post_shipment_refund", status="active", position=1
    )
    compiled = CompiledSet([unlimited], zone=SHANGHAI)
    counted: list[int] = []

    def count() -> int:
        counted.append(1)
        return 0

    req = request()
    probe = compiled.probe(req, consumed={}, order_refunded=Decimal("0"), buyer_approvals=count)
    assert compiled.decide(probe, compiled.scenarios(req)).hit == unlimited
    assert counted == []


def decide_both(req, strategy, *, consumed=None, buyer_approvals=0, refunded=Decimal("0.00")):
    consumed = consumed or {}
    expected = m.evaluate(
        req,
        [strategy],
        zone=SHANGHAI,
        consumed_today=consumed,
        buyer_approvals_30d=buyer_approvals,
        order_refunded=refunded,
    )
    compiled = CompiledSet([strategy], zone=SHANGHAI)
    probe = compiled.probe(
        req, consumed=consumed, order_refunded=refunded, buyer_approvals=lambda: buyer_approvals
    )
    verdict = compiled.decide(probe, compiled.scenarios(req))
    assert verdict.hit == expected.hit
    assert verdict.codes() == [(e.strategy_id, e.code) for e in expected.explanations]
    return verdict.hit is not None


S = m.StrategySnapshot(
    id=7, name="S7", scenario="post_shipment_refund", status="active", position=1
)
APPLIED = at("2026-11-22 10:00")
ONE_SECOND = dt.timedelta(seconds=1)
CENT = Decimal("0.01")


def test_every_bound_is_judged_as_the_matcher_judges_it():
    """Exactly on each bound and just past it, the compiled tests agree with ``evaluate``."""
    req = request(applied_at=APPLIED, amount=Decimal("10.00"))
    # Validity: from is inclusive, until exclusive.
    assert decide_both(req, replace(S, valid_from=APPLIED))
    assert not decide_both(req, replace(S, valid_from=APPLIED + ONE_SECOND))
    assert not decide_both(req, replace(S, valid_until=APPLIED))
    assert decide_both(req, replace(S, valid_until=APPLIED + ONE_SECOND))
    # Window [start, end), crossing midnight or not.
    assert decide_both(req, replace(S, window_start=dt.time(10), window_end=dt.time(11)))
    assert not decide_both(req, replace(S, window_start=dt.time(9), window_end=dt.time(10)))
    assert decide_both(req, replace(S, window_start=dt.time(22), window_end=dt.time(10, 0, 1)))
    # Days since shipment, on local dates, inclusive.
    shipped = request(applied_at=APPLIED, order_fields={"shipped_at": at("2026-11-20 23:59")})
    assert decide_both(shipped, replace(S, shipped_min_days=2, shipped_max_days=2))
    assert not decide_both(shipped, replace(S, shipped_max_days=1))
    # Application time: exactly N hours passes, a second more does not.
    paid = APPLIED - dt.timedelta(hours=5)
    on_time = request(applied_at=APPLIED, order_fields={"paid_at": paid})
    late = request(applied_at=APPLIED, order_fields={"paid_at": paid - ONE_SECOND})
    assert decide_both(on_time, replace(S, max_hours_since_payment=5))
    assert not decide_both(late, replace(S, max_hours_since_payment=5))
    # Per-request cap, order total, buyer limit and daily cap: reaching the bound passes.
    assert decide_both(req, replace(S, per_request_cap=Decimal("10.00")))
    assert not decide_both(req, replace(S, per_request_cap=Decimal("10.00") - CENT))
    total = request(
        applied_at=APPLIED, amount=Decimal("10.00"), order_fields={"total": Decimal("30.00")}
    )
    assert decide_both(total, S, refunded=Decimal("20.00"))
    assert not decide_both(total, S, refunded=Decimal("20.01"))
    assert decide_both(req, replace(S, max_per_buyer_30d=2), buyer_approvals=1)
    assert not decide_both(req, replace(S, max_per_buyer_30d=2), buyer_approvals=2)
    assert decide_both(req, replace(S, daily_cap=Decimal("50.00")), consumed={7: Decimal("40.00")})
    assert not decide_both(
        req, replace(S, daily_cap=Decimal("50.00")), consumed={7: Decimal("40.01")}
    )
