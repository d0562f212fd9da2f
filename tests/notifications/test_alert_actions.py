"""Issue 12, point 10: a 95% / 100% alert leads somewhere. The notice, the SMS and the e-mail
link to the strategy and the consumption dashboard, with "pause this strategy" (a confirmation,
then one audited POST) and "raise the cap" (the form's daily cap field) one click away."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from notifications.models import Delivery, Notice
from notifications.services import alerts_check_ledger
from strategies.models import Strategy
from tests.factories import make_ledger, make_membership, make_shop, make_strategy

pytestmark = pytest.mark.django_db

ADMIN_URL = "https://atom.example.com"


def _alert(shop) -> Notice:
    """A 96% alert of an active strategy of ``shop``, raised by the alert service itself."""
    shop.phone = "13800000000"
    shop.alert_email = "alerts@shop.example"
    shop.save()
    strategy = make_strategy(
        shop=shop, name="小额退款", status="active", daily_cap=Decimal("2000.00")
    )
    ledger = make_ledger(strategy=strategy, consumed="1920.00")
    alerts_check_ledger(ledger_id=ledger.pk)
    return Notice.objects.get(alert__strategy=strategy)


@pytest.fixture
def alerted(shop):
    return _alert(shop)


def _urls(notice: Notice) -> dict[str, str]:
    strategy = notice.alert.strategy
    change = reverse("admin:strategies_strategy_change", args=[strategy.pk])
    notice_url = reverse("admin:notifications_notice_change", args=[notice.pk])
    return {
        "strategy": change,
        "dashboard": f"{reverse('monitoring:consumption')}?day={notice.alert.day.isoformat()}",
        "pause": reverse("admin:strategies_strategy_pause", args=[strategy.pk])
        + f"?next={notice_url.replace('/', '%2F')}",
        "raise": f"{change}#id_daily_cap",
    }


def _hrefs(html: str) -> set[str]:
    return {h.replace("&amp;", "&") for h in re.findall(r'href="([^"]+)"', html)}


def test_the_notice_links_to_the_strategy_the_dashboard_pause_and_raise(owner_client, alerted):
    page = owner_client.get(reverse("admin:notifications_notice_change", args=[alerted.pk]))
    hrefs = _hrefs(page.content.decode())
    assert set(_urls(alerted).values()) <= hrefs
    text = page.content.decode()
    assert "暂停此策略" in text and "提高上限" in text and "资金消耗看板" in text
    # The alert is named as a merchant knows it, not "Alert object (3)".
    assert "小额退款，" in text and "Alert object" not in text


def test_the_inbox_list_has_the_same_links(owner_client, alerted):
    page = owner_client.get(reverse("admin:notifications_notice_changelist"))
    assert set(_urls(alerted).values()) <= _hrefs(page.content.decode())


def test_a_viewer_sees_the_strategy_and_the_dashboard_but_no_pause(client, viewer, alerted):
    client.force_login(viewer)
    hrefs = _hrefs(
        client.get(reverse("admin:notifications_notice_change", args=[alerted.pk])).content.decode()
    )
    urls = _urls(alerted)
    assert {urls["strategy"], urls["dashboard"]} <= hrefs
    assert urls["pause"] not in hrefs and urls["raise"] not in hrefs


def test_the_raise_link_lands_on_the_daily_cap_field(owner_client, alerted):
    form = owner_client.get(_urls(alerted)["strategy"]).content.decode()
    assert 'id="id_daily_cap"' in form


def test_pausing_asks_first_then_pauses_once_with_its_history(owner_client, owner, alerted):
    strategy = alerted.alert.strategy
    notice_url = reverse("admin:notifications_notice_change", args=[alerted.pk])
    url = reverse("admin:strategies_strategy_pause", args=[strategy.pk])

    asked = owner_client.get(url, {"next": notice_url})
    assert asked.status_code == 200
    assert "暂停“小额退款”？" in asked.content.decode()
    assert 'id="atom-confirm-pause"' in asked.content.decode()
    strategy.refresh_from_db()
    assert strategy.status == "active"  # a GET changes nothing

    # A POST without the confirmation only shows the page again.
    assert owner_client.post(url, {"next": notice_url}).status_code == 200
    strategy.refresh_from_db()
    assert strategy.status == "active"

    done = owner_client.post(
        url, {"next": notice_url, "atom_confirm": "yes", "change_reason": "上限快到了"}
    )
    assert done.status_code == 302 and done["Location"] == notice_url
    strategy.refresh_from_db()
    assert strategy.status == "inactive"
    latest = strategy.history.order_by("-history_id").first()
    assert latest.status == "inactive"
    assert latest.history_user_id == owner.pk
    assert latest.history_change_reason == "上限快到了"

    # Repeat-safe: a second confirmation adds no history row.
    rows = strategy.history.count()
    owner_client.post(url, {"next": notice_url, "atom_confirm": "yes"})
    assert strategy.history.count() == rows


def test_pausing_without_a_reason_records_where_it_came_from(owner_client, alerted):
    strategy = alerted.alert.strategy
    url = reverse("admin:strategies_strategy_pause", args=[strategy.pk])
    owner_client.post(url, {"atom_confirm": "yes"})
    latest = strategy.history.order_by("-history_id").first()
    assert latest.history_change_reason == "因当日上限提醒而暂停"


def test_pausing_goes_back_only_to_this_site(owner_client, alerted):
    url = reverse("admin:strategies_strategy_pause", args=[alerted.alert.strategy_id])
    done = owner_client.post(url, {"atom_confirm": "yes", "next": "https://evil.example/x"})
    assert done.status_code == 302 and not done["Location"].startswith("https://evil")


def test_a_viewer_may_not_pause(client, viewer, alerted):
    client.force_login(viewer)
    url = reverse("admin:strategies_strategy_pause", args=[alerted.alert.strategy_id])
    assert client.post(url, {"atom_confirm": "yes"}).status_code == 403
    assert Strategy.objects.get(pk=alerted.alert.strategy_id).status == "active"


def test_another_shops_strategy_is_not_found(client, alerted):
    outsider = make_membership(shop=make_shop(code="other"), username="outsider").user
    client.force_login(outsider)
    url = reverse("admin:strategies_strategy_pause", args=[alerted.alert.strategy_id])
    assert client.get(url).status_code == 404
    assert client.post(url, {"atom_confirm": "yes"}).status_code == 404
    assert Strategy.objects.get(pk=alerted.alert.strategy_id).status == "active"


def test_the_sms_and_the_email_link_to_the_ways_on(settings, shop):
    settings.ATOM_ADMIN_URL = ADMIN_URL + "/"
    settings.LANGUAGE_CODE = "en"
    notice = _alert(shop)
    urls = {name: ADMIN_URL + url for name, url in _urls(notice).items()}
    # The SMS is short: one link, to the notice, where all four are one click away.
    sms = Delivery.objects.get(channel="sms").body
    notice_url = ADMIN_URL + reverse("admin:notifications_notice_change", args=[notice.pk])
    assert sms.endswith(f"Pause it or raise the cap: {notice_url}")
    email = Delivery.objects.get(channel="email").body
    assert f"Open the strategy: {urls['strategy']}" in email
    assert f"Consumption dashboard: {urls['dashboard']}" in email
    assert f"Pause this strategy: {urls['pause']}" in email
    assert f"Raise the cap: {urls['raise']}" in email


def test_without_the_admin_address_the_messages_name_the_admin(settings, shop):
    settings.ATOM_ADMIN_URL = ""
    settings.LANGUAGE_CODE = "en"
    _alert(shop)
    assert "http" not in Delivery.objects.get(channel="sms").body
    email = Delivery.objects.get(channel="email").body
    assert "http" not in email and "in the ATOM admin" in email


def test_the_notice_says_when_you_read_it_in_the_one_date_format(owner_client, alerted):
    page = owner_client.get(reverse("admin:notifications_notice_change", args=[alerted.pk]))
    text = page.content.decode()
    assert not re.search(r"\d{2}:\d{2}:\d{2}\.\d+\+00:00", text), "a raw datetime"
    assert re.search(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}", text)


def test_an_archived_strategys_notice_keeps_only_the_dashboard(owner_client, alerted):
    Strategy.all_objects.filter(pk=alerted.alert.strategy_id).update(archived_at=timezone.now())
    page = owner_client.get(reverse("admin:notifications_notice_change", args=[alerted.pk]))
    text = page.content.decode()
    assert 'class="atom-notice-dashboard"' in text
    assert "atom-notice-strategy" not in text and "atom-notice-pause" not in text
