"""A connected shop's channel health as its owner sees it (issue 13, 1): last push, last poll,
token expiry and the last error on the shop's page, hints only, no secret, in both languages."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from strategies.models import Channel
from strategies.services.channels import Credentials, connect_shop

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SECRET = "app-secret-0001-b3c4"

TEXT = {
    "en": {"panel": "Channel health", "error": "rate limited"},
    "zh-hans": {"panel": "渠道运行状态", "error": "rate limited"},
}


@pytest.mark.parametrize("language_cookie", ["zh-hans", "en"])
def test_an_owner_sees_the_channel_health_and_no_secret(
    login, owner, shop, live_server, language_cookie, screenshot
):
    now = timezone.now()
    connect_shop(
        shop=shop,
        platform="kuaishou",
        credentials=Credentials(
            app_key="ks-app-0001-a9f2",
            app_secret=SECRET,
            sign_secret="sign-secret-0001-d5e6",
            message_key="MDEyMzQ1Njc4OWFiY2RlZg==",
            sign_method="MD5",
            access_token="access-token-0001-f7a8",
            refresh_token="refresh-token-0001-c9d0",
            expires_in=48 * 3600,
            refresh_expires_in=150 * 24 * 3600,
            merchant_id="ks-open-id-7781",
        ),
    )
    Channel.objects.filter(shop=shop).update(
        last_push_at=now - dt.timedelta(seconds=40),
        last_poll_at=now - dt.timedelta(minutes=3),
        last_error="open.seller.order.refund.approve: rate limited",
        last_error_at=now - dt.timedelta(hours=2),
    )
    page = login(owner)
    page.set_viewport_size({"width": 1366, "height": 768})
    page.goto(f"{live_server.url}/admin/strategies/shop/{shop.pk}/change/")
    panel = page.locator(".inline-group").filter(has_text=TEXT[language_cookie]["panel"])
    expect(panel).to_contain_text("ks-open-id-7781")
    expect(panel).to_contain_text(TEXT[language_cookie]["error"])
    assert SECRET not in page.content()
    screenshot(f"channel-health-{language_cookie}")
