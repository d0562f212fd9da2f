"""A trial strategy's figures as a merchant sees them (issue 12, 7): the strategy list and the
consumption dashboard say what it would have approved today and over 7 and 30 days, in Chinese
and English, without a bar of its own (a trial run consumes no cap)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from strategies.models import TrialHit
from tests.factories import make_ledger, make_log_decision, make_strategy

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LIST = "/admin/strategies/strategy/?scenario=post_shipment_refund"
DASHBOARD = "/admin/monitoring/consumption/dashboard/"

TEXT = {
    "en": {
        "today": "today: would approve 2 requests / 1,234.50",
        "month": "30 days: would approve 3 requests / 1,334.50",
    },
    "zh-hans": {
        "today": "将同意 2 笔 / 1,234.50",
        "month": "将同意 3 笔 / 1,334.50",
    },
}


def would_hit(shop, strategy, amount: str, days_ago: int) -> None:
    TrialHit.objects.create(
        decision=make_log_decision(shop=shop, outcome="manual_review"),
        shop=shop,
        strategy=strategy,
        day=timezone.now().astimezone(shop.zone).date() - dt.timedelta(days=days_ago),
        amount=Decimal(amount),
    )


@pytest.mark.parametrize("language_cookie", ["zh-hans", "en"])
def test_a_trial_strategys_figures_show_in_the_list_and_the_dashboard(
    login, owner, shop, live_server, language_cookie, screenshot
):
    text = TEXT[language_cookie]
    active = make_strategy(
        shop=shop, name="小额仅退款", status="active", daily_cap=Decimal("3000.00")
    )
    make_ledger(strategy=active, consumed="1200.00", approved_count=40)
    trial = make_strategy(shop=shop, name="夜间试运行", status="trial")
    would_hit(shop, trial, "1000.00", 0)
    would_hit(shop, trial, "234.50", 0)
    would_hit(shop, trial, "100.00", 12)
    page = login(owner)
    page.set_viewport_size({"width": 1366, "height": 768})

    page.goto(live_server.url + LIST)
    row = page.locator("#result_list tbody tr").filter(has_text="夜间试运行")
    figures = row.locator(".atom-trial-figures")
    expect(figures).to_contain_text(text["today"])
    expect(figures).to_contain_text(text["month"])
    screenshot(f"trial-figures-list-{language_cookie}")

    page.goto(live_server.url + DASHBOARD)
    trial_row = page.locator(f'tr[data-strategy="{trial.pk}"]')
    expect(trial_row).to_contain_text(text["today"])
    expect(trial_row.locator(".atom-bar")).to_have_count(0)
    expect(page.locator(f'tr[data-strategy="{active.pk}"] .atom-bar')).to_have_count(1)
    screenshot(f"trial-figures-dashboard-{language_cookie}")
