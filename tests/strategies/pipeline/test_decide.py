"""The decision service: one short transaction that claims, reserves and records."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from strategies.models import DailyLedger, Decision
from strategies.pipeline.decide import request_decide
from strategies.pipeline.execute import decision_fail
from strategies.pipeline.ledger import ledgers_roll_over
from strategies.pipeline.rows import strategies_load
from tests.factories import make_decision, make_order, make_request, make_strategy


def test_it_approves_with_the_first_matching_strategy_and_records_everything(
    shop, sent, django_capture_on_commit_callbacks
):
    strategy = make_strategy(shop=shop, status="active", name="Small refunds")
    strategy.name = "Small refunds v2"
    strategy.save()  # a second history row: the version is the latest one
    request = make_request(shop=shop, amount="9.90", reason="not_received", buyer_id="B77")
    with django_capture_on_commit_callbacks(execute=True):
        decision = request_decide(request_id=request.pk)
    request.refresh_from_db()
    assert request.status == "approved"
    assert decision.outcome == "approved"
    assert decision.strategy_id == strategy.pk
    assert decision.strategy_name == "Small refunds v2"
    assert decision.strategy_version == strategy.history.latest().history_id
    assert (decision.scenario, decision.action) == ("post_shipment_refund", "approve_refund")
    assert (decision.aftersale_id, decision.order_id) == (
        request.aftersale_id,
        request.order.order_id,
    )
    assert (decision.reason, decision.buyer_id, decision.amount) == (
        "not_received",
        "B77",
        Decimal("9.90"),
    )
    ledger = DailyLedger.objects.get(strategy=strategy)
    assert decision.ledger_id == ledger.pk
    assert (ledger.consumed, ledger.approved_count) == (Decimal("9.90"), 1)
    assert ledger.day == timezone.now().astimezone(shop.zone).date()
    assert sent == [("strategies.execute_decision", [decision.pk])]


def test_no_hit_leaves_it_for_manual_review_with_every_strategys_reason(
    shop, sent, django_capture_on_commit_callbacks
):
    first = make_strategy(shop=shop, status="inactive", name="Off")
    second = make_strategy(shop=shop, status="active", per_request_cap=Decimal("5.00"))
    request = make_request(shop=shop, amount="9.90")
    with django_capture_on_commit_callbacks(execute=True):
        decision = request_decide(request_id=request.pk)
    request.refresh_from_db()
    assert request.status == "manual_review"
    assert (decision.outcome, decision.action, decision.strategy, decision.ledger) == (
        "manual_review",
        "",
        None,
        None,
    )
    assert [(e["strategy"]["id"], e["code"]) for e in decision.explanations] == [
        (first.pk, "inactive"),
        (second.pk, "over_per_request_cap"),
    ]
    assert all(e["message"] for e in decision.explanations)
    assert decision.scenario == "post_shipment_refund"  # filed where it was examined
    assert not DailyLedger.objects.exists()
    assert sent == []


def test_a_request_under_no_scenario_is_filed_under_none(shop, sent):
    make_strategy(shop=shop, status="active")
    completed = make_order(shop=shop, status="completed")
    decision = request_decide(request_id=make_request(shop=shop, order=completed).pk)
    assert (decision.outcome, decision.scenario) == ("manual_review", "")
    # No strategy was tried: the one request-level explanation says why (issue 12, 9).
    assert [(e["code"], e["strategy"]) for e in decision.explanations] == [
        ("order_completed", None)
    ]


def test_a_replay_returns_the_same_decision_and_reserves_nothing_more(
    shop, sent, django_capture_on_commit_callbacks
):
    make_strategy(shop=shop, status="active")
    request = make_request(shop=shop, amount="9.90")
    with django_capture_on_commit_callbacks(execute=True):
        first = request_decide(request_id=request.pk)
        again = request_decide(request_id=request.pk)
    assert first.pk == again.pk
    assert Decision.objects.count() == 1
    assert DailyLedger.objects.get().consumed == Decimal("9.90")
    assert sent == [("strategies.execute_decision", [first.pk])]


def test_a_full_strategy_passes_the_request_to_the_next_by_priority(shop, sent):
    full = make_strategy(shop=shop, status="active", daily_cap=Decimal("100.00"))
    second = make_strategy(shop=shop, status="active")
    make_decision(request=make_request(shop=shop, amount="95.00"), strategy=full)
    decision = request_decide(request_id=make_request(shop=shop, amount="9.90").pk)
    assert decision.strategy_id == second.pk
    assert [e["code"] for e in decision.explanations] == ["daily_cap_reached"]


def test_the_ledger_day_is_the_shop_local_day_of_the_decision_not_of_the_application(shop, sent):
    strategy = make_strategy(shop=shop, status="active")
    # Applied at 23:59 Shanghai on the 22nd, decided at 00:00:30 on the 23rd.
    applied = dt.datetime(2026, 11, 22, 15, 59, tzinfo=dt.UTC)
    decided = dt.datetime(2026, 11, 22, 16, 0, 30, tzinfo=dt.UTC)
    order = make_order(
        shop=shop,
        paid_at=applied - dt.timedelta(days=2),
        shipped_at=applied - dt.timedelta(days=1),
    )
    request = make_request(shop=shop, order=order, applied_at=applied)
    decision = request_decide(request_id=request.pk, now=decided)
    assert decision.ledger.day == dt.date(2026, 11, 23)
    assert decision.ledger.strategy_id == strategy.pk


def test_crossing_95_and_100_percent_asks_notifications_once_each_crossing(
    shop, sent, django_capture_on_commit_callbacks
):
    strategy = make_strategy(shop=shop, status="active", daily_cap=Decimal("100.00"))
    amounts_and_alert = [("90.00", False), ("5.00", True), ("2.00", False), ("3.00", True)]
    for amount, alerts in amounts_and_alert:
        sent.clear()
        with django_capture_on_commit_callbacks(execute=True):
            decision = request_decide(request_id=make_request(shop=shop, amount=amount).pk)
        assert decision.strategy_id == strategy.pk
        expected = [("strategies.execute_decision", [decision.pk])]
        if alerts:
            expected.append(("notifications.check_ledger_alerts", [decision.ledger_id]))
        assert sent == expected, amount


def test_a_cap_lowered_below_todays_consumption_stops_hits_without_alerts(
    shop, sent, django_capture_on_commit_callbacks
):
    """RELIABILITY.md 11."""
    strategy = make_strategy(shop=shop, status="active", daily_cap=Decimal("1000.00"))
    make_decision(request=make_request(shop=shop, amount="600.00"), strategy=strategy)
    strategy.daily_cap = Decimal("500.00")
    strategy.save()
    for _ in range(3):
        with django_capture_on_commit_callbacks(execute=True):
            decision = request_decide(request_id=make_request(shop=shop, amount="0.01").pk)
        assert decision.outcome == "manual_review"
        assert [e["code"] for e in decision.explanations] == ["daily_cap_reached"]
    ledger = DailyLedger.objects.get(strategy=strategy)
    assert (ledger.consumed, ledger.approved_count) == (Decimal("600.00"), 1)
    # Nothing to execute and no alert storm: one check, by the first request refused for the
    # cap, so the merchant hears once that requests now go to manual review.
    assert sent == [("notifications.check_ledger_alerts", [ledger.pk])]
    from strategies.selectors import strategy_consumption_today

    consumption = strategy_consumption_today(strategies=[strategy])[strategy.pk]
    assert max(consumption.daily_cap - consumption.consumed, Decimal("0")) == 0


def test_the_buyer_limit_counts_the_last_30_days_of_approvals_that_were_not_refused(shop, sent):
    strategy = make_strategy(shop=shop, status="active", max_per_buyer_30d=2)
    now = timezone.now()
    make_decision(request=make_request(shop=shop, buyer_id="B1"), strategy=strategy)
    old = make_decision(
        request=make_request(shop=shop, buyer_id="B1"),
        strategy=strategy,
        decided_at=now - dt.timedelta(days=31),
    )
    refused = make_decision(request=make_request(shop=shop, buyer_id="B1"), strategy=strategy)
    decision_fail(decision_id=refused.pk, reason="refused by the platform")
    make_decision(request=make_request(shop=shop, buyer_id="B2"), strategy=strategy)
    assert old.outcome == "approved"
    second = request_decide(request_id=make_request(shop=shop, buyer_id="B1").pk)
    assert second.outcome == "approved"
    third = request_decide(request_id=make_request(shop=shop, buyer_id="B1").pk)
    assert third.outcome == "manual_review"
    assert [e["code"] for e in third.explanations] == ["buyer_limit_reached"]


def _decide_counting_queries(shop, django_assert_num_queries, expected: int) -> Decision:
    request = make_request(shop=shop, amount="1.00", buyer_id="BQ")
    with django_assert_num_queries(expected):
        return request_decide(request_id=request.pk)


# SAVEPOINT, request FOR UPDATE (+shop, order, items), strategies (+products, version, today's
# ledger, the order's approvals), buyer lock, buyer count, the ledger upsert with the decision's
# insert and the request's update (one statement), RELEASE SAVEPOINT.
DECIDE_QUERIES = 7


@pytest.mark.parametrize("strategies", [1, 10])
def test_the_query_count_does_not_grow_with_strategies(
    shop, sent, django_assert_num_queries, strategies
):
    for i in range(strategies):
        # All but the last miss on the per-request cap; the last hits.
        cap = None if i == strategies - 1 else Decimal("0.50")
        make_strategy(shop=shop, status="active", per_request_cap=cap, max_per_buyer_30d=5)
    first = make_strategy(shop=shop, status="active", scenario="post_shipment_no_return")
    make_decision(request=make_request(shop=shop, amount="1.00"), strategy=first)
    first.status = "inactive"
    first.save()
    ledgers_roll_over()  # today's rows exist (the first approval of the day costs the same)
    decision = _decide_counting_queries(shop, django_assert_num_queries, DECIDE_QUERIES)
    assert decision.outcome == "approved"
    assert len(decision.explanations) == strategies


@pytest.mark.parametrize("past", [0, 50])
def test_the_query_count_does_not_grow_with_past_decisions(
    shop, sent, django_assert_num_queries, past
):
    strategy = make_strategy(shop=shop, status="active", max_per_buyer_30d=100)
    make_decision(request=make_request(shop=shop, amount="1.00"), strategy=strategy)  # ledger
    for _ in range(past):
        make_decision(
            request=make_request(shop=shop, amount="1.00", buyer_id="BQ"), strategy=strategy
        )
    decision = _decide_counting_queries(shop, django_assert_num_queries, DECIDE_QUERIES)
    assert decision.outcome == "approved"


def test_the_first_approval_of_the_day_creates_the_ledger_row_in_the_same_statement(
    shop, sent, django_assert_num_queries
):
    make_strategy(shop=shop, status="active", max_per_buyer_30d=100)
    decision = _decide_counting_queries(shop, django_assert_num_queries, DECIDE_QUERIES)
    assert decision.ledger.consumed == Decimal("1.00")


def test_a_replay_only_reads_and_changes_nothing(shop, sent, django_assert_num_queries):
    make_strategy(shop=shop, status="active")
    request = make_request(shop=shop)
    first = request_decide(request_id=request.pk)
    # SAVEPOINT, request FOR UPDATE (with its items), its decision, RELEASE.
    with django_assert_num_queries(4):
        assert request_decide(request_id=request.pk).pk == first.pk


def test_the_first_request_refused_for_a_nearly_full_cap_asks_once_for_the_100_alert(
    shop, sent, django_capture_on_commit_callbacks
):
    strategy = make_strategy(shop=shop, status="active", daily_cap=Decimal("100.00"))
    make_decision(request=make_request(shop=shop, amount="99.95"), strategy=strategy)
    ledger = DailyLedger.objects.get(strategy=strategy)
    for _ in range(2):
        with django_capture_on_commit_callbacks(execute=True):
            decision = request_decide(request_id=make_request(shop=shop, amount="9.90").pk)
        assert decision.outcome == "manual_review"
    ledger.refresh_from_db()
    assert ledger.cap_refused_at is not None
    assert ledger.consumed == Decimal("99.95")
    assert sent == [("notifications.check_ledger_alerts", [ledger.pk])]


def test_a_request_too_big_for_a_cap_far_from_full_raises_no_alert(
    shop, sent, django_capture_on_commit_callbacks
):
    strategy = make_strategy(shop=shop, status="active", daily_cap=Decimal("100.00"))
    make_decision(request=make_request(shop=shop, amount="10.00"), strategy=strategy)
    order = make_order(shop=shop, items=[("P1001", 1, "500.00")])
    with django_capture_on_commit_callbacks(execute=True):
        decision = request_decide(
            request_id=make_request(shop=shop, order=order, amount="95.00").pk
        )
    assert [e["code"] for e in decision.explanations] == ["daily_cap_reached"]
    assert DailyLedger.objects.get(strategy=strategy).cap_refused_at is None
    assert sent == []


def test_the_orders_approvals_are_read_through_their_own_index(shop):
    """Found by bench/decide: with stale statistics the planner read the order's approvals
    through the per-buyer index, scanning every approval of the shop (14 ms at 20,000)."""
    strategy = make_strategy(shop=shop, status="active")
    for _ in range(30):
        make_decision(request=make_request(shop=shop), strategy=strategy)
    with CaptureQueriesContext(connection) as captured:
        strategies_load(
            shop_id=shop.pk,
            scenarios=("post_shipment_refund",),
            day=dt.date(2026, 11, 22),
            order_id="OD-1",
        )
    (query,) = captured.captured_queries
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # a tiny table: compare the indexes
        cursor.execute(f"EXPLAIN {query['sql']}")
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "decision_order_approvals" in plan, plan
