"""The report: the baseline (what happened) next to the candidate, the changed requests by what
became of them, and per strategy its hits, shadows, cap and alerts, saved on the run."""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from strategies.backtest.loaders import Member, strategy_set
from strategies.backtest.services import backtest_execute, backtest_start, set_with
from strategies.matching import StrategySnapshot
from strategies.models import AfterSaleRequest, BacktestChange
from tests.factories import make_strategy
from tests.strategies.backtest.builders import payload, post_and_decide

SHANGHAI = ZoneInfo("Asia/Shanghai")
DAY = dt.date(2026, 9, 10)
NOW = dt.datetime(2026, 9, 17, 9, 0, tzinfo=SHANGHAI)  # the last 7 days: 09-10 .. 09-16


def at(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=SHANGHAI)


def run_report(shop, members, *, owner=None, **kwargs):
    run = backtest_start(
        shop=shop,
        members=members,
        kind=kwargs.pop("kind", "add"),
        title="test",
        days=7,
        actor=owner,
        now=NOW,
        **kwargs,
    )
    backtest_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == "done", run.error
    return run


def new_strategy(**fields) -> StrategySnapshot:
    defaults = {"name": "Candidate", "scenario": "post_shipment_refund", "status": "active"}
    return StrategySnapshot(id=-1, position=9, **{**defaults, **fields})


@pytest.fixture
def month(shop):
    """Day 1: a capped strategy takes three of five requests; two go to manual review (one of
    them later approved and executed... by nobody: it stays in the queue). Day 2: one more."""
    capped = make_strategy(
        shop=shop,
        status="active",
        name="Capped",
        daily_cap=Decimal("30.00"),
        per_request_cap=Decimal("20.00"),
    )
    decisions = [
        post_and_decide(shop, payload(applied_at=at(DAY, hour), amount=amount, buyer_id="BX9"))
        for hour, amount in (
            (9, "10.00"),
            (10, "10.00"),
            (11, "10.00"),
            (12, "10.00"),
            (13, "25.00"),
        )
    ]
    decisions.append(
        post_and_decide(shop, payload(applied_at=at(DAY + dt.timedelta(days=1), 8), amount="5.00"))
    )
    # The first approval was carried out by the platform.
    AfterSaleRequest.objects.filter(pk=decisions[0].request_id).update(status="executed")
    return capped, decisions


@pytest.mark.django_db
def test_a_new_strategy_shows_what_it_would_refund_that_people_handled(shop, owner, month):
    capped, decisions = month
    assert [d.outcome for d in decisions] == ["approved"] * 3 + ["manual_review"] * 2 + ["approved"]
    members = set_with(strategy_set(shop=shop), new_strategy(daily_cap=Decimal("100.00")))
    run = run_report(shop, members, owner=owner)
    report = run.report

    assert (report["requests"], report["skipped"], report["from_order_row"]) == (6, 0, 0)
    assert report["baseline"] == {"count": 4, "amount": "35.00"}
    assert report["candidate"] == {"count": 6, "amount": "70.00"}
    gained = report["changes"]["gained"]
    assert (gained["count"], gained["amount"]) == (2, "35.00")
    assert gained["by_reality"] == {"manual_review": {"count": 2, "amount": "35.00"}}
    assert report["headline"] == {"count": 2, "amount": "35.00", "reality": "manual_review"}
    assert report["changes"]["lost"]["count"] == report["changes"]["moved"]["count"] == 0
    assert [(d["day"], d["baseline"]["count"], d["candidate"]["count"]) for d in report["days"]][
        :2
    ] == [("2026-09-10", 3, 5), ("2026-09-11", 1, 1)]

    by_name = {s["name"]: s for s in report["strategies"]}
    c = by_name["Capped"]
    assert (c["hits"], c["baseline_hits"]) == ({"count": 4, "amount": "35.00"},) * 2
    assert c["cap_turned_away"] == 1  # 12:00 (10.00 on top of 30.00); 13:00 is over 20.00
    assert c["misses"] == {"daily_cap_reached": 1, "over_per_request_cap": 1}
    first_day = c["days"][0]
    assert (first_day["day"], first_day["cap_out_at"], first_day["alert_95"]) == (
        "2026-09-10",
        "11:00",
        True,
    )
    assert first_day["alert_100"] and not c["days"][1]["alert_100"]
    assert first_day["scenario_requests"] == 5
    candidate = by_name["Candidate"]
    assert candidate["hits"] == {"count": 2, "amount": "35.00"}
    assert candidate["shadowed"] == 4  # it would also have taken every one Capped took
    assert (candidate["unsaved"], c["unsaved"]) == (True, False)
    assert c["version"] == capped.history.latest().history_id

    # The changed requests are stored with the state they were replayed in; no buyer id.
    changes = list(BacktestChange.objects.filter(run=run))
    assert [(x.aftersale_id, x.kind, x.reality, x.candidate_strategy_name) for x in changes] == [
        (decisions[3].aftersale_id, "gained", "manual_review", "Candidate"),
        (decisions[4].aftersale_id, "gained", "manual_review", "Candidate"),
    ]
    assert changes[0].moment["consumed"] == {str(capped.pk): "30.00"}
    assert changes[0].codes == [[capped.pk, "daily_cap_reached"]]
    assert "BX9" not in str(run.report)


@pytest.mark.django_db
def test_switching_a_strategy_off_shows_what_it_would_no_longer_approve_by_reality(shop, month):
    capped, _decisions = month
    off = [
        dataclasses.replace(m.snapshot, status="inactive")
        if m.snapshot.id == capped.pk
        else m.snapshot
        for m in strategy_set(shop=shop)
    ]
    run = run_report(shop, [Member(s, None) for s in off], kind="edit", strategy=capped)
    lost = run.report["changes"]["lost"]
    assert (lost["count"], lost["amount"]) == (4, "35.00")
    assert lost["by_reality"] == {
        "approved": {"count": 3, "amount": "25.00"},
        "executed": {"count": 1, "amount": "10.00"},
    }
    assert run.report["headline"]["count"] == 0


@pytest.mark.django_db
def test_a_trial_strategy_reports_what_it_would_have_approved(shop, month):
    trial = make_strategy(shop=shop, status="trial", name="Trial", position=0)
    run = run_report(shop, strategy_set(shop=shop), kind="current")
    by_name = {s["name"]: s for s in run.report["strategies"]}
    assert by_name["Trial"]["would"] == {"count": 6, "amount": "70.00"}
    assert by_name["Trial"]["hits"]["count"] == 0
    assert run.report["changes"]["gained"]["count"] == 0
    assert trial.pk in {s["id"] for s in run.report["strategies"]}


@pytest.mark.django_db
def test_strategies_edited_during_the_period_are_reported_with_their_history_row(shop, month):
    capped, _decisions = month
    capped.daily_cap = Decimal("40.00")
    capped._history_date = at(DAY + dt.timedelta(days=2), 15)  # a change inside the period
    capped.save()
    run = run_report(shop, strategy_set(shop=shop), kind="current")
    edited = run.report["edited"]
    assert [(e["strategy_id"], e["history_id"], e["type"]) for e in edited] == [
        (capped.pk, capped.history.order_by("-history_id").first().history_id, "~")
    ]
    assert edited[0]["at"].startswith("2026-09-12T07:00")


@pytest.mark.django_db
def test_a_period_without_requests_is_done_and_says_so(shop):
    make_strategy(shop=shop, status="active")
    run = run_report(shop, strategy_set(shop=shop), kind="current")
    assert (run.total, run.processed, run.report["requests"]) == (0, 0, 0)
    assert len(run.report["days"]) == 7
