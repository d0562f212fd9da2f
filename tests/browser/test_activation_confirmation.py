"""Switching a strategy on in a real Chromium (issue 12 point 3, issue 15 point 3): from the
list's action and from the form, the merchant reads the strategy's sentence and its latest
backtest, gives a reason, confirms, and only then is it active; in Chinese and in English.
Any JavaScript error fails the test (the ``page`` fixture)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from playwright.sync_api import expect

from strategies.models import Strategy
from tests.factories import make_finished_backtest, make_strategy

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LIST = "/admin/strategies/strategy/?scenario=post_shipment_refund"

TEXT = {
    "en": {
        "sentence": "Automatically approves refund-only requests on shipped/received orders",
        "confirm_title": "Activate these strategies?",
        "backtest": "backtested 30 days: would approve 1,204 requests, 8,310.50",
        "done": "1 strategy set to “Active”",
        "form_box": "Switching on",
        "saved": "was changed successfully",
    },
    "zh-hans": {
        "sentence": "自动同意 已发货/已签收 订单的仅退款申请",
        "confirm_title": "确认开启这些策略？",
        "backtest": "回测 30 天：将自动同意 1,204 笔申请，共 8,310.50",
        "done": "已将 1 个策略设为“生效中”",
        "form_box": "开启策略",
        "saved": "成功",
    },
}


@pytest.fixture(autouse=True)
def no_broker(sent) -> list[tuple[str, list]]:
    return sent


@pytest.mark.parametrize("language_cookie", ["zh-hans", "en"])
def test_the_list_action_asks_with_the_sentence_and_the_backtest(
    login, owner, shop, live_server, language_cookie, screenshot
):
    text = TEXT[language_cookie]
    night = make_strategy(shop=shop, name="Night", per_request_cap=Decimal("25.50"))
    run = make_finished_backtest(shop=shop, strategy=night)
    page = login(owner)
    page.goto(f"{live_server.url}{LIST}")
    row = page.locator("#result_list tbody tr").filter(has_text="Night")
    expect(row.locator(".atom-summary")).to_contain_text(text["sentence"])
    screenshot(f"strategy-list-sentences-{language_cookie}")

    page.check(f'input.action-select[value="{night.pk}"]')
    page.select_option("select[name=action]", "make_active")
    page.click("button[name=index]")

    expect(page.locator("h1")).to_contain_text(text["confirm_title"])
    item = page.locator(".atom-confirm-row")
    expect(item.locator(".atom-summary")).to_contain_text(text["sentence"])
    expect(item.locator(".atom-summary")).to_contain_text("25.50")
    link = item.locator(".atom-backtest a")
    expect(link).to_have_text(text["backtest"])
    assert link.get_attribute("href").endswith(f"/backtestrun/{run.pk}/change/")
    screenshot(f"activate-confirm-{language_cookie}")
    assert Strategy.objects.get(pk=night.pk).status == "inactive"  # nothing yet

    page.fill("#id_change_reason", "checked the backtest")
    page.click("#atom-confirm-activate")
    expect(page.locator(".messagelist")).to_contain_text(text["done"])
    assert Strategy.objects.get(pk=night.pk).status == "active"
    assert night.history.first().history_change_reason == "checked the backtest"


@pytest.mark.parametrize("language_cookie", ["zh-hans", "en"])
def test_the_form_asks_before_switching_on_then_saves(
    login, owner, shop, live_server, language_cookie, screenshot
):
    text = TEXT[language_cookie]
    night = make_strategy(shop=shop, name="Night", per_request_cap=Decimal("25.50"))
    make_finished_backtest(shop=shop, strategy=night)
    page = login(owner)
    page.goto(f"{live_server.url}/admin/strategies/strategy/{night.pk}/change/")
    expect(page.locator(".atom-risk .atom-summary")).to_contain_text(text["sentence"])
    page.select_option("#id_status", "active")
    page.fill("#id_change_reason", "ready for the sale")
    page.click("input[name=_save]")

    box = page.locator("#atom-confirm")
    expect(box).to_be_visible()
    expect(box).to_contain_text(text["form_box"])
    expect(box.locator(".atom-backtest a")).to_have_text(text["backtest"])
    expect(page.locator("p.errornote")).to_be_hidden()
    expect(page.locator("#id_status")).to_have_value("active")  # what was chosen is kept
    screenshot(f"strategy-form-confirm-{language_cookie}")
    assert Strategy.objects.get(pk=night.pk).status == "inactive"

    page.click("#atom-confirm-save")
    expect(page.locator(".messagelist")).to_contain_text(text["saved"])
    assert Strategy.objects.get(pk=night.pk).status == "active"
    assert night.history.first().history_change_reason == "ready for the sale"
