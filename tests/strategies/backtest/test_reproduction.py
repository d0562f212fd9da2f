"""Equal inputs give equal outputs: a month of generated traffic decided live, request by
request, by the real decision service; then the same period replayed through the strategy set
as it is. Every request's outcome and strategy, and every explanation with its params, equal
the live decision's."""

from __future__ import annotations

import datetime as dt
import heapq
import json
import random
from collections import Counter
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from strategies.backtest.loaders import strategy_set
from strategies.backtest.matcher import explain
from strategies.backtest.replay import REACHED, WARNING
from strategies.demo.traffic import TrafficGenerator
from strategies.matching import unmatched_explanation
from strategies.models import AfterSaleRequest, Decision
from strategies.pipeline.decide import request_decide
from strategies.pipeline.ledger import ledger_release
from strategies.platforms.generic.intake import aftersale_receive
from tests.factories import make_strategy
from tests.strategies.backtest.builders import live_by_request, replay_all

SHANGHAI = ZoneInfo("Asia/Shanghai")
FIRST_DAY = dt.date(2026, 9, 1)
DAYS = 30
PER_DAY = 30


def local(day: dt.date, seconds: float) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=SHANGHAI) + dt.timedelta(seconds=seconds)


def make_strategies(shop) -> dict[str, object]:
    day12 = local(FIRST_DAY + dt.timedelta(days=11), 0)
    day20 = local(FIRST_DAY + dt.timedelta(days=19), 12 * 3600)
    return {
        # Tried first for shipped/received refund_only and return_refund: a trial, then an
        # active one valid for a week only, for two reasons.
        "no-return trial": make_strategy(
            shop=shop,
            scenario="post_shipment_no_return",
            status="trial",
            per_request_cap=Decimal("50.00"),
        ),
        "no-return week": make_strategy(
            shop=shop,
            scenario="post_shipment_no_return",
            status="active",
            valid_from=day12,
            valid_until=day20,
            per_request_cap=Decimal("15.00"),
            daily_cap=Decimal("45.00"),
            reasons=["not_received", "quality_issue"],
        ),
        # A small cap that runs out mid-day, then a window with a per-buyer limit.
        "small capped": make_strategy(
            shop=shop,
            status="active",
            per_request_cap=Decimal("30.00"),
            daily_cap=Decimal("60.00"),
        ),
        "daytime": make_strategy(
            shop=shop,
            status="active",
            window_start=dt.time(9),
            window_end=dt.time(21),
            per_request_cap=Decimal("200.00"),
            daily_cap=Decimal("400.00"),
            max_per_buyer_30d=2,
        ),
        "refund trial": make_strategy(shop=shop, status="trial"),
        "pre-shipment": make_strategy(
            shop=shop,
            scenario="pre_shipment_refund",
            status="active",
            per_request_cap=Decimal("40.00"),
            daily_cap=Decimal("100.00"),
            max_hours_since_payment=4,
        ),
        "tagged": make_strategy(
            shop=shop,
            scenario="tagged_refund_no_return",
            status="active",
            daily_cap=Decimal("80.00"),
        ),
        "returns": make_strategy(
            shop=shop,
            scenario="post_shipment_return_refund",
            status="active",
            shipped_min_days=1,
            received_max_days=3,
            daily_cap=Decimal("300.00"),
        ),
        "returns off": make_strategy(
            shop=shop, scenario="post_shipment_return_refund", status="inactive"
        ),
    }


def fail_execution(decision_id: int, at: dt.datetime) -> None:
    """The platform refused an approval at ``at``: marked failed, its amount given back, as
    ``execute.decision_fail`` does (at a chosen moment)."""
    Decision.objects.filter(pk=decision_id).update(failed_at=at, failure_reason="refused")
    AfterSaleRequest.objects.filter(decision__pk=decision_id).update(status="failed")
    assert ledger_release(decision_id=decision_id, now=at)


def generate_month(shop) -> int:
    """A month of requests, each stored through intake and decided live a little later; a
    tenth of the approvals fail half an hour later and give their amount back."""
    generator = TrafficGenerator(
        seed=15, retry_rate=0.0, follow_up_rate=0.25, buyers=40, risk_rate=0.05, zone=SHANGHAI
    )
    rng = random.Random(15)
    decided_at = local(FIRST_DAY, 0)
    failing: list[tuple[dt.datetime, int]] = []
    count = 0
    for offset in range(DAYS):
        day = FIRST_DAY + dt.timedelta(days=offset)
        # Some just before midnight, decided after it: the ledger day is the decision's.
        moments = [*sorted(rng.uniform(0, 86400) for _ in range(PER_DAY - 2)), 86399.0, 86399.5]
        for seconds in moments:
            arrived = local(day, seconds)
            body = json.loads(generator.next_body(arrived))
            receipt = aftersale_receive(shop=shop, payload=body)
            assert receipt.created
            decided_at = max(decided_at + dt.timedelta(seconds=1), arrived) + dt.timedelta(
                seconds=rng.uniform(0.5, 3)
            )
            while failing and failing[0][0] <= decided_at:
                fail_execution(failing[0][1], failing[0][0])
                heapq.heappop(failing)
            decision = request_decide(request_id=receipt.request.pk, now=decided_at)
            if decision.outcome == "approved" and rng.random() < 0.1:
                heapq.heappush(failing, (decided_at + dt.timedelta(minutes=30), decision.pk))
            count += 1
    return count


@pytest.mark.django_db
def test_replaying_the_month_with_the_set_as_it_is_reproduces_every_live_decision(shop):
    make_strategies(shop)
    generated = generate_month(shop)
    live = live_by_request(shop)
    assert len(live) == generated

    members = strategy_set(shop=shop)
    snapshots = [m.snapshot for m in members]
    replayed = replay_all(shop, FIRST_DAY, FIRST_DAY + dt.timedelta(days=DAYS), snapshots)
    assert len(replayed) == generated
    mismatches = []
    codes: Counter[str] = Counter()
    alerts: Counter[int] = Counter()
    for item, seen in replayed:
        decision = live[item.stored.request_id]
        assert not item.skipped
        if (seen["hit"], item.changed) != (decision.strategy_id, False):
            mismatches.append((decision.aftersale_id, decision.strategy_id, seen["hit"]))
            continue
        # The state the replay decided it in is the live one: the matcher, run on it, gives
        # the live explanations word for word (codes, params, messages).
        moment = seen["moment"]
        evaluation = explain(
            item.stored.snapshot,
            snapshots,
            zone=shop.zone,
            consumed=moment.consumed,
            buyer_approvals=moment.buyer_approvals,
            order_refunded=moment.order_refunded,
        )
        # A manual review with nothing to try also stores a request-level reason (strategy
        # null): derived from the same evaluation, it must be reproduced too.
        tried = [e for e in decision.explanations if e["strategy"] is not None]
        reason = [e for e in decision.explanations if e["strategy"] is None]
        assert [e.as_json() for e in evaluation.explanations] == tried
        assert reason == [
            r for r in [unmatched_explanation(item.stored.snapshot, evaluation)] if r is not None
        ]
        assert [(s, c) for s, c in item.verdict.codes()] == [
            (e["strategy"]["id"], e["code"]) for e in tried
        ]
        codes.update(e["code"] for e in tried)
        alerts.update(level for _sid, level in item.events)
    assert mismatches == []

    # The month exercised what the replay simulates (else this test would prove little).
    for code in (
        "daily_cap_reached",
        "trial_would_hit",
        "buyer_limit_reached",
        "outside_window",
        "outside_validity",
        "order_total_exceeded",
        "application_too_late",
        "order_status_not_covered",
        "inactive",
    ):
        assert codes[code] > 0, code
    assert alerts[WARNING] > 0 and alerts[REACHED] > 0
    hits = Counter(d.strategy_name for d in live.values() if d.strategy_id)
    assert len(hits) >= 5, hits
    assert sum(1 for d in live.values() if d.released_at) > 10
