"""The admin inbox: each shop sees only its own notices, newest first, unread in bold; opening
one or the action marks it read; the header shows the unread count with one query."""

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils.html import escape

from notifications.models import Delivery, Notice
from notifications.services import alerts_check_ledger
from tests.factories import make_ledger, make_strategy

INBOX = "/admin/notifications/notice/"


def _notices(shop, *, levels_consumed=("96.00", "100.00"), name="Refunds"):
    """One notice per consumption, checked in turn (95%, then 100%)."""
    strategy = make_strategy(shop=shop, name=name, daily_cap=Decimal("100.00"))
    ledger = make_ledger(strategy=strategy, consumed="0.00")
    for consumed in levels_consumed:
        ledger.consumed = Decimal(consumed)
        ledger.save(update_fields=["consumed"])
        alerts_check_ledger(ledger_id=ledger.pk)
    return list(Notice.objects.filter(shop=shop).order_by("-created_at", "-id"))


@pytest.fixture
def shop_a_notices(shop):
    shop.phone = "13800000000"
    shop.save()
    return _notices(shop, name="Shop A strategy")


@pytest.fixture
def shop_b_notice(other_shop):
    other_shop.phone = "13900000000"
    other_shop.save()
    return _notices(other_shop, levels_consumed=("96.00",), name="Shop B strategy")[0]


@pytest.mark.django_db
def test_staff_see_only_their_shops_notices_newest_first_unread_bold(
    client, viewer, shop_a_notices, shop_b_notice
):
    client.force_login(viewer)

    page = client.get(INBOX)

    html = page.content.decode()
    assert page.status_code == 200
    assert "Shop B strategy" not in html
    newest, older = shop_a_notices
    assert html.index(newest.title) < html.index(older.title)
    assert f"<strong>{newest.title}</strong>" in html


@pytest.mark.django_db
def test_opening_a_notice_marks_it_read(client, viewer, shop_a_notices):
    client.force_login(viewer)
    notice = shop_a_notices[0]

    page = client.get(f"{INBOX}{notice.pk}/change/")

    assert page.status_code == 200
    # The notice was written in the interface's language (Chinese by default): its text is shown.
    assert escape(notice.body) in page.content.decode()
    assert "100.00" in notice.body
    notice.refresh_from_db()
    assert notice.read_at is not None
    assert f"<strong>{notice.title}</strong>" not in client.get(INBOX).content.decode()


@pytest.mark.django_db
def test_the_action_marks_the_selected_notices_read(client, owner, shop_a_notices):
    client.force_login(owner)
    ids = [str(n.pk) for n in shop_a_notices]

    response = client.post(INBOX, {"action": "mark_read", "_selected_action": ids})

    assert response.status_code == 302
    assert not Notice.objects.filter(pk__in=ids, read_at__isnull=True).exists()


@pytest.mark.django_db
def test_the_action_cannot_touch_another_shops_notice(client, owner, shop_a_notices, shop_b_notice):
    client.force_login(owner)

    client.post(INBOX, {"action": "mark_read", "_selected_action": [str(shop_b_notice.pk)]})

    shop_b_notice.refresh_from_db()
    assert shop_b_notice.read_at is None


@pytest.mark.django_db
@pytest.mark.parametrize("suffix", ["change/", "history/", "delete/"])
def test_another_shops_notice_is_a_404(client, owner, shop_b_notice, suffix):
    client.force_login(owner)

    response = client.get(f"{INBOX}{shop_b_notice.pk}/{suffix}")

    # Staff may not delete notices at all, so the delete URL is refused before any lookup.
    assert response.status_code == (403 if suffix == "delete/" else 404)
    shop_b_notice.refresh_from_db()
    assert shop_b_notice.read_at is None


@pytest.mark.django_db
def test_another_shops_delivery_is_a_404_and_not_listed(client, owner, shop_b_notice):
    client.force_login(owner)
    delivery = Delivery.objects.get(alert__shop=shop_b_notice.shop)

    assert client.get(f"/admin/notifications/delivery/{delivery.pk}/change/").status_code == 404
    listing = client.get("/admin/notifications/delivery/").content.decode()
    assert delivery.recipient not in listing


@pytest.mark.django_db
def test_the_header_shows_the_unread_count_with_one_query(
    client, viewer, shop_a_notices, shop_b_notice
):
    from django.template import Context, Template
    from django.test import RequestFactory

    client.force_login(viewer)
    html = client.get("/admin/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert f'<a href="{INBOX}" id="atom-notices" style="font-weight:bold">Notices (2)</a>' in html
    assert html.count('id="atom-notices"') == 1

    request = RequestFactory().get("/admin/")
    request.user = type(viewer).objects.get(pk=viewer.pk)  # nothing cached on it
    template = Template("{% load notifications_tags %}{% unread_notices_count as n %}{{ n }}")
    with CaptureQueriesContext(connection) as queries:
        rendered = template.render(Context({"request": request}))
    assert rendered == "2"
    assert len(queries) == 1

    Notice.objects.filter(pk=shop_a_notices[0].pk).update(read_at="2024-01-01T00:00:00Z")
    assert "Notices (1)" in client.get("/admin/", HTTP_ACCEPT_LANGUAGE="en").content.decode()


@pytest.mark.django_db
def test_an_operator_sees_every_shops_notices(admin_client, shop_a_notices, shop_b_notice):
    html = admin_client.get(INBOX).content.decode()

    assert shop_b_notice.title in html
    assert all(n.title in html for n in shop_a_notices)
