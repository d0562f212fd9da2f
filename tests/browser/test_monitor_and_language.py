"""The strategy monitor and the language switcher in a real Chromium."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.conf import settings
from playwright.sync_api import expect

from strategies.pipeline.decide import request_decide
from tests.factories import make_order, make_request, make_strategy

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

MONITOR = "/admin/monitoring/decisionlogentry/"


@pytest.fixture(autouse=True)
def no_broker(sent) -> list[tuple[str, list]]:
    """No worker in these tests: what the pipeline publishes is kept (the publish seam)."""
    return sent


def test_it_finds_a_decision_by_order_id_and_shows_why_strategies_were_passed_over(
    login, owner, shop, live_server, screenshot
):
    make_strategy(
        shop=shop,
        name="Tiny refunds",
        status="active",
        per_request_cap=Decimal("5.00"),
    )
    everyday = make_strategy(shop=shop, name="Everyday refunds", status="active")
    wanted = make_order(shop=shop, order_id="OD202611220001")
    decided = [
        request_decide(request_id=make_request(shop=shop, amount=amount).pk)
        for amount in ("3.50", "12.00", "8.80")
    ]
    target = request_decide(
        request_id=make_request(shop=shop, order=wanted, amount="9.90", buyer_id="B9").pk
    )
    assert target.strategy_id == everyday.pk
    assert [d.strategy_name for d in decided] == [
        "Tiny refunds",
        "Everyday refunds",
        "Everyday refunds",
    ]
    page = login(owner)
    page.goto(f"{live_server.url}{MONITOR}")
    expect(page.locator("#result_list tbody tr")).to_have_count(4)
    page.click("#toggle-nav-sidebar")  # room for the log's columns next to its filters
    expect(page.locator("#nav-sidebar")).to_be_hidden()
    screenshot("strategy-monitor")

    page.fill("#searchbar", "OD202611220001")
    page.press("#searchbar", "Enter")

    rows = page.locator("#result_list tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(target.aftersale_id)
    expect(rows.first).to_contain_text("Everyday refunds")
    rows.first.locator("th a, td a").first.click()

    table = page.locator("table.atom-explanations")
    expect(table).to_be_visible()
    expect(table.locator("tbody tr")).to_have_count(1)
    expect(table.locator("tbody tr").first).to_contain_text("Tiny refunds")
    assert target.explanations[0]["code"] in table.locator("tbody tr code").inner_text()
    screenshot("decision-explanations")


@pytest.mark.parametrize(("browser_locale", "language_cookie"), [("zh-CN", None)])
def test_it_switches_the_language_between_chinese_and_english(
    context, page, login, owner, shop, live_server, screenshot
):
    make_strategy(shop=shop, name="小额自动仅退款", status="active", per_request_cap=Decimal("10"))
    make_strategy(shop=shop, name="已发货订单：50 元以内", status="trial")
    # A merchant's Chinese browser, no language chosen yet.
    login(owner)
    assert page.evaluate("document.documentElement.lang") == "zh-hans"
    expect(page.locator("#atom-language-select")).to_have_value("zh-hans")

    with page.expect_navigation():
        page.select_option("#atom-language-select", "en")

    assert page.evaluate("document.documentElement.lang") == "en"
    assert page.url.endswith("/admin/")
    cookies = {c["name"]: c["value"] for c in context.cookies()}
    assert cookies[settings.LANGUAGE_COOKIE_NAME] == "en"
    expect(page.locator("#content-main")).to_contain_text("Automatic refund strategies")

    with page.expect_navigation():
        page.select_option("#atom-language-select", "zh-hans")

    assert page.evaluate("document.documentElement.lang") == "zh-hans"
    cookies = {c["name"]: c["value"] for c in context.cookies()}
    assert cookies[settings.LANGUAGE_COOKIE_NAME] == "zh-hans"

    # What a merchant sees by default: the strategy list in Chinese.
    page.goto(f"{live_server.url}/admin/strategies/strategy/?scenario=post_shipment_refund")
    expect(page.locator("#result_list")).to_contain_text("生效中")
    expect(page.locator("#result_list")).to_contain_text("试运行")
    screenshot("strategy-list-zh")
