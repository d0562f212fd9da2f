"""The admin inbox: each shop sees only its own notices, newest first, unread in bold; opening
one or the action marks it read, for that user only; the header shows the user's unread count
with one query. Viewers read; they change nothing shop-wide (RELIABILITY.md, issue 11.14)."""

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils.html import escape

from notifications.models import Delivery, Notice, NoticeRead
from notifications.services import alerts_check_ledger
from tests.factories import make_ledger, make_membership, make_strategy

INBOX = "/admin/notifications/notice/"


def read_by(notice) -> set[str]:
    return set(NoticeRead.objects.filter(notice=notice).values_list("user__username", flat=True))


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
    assert read_by(notice) == {viewer.username}
    assert f"<strong>{notice.title}</strong>" not in client.get(INBOX).content.decode()


@pytest.mark.django_db
def test_the_action_marks_the_selected_notices_read(client, owner, shop_a_notices):
    client.force_login(owner)
    ids = [str(n.pk) for n in shop_a_notices]

    response = client.post(INBOX, {"action": "mark_read", "_selected_action": ids})

    assert response.status_code == 302
    assert all(read_by(n) == {owner.username} for n in shop_a_notices)


@pytest.mark.django_db
def test_the_action_cannot_touch_another_shops_notice(client, owner, shop_a_notices, shop_b_notice):
    client.force_login(owner)

    client.post(INBOX, {"action": "mark_read", "_selected_action": [str(shop_b_notice.pk)]})

    assert read_by(shop_b_notice) == set()


@pytest.mark.django_db
@pytest.mark.parametrize("suffix", ["change/", "history/", "delete/"])
def test_another_shops_notice_is_a_404(client, owner, shop_b_notice, suffix):
    client.force_login(owner)

    response = client.get(f"{INBOX}{shop_b_notice.pk}/{suffix}")

    # Staff may not delete notices at all, so the delete URL is refused before any lookup.
    assert response.status_code == (403 if suffix == "delete/" else 404)
    assert read_by(shop_b_notice) == set()


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

    NoticeRead.objects.create(notice=shop_a_notices[0], user=viewer, read_at="2024-01-01T00:00:00Z")
    assert "Notices (1)" in client.get("/admin/", HTTP_ACCEPT_LANGUAGE="en").content.decode()


@pytest.mark.django_db
def test_an_operator_sees_every_shops_notices(admin_client, shop_a_notices, shop_b_notice):
    html = admin_client.get(INBOX).content.decode()

    assert shop_b_notice.title in html
    assert all(n.title in html for n in shop_a_notices)


# -- read state is per user; viewers change nothing shop-wide -------------------------------------


@pytest.mark.django_db
def test_a_viewer_opening_a_notice_marks_it_read_for_themselves_only(
    client, viewer, owner, shop, shop_a_notices
):
    colleague = make_membership(shop=shop, username="viewer-2", role="viewer").user
    notice = shop_a_notices[0]
    client.force_login(viewer)

    assert client.get(f"{INBOX}{notice.pk}/change/").status_code == 200
    client.get(f"{INBOX}{notice.pk}/change/")  # opened twice: still one read

    assert read_by(notice) == {viewer.username}
    assert NoticeRead.objects.filter(notice=notice).count() == 1
    for other in (owner, colleague):
        client.force_login(other)
        html = client.get(INBOX, HTTP_ACCEPT_LANGUAGE="en").content.decode()
        assert f"<strong>{notice.title}</strong>" in html
        assert "Notices (2)" in html
    client.force_login(viewer)
    html = client.get(INBOX, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Notices (1)" in html
    assert f"<strong>{notice.title}</strong>" not in html


@pytest.mark.django_db
@pytest.mark.parametrize("action", ["mark_read", "delete_selected"])
def test_a_viewers_action_on_notices_is_a_403_and_changes_nothing(
    client, viewer, shop_a_notices, action
):
    client.force_login(viewer)
    ids = [str(n.pk) for n in shop_a_notices]

    response = client.post(INBOX, {"action": action, "_selected_action": ids, "post": "yes"})

    assert response.status_code == 403
    assert not NoticeRead.objects.exists()
    assert Notice.objects.filter(pk__in=ids).count() == len(ids)


@pytest.mark.django_db
def test_a_viewer_is_offered_no_action_and_cannot_delete(client, viewer, shop_a_notices):
    client.force_login(viewer)
    notice = shop_a_notices[0]

    html = client.get(INBOX).content.decode()
    assert 'name="action"' not in html and 'name="_selected_action"' not in html
    assert client.get(f"{INBOX}{notice.pk}/delete/").status_code == 403
    assert client.post(f"{INBOX}{notice.pk}/delete/", {"post": "yes"}).status_code == 403
    assert client.post(f"{INBOX}{notice.pk}/change/", {"title": "x"}).status_code == 403
    assert Notice.objects.filter(pk=notice.pk, title=notice.title).exists()
    assert not NoticeRead.objects.exists()


@pytest.mark.django_db
def test_the_owners_action_marks_read_for_the_owner_only(client, owner, viewer, shop_a_notices):
    client.force_login(owner)
    ids = [str(n.pk) for n in shop_a_notices]

    client.post(INBOX, {"action": "mark_read", "_selected_action": ids})

    assert all(read_by(n) == {owner.username} for n in shop_a_notices)
    client.force_login(viewer)
    html = client.get(INBOX, {"unread": "1"}, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert all(n.title in html for n in shop_a_notices)
    assert "Notices (2)" in html


@pytest.mark.django_db
def test_the_read_filter_and_column_are_the_users_own(client, owner, viewer, shop_a_notices):
    newest, older = shop_a_notices
    NoticeRead.objects.create(notice=newest, user=viewer, read_at="2026-03-01T04:00:00Z")
    client.force_login(viewer)

    unread = client.get(INBOX, {"unread": "1"}).context["cl"].result_list
    read = client.get(INBOX, {"unread": "0"}).context["cl"].result_list
    assert [n.pk for n in unread] == [older.pk]
    assert [n.pk for n in read] == [newest.pk]
    assert read[0].atom_read_at is not None
    client.force_login(owner)
    assert list(client.get(INBOX, {"unread": "0"}).context["cl"].result_list) == []
