"""Issue 12 in a real Chromium: a drag renumbers the priorities on the page and confirms it
("优先级已保存"), and adding a strategy starts with the scenario picker and lands back on the
scenario's tab (11). The page fixture fails a test on any JavaScript error."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from strategies.models import Strategy
from tests.factories import make_strategy

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCENARIO = "post_shipment_refund"
LIST = "/admin/strategies/strategy/"


@pytest.fixture(autouse=True)
def no_broker(sent):
    return sent


def priorities(page: Page) -> list[tuple[str, str]]:
    rows = page.locator("#result_list tbody tr")
    return [
        (
            rows.nth(i).locator("th.field-name a").inner_text(),
            rows.nth(i).locator("td.field-priority").inner_text(),
        )
        for i in range(rows.count())
    ]


_STANDS_BEFORE = """([moved, onto]) => {
    const rows = [...document.querySelectorAll("#result_list tbody tr")];
    const at = (pk) => rows.findIndex((r) => r.querySelector(`.handle[pk="${pk}"]`));
    return at(moved) >= 0 && at(moved) < at(onto);
}"""


def drag(page: Page, moved: Strategy, onto: Strategy) -> None:
    page.locator(f'div.drag.handle[pk="{moved.pk}"]').scroll_into_view_if_needed()
    handle = page.locator(f'div.drag.handle[pk="{moved.pk}"]').bounding_box()
    # The target's whole row, not its handle: rows grow with their wrapped summary sentence,
    # and a drop must pass the row's upper part to land before it.
    target = (
        page.locator("#result_list tbody tr")
        .filter(has=page.locator(f'div.drag.handle[pk="{onto.pk}"]'))
        .bounding_box()
    )
    assert handle and target
    x = handle["x"] + handle["width"] / 2
    with page.expect_response(lambda r: "adminsortable2_update" in r.url) as answer:
        page.mouse.move(x, handle["y"] + handle["height"] / 2)
        page.mouse.down()
        # Release only once the row stands before its target: under load the browser's native
        # drag starts late, and a release too early drops the row where it was. Sweep over the
        # target's upper half again until it does.
        for _sweep in range(5):
            page.mouse.move(x, target["y"] + target["height"] / 2, steps=10)
            page.mouse.move(x, target["y"] + 3, steps=10)
            if page.evaluate(_STANDS_BEFORE, [str(moved.pk), str(onto.pk)]):
                break
            page.wait_for_timeout(200)
        page.mouse.up()
    assert answer.value.status == 200, answer.value.text()


@pytest.mark.parametrize(
    ("language_cookie", "saved"), [("en", "Priorities saved."), ("zh-hans", "优先级已保存")]
)
def test_a_drag_renumbers_the_priorities_on_the_page_and_says_so(
    login, owner, shop, live_server, saved
):
    first = make_strategy(shop=shop, name="First", status="active")
    second = make_strategy(shop=shop, name="Second", status="active")
    third = make_strategy(shop=shop, name="Third", status="active")
    page = login(owner)
    page.goto(f"{live_server.url}{LIST}?scenario={SCENARIO}")
    assert priorities(page) == [("First", "1"), ("Second", "2"), ("Third", "3")]

    drag(page, third, first)

    # No reload: the numbers follow the rows, and a message confirms.
    expect(page.locator("ul.messagelist li.atom-reorder-message")).to_contain_text(saved)
    expect(page.locator("#result_list tbody tr td.field-priority").first).to_have_text("1")
    expect(page.locator("#result_list tbody tr th.field-name a").first).to_have_text("Third")
    assert priorities(page) == [("Third", "1"), ("First", "2"), ("Second", "3")]
    stored = Strategy.objects.filter(shop=shop).order_by("position")
    assert [(s.name, s.position) for s in stored] == [("Third", 1), ("First", 2), ("Second", 3)]

    # A second drag starts from the renumbered handles.
    drag(page, second, first)
    expect(page.locator("#result_list tbody tr th.field-name a").nth(1)).to_have_text("Second")
    assert priorities(page) == [("Third", "1"), ("Second", "2"), ("First", "3")]
    stored = Strategy.objects.filter(shop=shop).order_by("position")
    assert [(s.name, s.position) for s in stored] == [("Third", 1), ("Second", 2), ("First", 3)]


def test_the_sidebar_add_opens_the_scenario_picker_and_saving_lands_on_its_tab(
    login, owner, shop, live_server
):
    make_strategy(shop=shop, scenario="tagged_refund_no_return", name="Tagged one")
    page = login(owner)
    page.goto(f"{live_server.url}{LIST}?scenario=tagged_refund_no_return")
    # The admin's navigation sidebar: "+ Add" next to Strategies.
    page.locator("#nav-sidebar tr.model-strategy a.addlink").click()
    expect(page.locator("h1")).to_contain_text("choose its scenario")
    assert page.locator(".atom-picker li").count() == 5
    page.locator('.atom-picker a[data-scenario="post_shipment_return_refund"]').click()

    page.fill("#id_name", "Returns up to 50")
    page.fill("#id_daily_cap", "1000.00")
    page.fill("#id_per_request_cap", "50.00")
    page.click("input[name=_save]")

    active = page.locator(".atom-tabs li.active")
    expect(active).to_contain_text("automatic return and refund")
    assert "scenario=post_shipment_return_refund" in page.url
    expect(page.locator("#result_list")).to_contain_text("Returns up to 50")
    assert Strategy.objects.get(name="Returns up to 50").scenario == "post_shipment_return_refund"
