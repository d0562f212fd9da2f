"""An owner settles a request the platform could not (status `unknown`) in a real Chromium:
the notice, the filtered list, the action, the confirmation page (issue 11.2)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from playwright.sync_api import expect

from strategies.models import AfterSaleRequest, DailyLedger, ExecutionConfirmation
from tests.factories import make_decision, make_request

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_owner_confirms_not_paid_from_the_notice(login, owner, shop, live_server, screenshot):
    decision = make_decision(request=make_request(shop=shop, aftersale_id="AS-AMBIGUOUS"))
    AfterSaleRequest.objects.filter(pk=decision.request_id).update(status="unknown")
    make_request(shop=shop, aftersale_id="AS-OTHER")
    page = login(owner)
    notice = page.locator("#atom-awaiting-confirmation")
    expect(notice).to_contain_text("1 after-sales request awaits confirmation")
    expect(page.locator("#atom-simulated-gateway")).to_be_visible()  # the tests' gateway
    notice.get_by_role("link").click()
    expect(page.locator("#result_list")).to_contain_text("AS-AMBIGUOUS")
    expect(page.locator("#result_list")).not_to_contain_text("AS-OTHER")
    page.locator("input[name=_selected_action]").first.check()
    page.select_option("select[name=action]", "confirm_not_paid")
    page.click("button[name=index]")
    expect(page.locator("#content")).to_contain_text("did NOT pay")
    screenshot("confirm-not-paid")
    page.get_by_role("button", name="Yes, they were not paid").click()
    expect(page.locator(".messagelist")).to_contain_text("1 request confirmed “Not paid”")
    expect(page.locator("#atom-awaiting-confirmation")).to_have_count(0)
    assert AfterSaleRequest.objects.get(pk=decision.request_id).status == "failed"
    assert DailyLedger.objects.get(pk=decision.ledger_id).consumed == Decimal("0.00")
    assert ExecutionConfirmation.objects.get().user == owner


def test_an_owner_confirms_a_review_left_unknown_paid_in_the_queue(login, owner, shop, live_server):
    """A person's approval the platform could not settle: the queue's unknown tab, the same
    confirmation page, the request executed (issue 14)."""
    from strategies.models import Review, ReviewConfirmation
    from strategies.pipeline.review import _finish, review_submit

    request = make_request(shop=shop, aftersale_id="AS-R-AMBIGUOUS", amount="9.90")
    make_decision(request=request, outcome="manual_review")
    request.refresh_from_db()
    _, review = review_submit(
        request_id=request.pk, action="approve", user=owner, seen_version=request.updated_at
    )
    _finish(review, "unknown", "kuaishou: timeout, the platform did not say")
    page = login(owner)
    page.goto(f"{live_server.url}/admin/monitoring/reviewqueueentry/?tab=unknown")
    expect(page.locator("#result_list")).to_contain_text("AS-R-AMBIGUOUS")
    page.locator("input[name=_selected_action]").first.check()
    page.select_option("select[name=action]", "confirm_paid")
    page.click("button[name=index]")
    expect(page.locator("#content")).to_contain_text("the platform did not say")
    page.get_by_role("button", name="Yes, they were paid").click()
    expect(page.locator(".messagelist")).to_contain_text("1 request confirmed “Paid”")
    expect(page.locator("#result_list")).to_have_count(0)  # nothing else awaits confirmation
    assert Review.objects.get(pk=review.pk).result == "done"
    assert AfterSaleRequest.objects.get(pk=request.pk).status == "executed"
    assert ReviewConfirmation.objects.get().user == owner
