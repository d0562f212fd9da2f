"""The strategy admin in a real Chromium, as a shop owner sees it: the small-amount template,
the cap error, drag-to-reorder, the trial action and today's consumption bars."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from playwright.sync_api import Page, expect

from strategies.models import Decision, Strategy
from strategies.pipeline.decide import request_decide
from tests.factories import make_ledger, make_request, make_strategy

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCENARIO = "post_shipment_refund"
LIST = "/admin/strategies/strategy/"
RED = "rgb(198, 40, 40)"  # strategies.admin: the consumption bar above 90%
GREEN = "rgb(46, 125, 50)"


@pytest.fixture(autouse=True)
def no_broker(sent) -> list[tuple[str, list]]:
    """No worker in these tests: what the pipeline publishes is kept (the publish seam)."""
    return sent


def row_names(page: Page) -> list[str]:
    return page.locator("#result_list tbody tr th.field-name a").all_inner_texts()


def decide_new_request(shop) -> Decision:
    return request_decide(request_id=make_request(shop=shop, amount="9.90").pk)


def test_it_creates_the_small_amount_strategy_inactive_and_refuses_a_cap_above_20(
    login, owner, shop, live_server, screenshot
):
    page = login(owner)
    page.locator("#content-main").get_by_role("link", name="Strategies", exact=True).click()
    # The list opens on the first scenario tab; this shop has no strategy yet.
    expect(page.locator(".atom-empty")).to_contain_text("No strategy yet")
    page.locator("#content-main a.atom-template").first.click()

    # The browser itself refuses 20.01 in the template's form (max 20.00)...
    page.fill("#id_per_request_cap", "20.01")
    page.click("input[type=submit]")
    assert page.eval_on_selector("#id_per_request_cap", "el => el.validity.rangeOverflow")
    assert not Strategy.objects.filter(shop=shop).exists()

    page.fill("#id_per_request_cap", "15.00")
    page.click("input[type=submit]")
    expect(page.locator(".messagelist")).to_contain_text("created inactive")
    expect(page.locator("#id_status")).to_have_value("inactive")
    strategy = Strategy.objects.get(shop=shop)
    assert (strategy.template, strategy.status, strategy.per_request_cap) == (
        "small_amount",
        "inactive",
        Decimal("15.00"),
    )
    screenshot("strategy-form")

    # ...and the server refuses it in the strategy's own form, saying why.
    page.fill("#id_per_request_cap", "20.01")
    page.click("input[name=_save]")
    expect(page.locator(".errornote")).to_be_visible()
    expect(page.locator(".field-per_request_cap .errorlist")).to_contain_text(
        "may be at most 20.00"
    )
    strategy.refresh_from_db()
    assert strategy.per_request_cap == Decimal("15.00")

    page.goto(f"{live_server.url}{LIST}?scenario={SCENARIO}")
    row = page.locator("#result_list tbody tr").filter(has_text="Small-amount")
    expect(row.locator(".atom-badge")).to_have_text("Inactive")


def test_dragging_a_strategy_above_another_changes_which_one_a_request_hits(
    login, owner, shop, live_server
):
    first = make_strategy(shop=shop, name="First refunds", status="active")
    second = make_strategy(shop=shop, name="Second refunds", status="active")
    assert decide_new_request(shop).strategy_id == first.pk
    page = login(owner)
    page.goto(f"{live_server.url}{LIST}?scenario={SCENARIO}")
    assert row_names(page) == ["First refunds", "Second refunds"]

    handle = page.locator(f'div.drag.handle[pk="{second.pk}"]').bounding_box()
    above = page.locator(f'div.drag.handle[pk="{first.pk}"]').bounding_box()
    assert handle and above
    x = handle["x"] + handle["width"] / 2
    # A real mouse drag of the row's handle up to the top edge of the first row.
    with page.expect_response(lambda r: "adminsortable2_update" in r.url) as moved:
        page.mouse.move(x, handle["y"] + handle["height"] / 2)
        page.mouse.down()
        page.mouse.move(x, above["y"] + 2, steps=15)
        page.mouse.up()
    assert moved.value.status == 200

    page.reload()
    assert row_names(page) == ["Second refunds", "First refunds"]
    assert list(
        Strategy.objects.filter(shop=shop).order_by("position").values_list("pk", "position")
    ) == [(second.pk, 1), (first.pk, 2)]
    assert decide_new_request(shop).strategy_id == second.pk


def test_the_trial_action_switches_the_selected_strategy(login, owner, shop, live_server):
    kept = make_strategy(shop=shop, name="Kept active", status="active")
    tried = make_strategy(shop=shop, name="To try", status="inactive")
    page = login(owner)
    page.goto(f"{live_server.url}{LIST}?scenario={SCENARIO}")

    page.check(f'input.action-select[value="{tried.pk}"]')
    page.select_option("select[name=action]", "make_trial")
    page.click("button[name=index]")

    expect(page.locator(".messagelist")).to_contain_text("1 strategy set to “Trial run”")
    row = page.locator("#result_list tbody tr").filter(has_text="To try")
    expect(row.locator(".atom-badge")).to_have_text("Trial run")
    assert Strategy.objects.get(pk=tried.pk).status == "trial"
    assert Strategy.objects.get(pk=kept.pk).status == "active"


def test_a_consumption_bar_turns_red_above_90_percent(login, owner, shop, live_server, screenshot):
    busy = make_strategy(
        shop=shop,
        name="Small refunds",
        status="active",
        daily_cap=Decimal("1000.00"),
        per_request_cap=Decimal("20.00"),
    )
    calm = make_strategy(
        # active: a trial strategy's row shows what it would approve instead of a bar
        shop=shop,
        name="Damaged on arrival",
        status="active",
        daily_cap=Decimal("5000.00"),
    )
    make_strategy(shop=shop, name="Holiday backlog", status="inactive")
    make_ledger(strategy=busy, consumed="910.00", approved_count=61)
    make_ledger(strategy=calm, consumed="1200.00", approved_count=12)
    make_strategy(shop=shop, scenario="pre_shipment_refund", name="Cancelled before shipping")
    page = login(owner)

    page.goto(f"{live_server.url}{LIST}?scenario={SCENARIO}")
    red = page.locator("#result_list tbody tr").filter(has_text="Small refunds")
    expect(red.locator(".atom-consumption")).to_have_class(re.compile(r"\batom-warning\b"))
    expect(red.locator(".atom-consumption span")).to_have_text("91.00%")
    expect(red.locator(".atom-consumption span")).to_have_css("color", RED)
    green = page.locator("#result_list tbody tr").filter(has_text="Damaged on arrival")
    expect(green.locator(".atom-consumption span")).to_have_css("color", GREEN)
    expect(page.locator(".atom-tabs li.active .atom-count")).to_have_text("3")
    screenshot("strategy-list")

    page.goto(f"{live_server.url}/admin/monitoring/consumption/dashboard/")
    bar = page.locator(f'tr[data-strategy="{busy.pk}"] .atom-bar')
    expect(bar).to_have_class(re.compile(r"\batom-warning\b"))
    expect(bar.locator("span")).to_have_css("background-color", "rgb(229, 57, 53)")
    expect(page.locator(f'tr[data-strategy="{calm.pk}"] .atom-bar')).not_to_have_class(
        re.compile(r"\batom-warning\b")
    )
    screenshot("consumption-dashboard")
