"""An owner works the review queue (人工审核) in a real Chromium at 1366x768, in Chinese and
English: the tabs, a bulk approval with its summary, a refusal with a reason (issue 14)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from strategies.models import AfterSaleRequest, Review
from tests.factories import make_decision, make_order, make_request

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

QUEUE = "/admin/monitoring/reviewqueueentry/"


def waiting(shop, aftersale_id: str, amount: str) -> AfterSaleRequest:
    order = make_order(shop=shop, items=[("P1", 1, "100.00")])
    request = make_request(shop=shop, order=order, aftersale_id=aftersale_id, amount=amount)
    make_decision(request=request, outcome="manual_review")
    return request


def select(page, *aftersale_ids: str) -> None:
    for aftersale_id in aftersale_ids:
        page.locator("#result_list tr", has_text=aftersale_id).locator(
            "input[name=_selected_action]"
        ).check()


@pytest.mark.parametrize(
    ("language_cookie", "confirm_text", "taken"),
    [
        ("en", "2 requests, 15.50 in all.", "2 requests taken"),
        ("zh-hans", "2 个售后单，合计 15.50。", "已受理 2 个售后单"),
    ],
)
def test_an_owner_approves_in_bulk_and_refuses_with_a_reason(
    login, owner, shop, live_server, screenshot, language_cookie, confirm_text, taken
):
    waiting(shop, "AS-BULK-1", "10.00")
    waiting(shop, "AS-BULK-2", "5.50")
    waiting(shop, "AS-REFUSE", "3.00")
    page = login(owner)
    page.set_viewport_size({"width": 1366, "height": 768})
    page.goto(live_server.url + QUEUE)
    expect(page.locator("#result_list")).to_contain_text("AS-REFUSE")
    # The widest column still fits: nothing narrower than its content.
    overflow = page.evaluate(
        "() => [...document.querySelectorAll('#result_list td')]"
        ".filter(td => td.scrollWidth > td.clientWidth + 1).length"
    )
    assert overflow == 0
    screenshot(f"review-queue-{language_cookie}")
    select(page, "AS-BULK-1", "AS-BULK-2")
    page.select_option("select[name=action]", "review_approve")
    page.click("button[name=index]")
    expect(page.locator(".atom-review-summary")).to_have_text(confirm_text)
    assert not Review.objects.exists()  # nothing until confirmed
    page.locator("input.atom-confirm").click()
    expect(page.locator(".messagelist")).to_contain_text(taken)
    assert sorted(Review.objects.values_list("request__aftersale_id", flat=True)) == [
        "AS-BULK-1",
        "AS-BULK-2",
    ]
    select(page, "AS-REFUSE")
    page.select_option("select[name=action]", "review_refuse")
    page.click("button[name=index]")
    page.fill("#id_review_reason", "商品已使用 / goods used")
    page.locator("input.atom-confirm").click()
    expect(page.locator(".messagelist")).to_be_visible()
    refusal = Review.objects.get(request__aftersale_id="AS-REFUSE")
    assert (refusal.action, refusal.reason, refusal.user) == (
        "refuse",
        "商品已使用 / goods used",
        owner,
    )
