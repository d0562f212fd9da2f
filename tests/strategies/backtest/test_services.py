"""Backtest runs: queued with its task, one at a time per shop, claimed once, cancellable,
progress saved as it goes; nothing live is touched."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone, translation

from strategies.backtest.loaders import strategy_set
from strategies.backtest.services import (
    STALE_AFTER,
    backtest_cancel,
    backtest_execute,
    backtest_start,
    members_decode,
    members_encode,
)
from strategies.models import BacktestRun, DailyLedger, Decision, Product
from strategies.tasks import run_backtest
from tests.factories import make_product, make_strategy
from tests.strategies.backtest.builders import payload, post_and_decide

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = dt.datetime(2026, 9, 17, 9, 0, tzinfo=SHANGHAI)


def start(shop, **kwargs):
    defaults = {"members": strategy_set(shop=shop), "kind": "current", "title": "as is", "days": 7}
    return backtest_start(shop=shop, now=kwargs.pop("now", NOW), **{**defaults, **kwargs})


@pytest.mark.django_db
def test_starting_queues_the_run_and_its_task_and_a_second_is_refused(
    shop, owner, sent, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        run = start(shop, actor=owner)
    assert sent == [("strategies.run_backtest", [run.pk])]
    assert (run.status, run.created_by, run.first_day, run.last_day) == (
        "queued",
        owner,
        dt.date(2026, 9, 10),
        dt.date(2026, 9, 16),
    )
    with translation.override("en"), pytest.raises(ValidationError, match="already running"):
        start(shop)
    assert BacktestRun.objects.filter(shop=shop).count() == 1


@pytest.mark.django_db
def test_a_run_whose_worker_died_no_longer_blocks_the_shop(shop):
    stuck = start(shop)
    later = NOW + STALE_AFTER + dt.timedelta(seconds=1)
    fresh = start(shop, now=later)
    stuck.refresh_from_db()
    assert (stuck.status, fresh.status) == ("failed", "queued")
    assert "stopped answering" in stuck.error


@pytest.mark.django_db
def test_a_bad_period_is_refused_and_stores_nothing(shop):
    # In the default interface language (a request earlier in the run may have left another).
    with translation.override("zh-hans"), pytest.raises(ValidationError, match="7、30 或 90"):
        start(shop, days=8)
    assert not BacktestRun.objects.exists()


@pytest.mark.django_db
def test_the_task_runs_it_once_and_a_redelivered_copy_does_nothing(shop):
    make_strategy(shop=shop, status="active", daily_cap=Decimal("15.00"))
    for hour in (9, 10):
        post_and_decide(shop, payload(applied_at=dt.datetime(2026, 9, 12, hour, tzinfo=SHANGHAI)))
    ledgers = list(DailyLedger.objects.values_list("id", "consumed", "approved_count"))
    decisions = list(Decision.objects.values_list("id", "outcome", "strategy_id"))
    run = start(shop)
    assert run_backtest(run.pk) == "done"
    assert run_backtest(run.pk) == "not-claimed"
    run.refresh_from_db()
    assert (run.total, run.processed, run.report["requests"]) == (2, 2, 2)
    assert run.started_at is not None and run.finished_at is not None
    # Nothing live was touched.
    assert list(DailyLedger.objects.values_list("id", "consumed", "approved_count")) == ledgers
    assert list(Decision.objects.values_list("id", "outcome", "strategy_id")) == decisions


@pytest.mark.django_db
def test_a_queued_run_cancelled_never_runs(shop):
    run = start(shop)
    assert backtest_cancel(run=run)
    assert backtest_execute(run_id=run.pk) is None
    run.refresh_from_db()
    assert run.status == "cancelled"
    assert not backtest_cancel(run=run)  # repeat-safe
    start(shop)  # the shop is free again


@pytest.mark.django_db
def test_a_running_run_stops_at_its_next_progress_update_when_cancelled(shop):
    make_strategy(shop=shop, status="active")
    for hour in range(9, 15):
        post_and_decide(shop, payload(applied_at=dt.datetime(2026, 9, 12, hour, tzinfo=SHANGHAI)))
    run = start(shop)
    seen: list[int] = []

    def on_progress(processed: int) -> None:
        seen.append(processed)
        if processed == 2:
            backtest_cancel(run=run)

    backtest_execute(run_id=run.pk, progress_every=2, on_progress=on_progress)
    run.refresh_from_db()
    assert seen == [2]
    assert (run.status, run.processed, run.total) == ("cancelled", 2, 6)


@pytest.mark.django_db
def test_the_replayed_set_is_stored_and_read_back_as_it_was(shop):
    product = make_product(shop=shop, product_id="P-9")
    strategy = make_strategy(
        shop=shop,
        status="active",
        valid_from=timezone.now(),
        window_start=dt.time(22),
        window_end=dt.time(8),
        per_request_cap=Decimal("9.90"),
        reasons=["quality_issue"],
        max_per_buyer_30d=2,
    )
    strategy.products.add(product)
    members = strategy_set(shop=shop)
    assert members_decode(members_encode(members)) == members
    assert Product.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_in_a_worker_the_requests_are_read_ahead_on_other_connections_with_the_same_result(
    shop,
):
    """Outside a transaction (as the Celery task runs) the streams are read ahead by threads
    with connections of their own; the report is the one read inline gives."""
    make_strategy(shop=shop, status="active", daily_cap=Decimal("25.00"))
    for day, hour in ((12, 9), (12, 10), (12, 11), (13, 9)):
        post_and_decide(shop, payload(applied_at=dt.datetime(2026, 9, day, hour, tzinfo=SHANGHAI)))
    run = start(shop)
    backtest_execute(run_id=run.pk, progress_every=1)
    run.refresh_from_db()
    assert (run.status, run.processed) == ("done", 4)
    assert run.report["baseline"] == run.report["candidate"] == {"count": 3, "amount": "30.00"}
    assert [d["candidate"]["count"] for d in run.report["days"][2:4]] == [2, 1]
