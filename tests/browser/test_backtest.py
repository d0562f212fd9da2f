"""A backtest from the strategy form in a real Chromium, run by a real Celery worker: the
unsaved edit is backtested, the report page shows its progress bar while the run waits for a
worker, then the report; the CSV downloads without buyer ids."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from strategies.models import BacktestRun, Strategy
from tests.factories import make_strategy
from tests.strategies.backtest.builders import payload, post_and_decide

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]

SHANGHAI = ZoneInfo("Asia/Shanghai")


def test_a_backtest_from_the_form_runs_in_the_background_and_its_report_exports(
    login, owner, shop, live_server, celery_worker, screenshot
):
    strategy = make_strategy(
        shop=shop, status="active", name="Small refunds", per_request_cap=Decimal("20.00")
    )
    yesterday = timezone.now().astimezone(SHANGHAI).date() - dt.timedelta(days=1)
    for hour, amount in ((9, "10.00"), (10, "15.00"), (11, "45.00"), (12, "60.00"), (13, "35.00")):
        post_and_decide(
            shop,
            payload(
                applied_at=dt.datetime.combine(yesterday, dt.time(hour), tzinfo=SHANGHAI),
                amount=amount,
                buyer_id="BUYER-SECRET-7",
            ),
        )

    page = login(owner)
    page.goto(f"{live_server.url}/admin/strategies/strategy/{strategy.pk}/change/")
    page.fill("#id_per_request_cap", "50.00")  # typed, never saved
    page.select_option("#id_backtest_days", "7")
    page.click("button[name=_backtest]")

    # No worker yet: the report page waits with its progress bar.
    expect(page.locator("#atom-backtest-progress")).to_be_visible()
    expect(page.locator("#atom-backtest-status")).to_have_text("Queued")
    run = BacktestRun.objects.get(shop=shop)
    assert (run.status, run.kind) == ("queued", "edit")
    strategy.refresh_from_db()
    assert strategy.per_request_cap == Decimal("20.00")

    celery_worker()  # the page polls the status and turns into the report by itself
    expect(page.locator("#atom-backtest-headline")).to_contain_text(
        "Would have auto-refunded 80.00 on 2 requests", timeout=30_000
    )
    expect(page.locator("#atom-backtest-progress")).to_be_hidden()
    expect(page.locator("#atom-backtest-changes tbody tr")).to_have_count(2)
    screenshot("backtest-report")

    with page.expect_download() as info:
        page.click("#atom-backtest-csv")
    text = Path(info.value.path()).read_text(encoding="utf-8-sig")
    lines = text.strip().splitlines()
    assert lines[0].startswith("Decided at (shop time),After-sales id")
    assert len(lines) == 3 and all("Would be auto-approved" in line for line in lines[1:])
    assert "BUYER-SECRET-7" not in text

    # The trace of a changed request shows the check that changed, with its values.
    page.locator("#atom-backtest-changes tbody tr a").first.click()
    expect(page.locator("table.atom-trace").first).to_contain_text("45.00 <= 50.00")
    assert Strategy.objects.get(pk=strategy.pk).per_request_cap == Decimal("20.00")
