"""Properties of the matcher over generated shops and requests (hypothesis). No database."""

import datetime as dt
from decimal import Decimal

from django.utils import translation
from hypothesis import event, given, settings
from hypothesis import strategies as st

from strategies.matching import StrategySnapshot, action_for, evaluate, scenarios_for
from strategies.models import SCENARIO_ORDER
from tests.strategies.matching_builders import SHANGHAI, at, order, replace, request


def cents(low: int, high: int) -> st.SearchStrategy[Decimal]:
    return st.integers(low, high).map(lambda c: Decimal(c).scaleb(-2))


MONEY = cents(1, 20000)
REASONS = ("no_longer_needed", "quality_issue", "other")


OPTIONAL_MONEY = st.none() | MONEY
HOURS = st.none() | st.tuples(st.integers(0, 23), st.integers(0, 23))
DAYS = st.none() | st.integers(0, 5)
SMALL_LIMIT = st.none() | st.integers(1, 3)
STATUSES = st.sampled_from(["inactive", "trial", "active", "active"])
PRODUCT_SETS = st.sampled_from([frozenset(), frozenset({"P1"})])
REASON_SETS = st.lists(st.sampled_from(REASONS), max_size=2).map(frozenset)
PAYMENT_HOURS = st.none() | st.integers(1, 100)


IDS = st.lists(st.integers(1, 1000), min_size=1, max_size=8, unique=True)
POSITIONS = st.integers(1, 3)
SCENARIO_PICKS = st.integers(0, 9)


def pick_scenario(pick: int, likely: tuple[str, ...]) -> str:
    """Half the picks go to the request's own scenarios (when any), so they are tried."""
    if pick >= len(SCENARIO_ORDER) and likely:
        return likely[pick % len(likely)]
    return SCENARIO_ORDER[pick % len(SCENARIO_ORDER)]


@st.composite
def strategy_lists(draw, likely_scenarios: tuple[str, ...] = ()) -> list[StrategySnapshot]:
    """Up to 8 strategies, many of them in ``likely_scenarios`` (the request's)."""
    ids = draw(IDS)
    result = []
    for strategy_id in ids:
        daily_cap = draw(MONEY)
        per_request_cap = draw(OPTIONAL_MONEY)
        if per_request_cap is not None:
            per_request_cap = min(per_request_cap, daily_cap)  # as the database enforces
        window = draw(HOURS)
        if window and window[0] == window[1]:
            window = None
        snapshot = StrategySnapshot(
            id=strategy_id,
            name=f"S{strategy_id}",
            scenario=pick_scenario(draw(SCENARIO_PICKS), likely_scenarios),
            status=draw(STATUSES),
            position=draw(POSITIONS),
            window_start=dt.time(window[0]) if window else None,
            window_end=dt.time(window[1]) if window else None,
            product_ids=draw(PRODUCT_SETS),
            covers_shipped=draw(st.booleans()),
            shipped_max_days=draw(DAYS),
            covers_received=draw(st.booleans()),
            daily_cap=daily_cap,
            per_request_cap=per_request_cap,
            max_hours_since_payment=draw(PAYMENT_HOURS),
            reasons=draw(REASON_SETS),
            risk_control=draw(st.booleans()),
            max_per_buyer_30d=draw(SMALL_LIMIT),
        )
        if draw(st.booleans()):  # half of them restrict nothing but the caps, so hits are common
            snapshot = replace(
                snapshot,
                window_start=None,
                window_end=None,
                product_ids=frozenset(),
                covers_shipped=True,
                shipped_max_days=None,
                covers_received=True,
                max_hours_since_payment=None,
                reasons=frozenset(),
            )
        result.append(snapshot)
    return result


# Mostly requests some scenario covers; a completed order now and then.
REQUEST_KINDS = st.sampled_from(
    [
        ("shipped", "refund_only", frozenset()),
        ("received", "refund_only", frozenset()),
        ("shipped", "return_refund", frozenset()),
        ("received", "refund_no_return", frozenset({"refund_no_return"})),
        ("pending_shipment", "refund_only", frozenset()),
        ("completed", "return_refund", frozenset({"refund_no_return"})),
    ]
)


REQUEST_REASONS = st.sampled_from(REASONS)
AMOUNTS = cents(1, 5000)
MINUTES = st.integers(0, 1439)
ORDER_PRODUCTS = st.sampled_from([frozenset({"P1"}), frozenset({"P1", "P2"})])
CONSUMED = st.none() | MONEY
BUYER_APPROVALS = st.integers(0, 3)


@st.composite
def requests(draw):
    status, type, tags = draw(REQUEST_KINDS)
    return request(
        type=type,
        reason=draw(REQUEST_REASONS),
        amount=draw(AMOUNTS),
        applied_at=at("2026-11-22 00:00") + dt.timedelta(minutes=draw(MINUTES)),
        risk_flag=draw(st.booleans()),
        order=order(
            status=status,
            shipped_at=None if status == "pending_shipment" else at("2026-11-20 12:00"),
            received_at=at("2026-11-21 12:00") if status == "received" else None,
            tags=tags,
            product_ids=draw(ORDER_PRODUCTS),
        ),
    )


@st.composite
def cases(draw):
    """A request, the shop's strategies, today's consumption and the buyer's approvals."""
    req = draw(requests())
    strategies = draw(strategy_lists(scenarios_for(req)))
    consumed = {}
    for snapshot in strategies:
        amount = draw(CONSUMED)
        if amount is not None:
            consumed[snapshot.id] = amount
    return req, strategies, consumed, draw(BUYER_APPROVALS)


@settings(max_examples=200, deadline=None)
@given(case=cases())
def test_the_hit_is_one_active_strategy_of_the_requests_scenarios_within_its_caps(case):
    req, strategies, consumed, buyer_approvals = case
    with translation.override("en"):
        evaluation = evaluate(
            req,
            strategies,
            zone=SHANGHAI,
            consumed_today=consumed,
            buyer_approvals_30d=buyer_approvals,
        )
        shuffled = evaluate(
            req,
            list(reversed(strategies)),
            zone=SHANGHAI,
            consumed_today=consumed,
            buyer_approvals_30d=buyer_approvals,
        )

    # The input order of the strategies never matters: priority does.
    assert shuffled == evaluation

    scenarios = scenarios_for(req)
    explained = [e.strategy_id for e in evaluation.explanations]
    assert len(explained) == len(set(explained))
    assert all(e.scenario in scenarios for e in evaluation.explanations)

    hit = evaluation.hit
    event("hit" if hit else "manual review")
    if hit is None:
        assert (evaluation.scenario, evaluation.action) == ("", "")
        # Manual review explains every strategy of every scenario the request falls under.
        assert sorted(explained) == sorted(s.id for s in strategies if s.scenario in scenarios)
        return

    assert hit in strategies
    assert hit.status == "active"
    assert hit.scenario in scenarios
    assert evaluation.scenario == hit.scenario
    assert evaluation.action == action_for(hit.scenario)
    assert hit.id not in explained
    assert hit.per_request_cap is None or req.amount <= hit.per_request_cap
    assert consumed.get(hit.id, Decimal("0")) + req.amount <= hit.daily_cap
    assert not (hit.risk_control and req.risk_flag)
    assert hit.max_per_buyer_30d is None or buyer_approvals < hit.max_per_buyer_30d
    assert req.order.status != "completed"
