"""A 95% alert leads somewhere (issue 12, 10), walked in a real Chromium: the owner opens the
notice, follows "pause this strategy", confirms once, and lands back on the notice with the
strategy paused and the pause kept in its history."""

from __future__ import annotations

from decimal import Decimal

import pytest
from playwright.sync_api import expect

from notifications.models import Notice
from notifications.services import alerts_check_ledger
from strategies.models import Strategy
from tests.factories import make_ledger, make_strategy

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

TEXT = {
    "en": {"pause": "Pause this strategy", "raise": "Raise the cap"},
    "zh-hans": {"pause": "暂停此策略", "raise": "提高上限"},
}


@pytest.mark.parametrize("language_cookie", ["zh-hans", "en"])
def test_the_owner_pauses_a_strategy_from_its_alert(
    login, owner, shop, live_server, language_cookie, screenshot
):
    text = TEXT[language_cookie]
    strategy = make_strategy(
        shop=shop, name="小额退款", status="active", daily_cap=Decimal("2000.00")
    )
    alerts_check_ledger(ledger_id=make_ledger(strategy=strategy, consumed="1920.00").pk)
    notice = Notice.objects.get(alert__strategy=strategy)
    page = login(owner)
    page.set_viewport_size({"width": 1366, "height": 768})
    page.goto(f"{live_server.url}/admin/notifications/notice/{notice.pk}/change/")
    expect(page.get_by_role("link", name=text["raise"])).to_be_visible()
    screenshot(f"alert-notice-{language_cookie}")

    page.get_by_role("link", name=text["pause"]).click()
    assert Strategy.objects.get(pk=strategy.pk).status == "active"  # nothing until confirmed
    page.click("#atom-confirm-pause")
    expect(page).to_have_url(f"{live_server.url}/admin/notifications/notice/{notice.pk}/change/")
    paused = Strategy.objects.get(pk=strategy.pk)
    assert paused.status == "inactive"
    assert paused.history.first().history_user == owner
