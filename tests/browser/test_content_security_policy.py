"""The admin works under its Content-Security-Policy in a real Chromium: every page an operator
opens runs without a refused script or style (the ``page`` fixture also fails on any console
error, which is where Chromium reports a refusal), and the behaviours moved out of inline
handlers still work: the shop switcher of the consumption dashboard, the crontab help of the
periodic task form."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from django_celery_beat.models import CrontabSchedule
from playwright.sync_api import Page, expect

from tests.factories import make_log_decision, make_shop, make_strategy

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Collects the browser's own reports of refused content (a Playwright init script is not
# subject to the page's policy).
RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(`${event.violatedDirective} ${event.blockedURI}`);
});
"""


@pytest.fixture
def operator(db):
    return User.objects.create_superuser("operator", "op@example.com", "pw-for-tests-1")


def violations(page: Page) -> list[str]:
    return page.evaluate("window.__cspViolations")


def test_an_operator_goes_through_the_admin_and_nothing_is_refused(
    page, login, operator, shop, live_server
):
    strategy = make_strategy(shop=shop, name="Small refunds", per_request_cap=Decimal("10"))
    make_log_decision(shop=shop, strategy=strategy)
    other = make_shop(code="shop-z", name="Shop Z")
    make_strategy(shop=other, name="Zed strategy", per_request_cap=Decimal("10"))
    CrontabSchedule.objects.create(minute="5", hour="2")
    page.add_init_script(RECORD_VIOLATIONS)
    login(operator)

    for path in (
        "/admin/",
        "/admin/strategies/strategy/?scenario=post_shipment_refund",
        f"/admin/strategies/strategy/{strategy.pk}/change/",
        f"/admin/strategies/strategy/{strategy.pk}/history/",
        "/admin/monitoring/decisionlogentry/",
        "/admin/notifications/notice/",
        "/admin/axes/accessattempt/",
    ):
        page.goto(f"{live_server.url}{path}")
        expect(page.locator("#content")).to_be_visible()
        assert violations(page) == [], path

    # The shop switcher submits on change (atom/admin.js, no inline onchange).
    page.goto(f"{live_server.url}/admin/monitoring/consumption/dashboard/")
    # (an inactive strategy is folded into a second table: the one holding it is enough)
    expect(page.locator(".atom-consumption", has_text="Small refunds")).to_have_count(1)
    with page.expect_navigation():
        page.locator("select[name=shop]").select_option(label=str(other))
    assert "shop=" in page.url
    expect(page.locator(".atom-consumption", has_text="Zed strategy")).to_have_count(1)
    assert violations(page) == []

    # django-celery-beat's crontab help, moved from its inline script to atom/periodic_task.js.
    page.goto(f"{live_server.url}/admin/django_celery_beat/periodictask/add/")
    page.locator("#id_crontab").select_option(index=1)
    expect(page.locator(".field-crontab .help")).to_contain_text("Translation:")
    assert violations(page) == []
