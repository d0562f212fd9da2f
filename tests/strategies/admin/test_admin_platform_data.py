"""Read-only admins of the platform's data, and the operators' shop and staff admins."""

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.urls import reverse

from strategies.models import AfterSaleRequest, Shop
from tests.factories import make_order, make_request

pytestmark = pytest.mark.django_db


@pytest.fixture
def as_operator(client):
    user = get_user_model().objects.create_superuser("root", password="pw-for-tests-1")
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    client.force_login(user)
    return client


def test_requests_are_listed_with_failed_ones_marked_and_never_edited(as_owner, shop):
    failed = make_request(shop=shop, aftersale_id="AS-FAILED")
    AfterSaleRequest.objects.filter(pk=failed.pk).update(status="failed")
    make_request(shop=shop, aftersale_id="AS-OK")
    url = reverse("admin:strategies_aftersalerequest_changelist")
    html = as_owner.get(url).content.decode()
    assert "AS-FAILED" in html and "AS-OK" in html
    assert "#c62828" in html  # the failed badge
    only_failed = as_owner.get(url, {"status__exact": "failed"}).content.decode()
    assert "AS-FAILED" in only_failed and "AS-OK" not in only_failed
    found = as_owner.get(url, {"q": "AS-OK"}).content.decode()
    assert "AS-OK" in found and "AS-FAILED" not in found
    change = reverse("admin:strategies_aftersalerequest_change", args=[failed.pk])
    assert as_owner.get(change).status_code == 200
    assert as_owner.post(change, {"status": "executed"}).status_code == 403
    assert as_owner.get(reverse("admin:strategies_aftersalerequest_add")).status_code == 403
    assert AfterSaleRequest.objects.get(pk=failed.pk).status == "failed"


def test_operators_cannot_edit_requests_either(as_operator, shop):
    request = make_request(shop=shop)
    change = reverse("admin:strategies_aftersalerequest_change", args=[request.pk])
    assert as_operator.post(change, {"status": "executed"}).status_code == 403


def test_an_order_shows_its_items(as_owner, shop):
    order = make_order(shop=shop, items=[("P-CASE", 2, "9.90")])
    html = as_owner.get(reverse("admin:strategies_order_change", args=[order.pk])).content.decode()
    assert "P-CASE" in html and "9.90" in html


def test_an_operator_adds_a_shop_and_sees_its_secret_once(as_operator):
    response = as_operator.post(
        reverse("admin:strategies_shop_add"),
        {
            "code": "new-shop",
            "name": "New",
            "timezone": "Asia/Shanghai",
            "phone": "",
            "alert_email": "",
        },
        follow=True,
    )
    shop = Shop.objects.get(code="new-shop")
    assert len(shop.api_secret) >= 40
    assert shop.api_secret in response.content.decode()
    page = as_operator.get(reverse("admin:strategies_shop_change", args=[shop.pk]))
    assert shop.api_secret not in page.content.decode()


def test_only_operators_manage_staff(as_owner, shop):
    assert as_owner.get(reverse("admin:strategies_membership_changelist")).status_code == 403
    assert as_owner.get(reverse("admin:strategies_membership_add")).status_code == 403
    html = as_owner.get(reverse("admin:index")).content.decode()
    assert "Staff memberships" not in html
    assert "Strategies" in html


def test_an_outsider_sees_nothing(client, shop):
    outsider = get_user_model().objects.create_user("drifter", password="x", is_staff=True)
    client.force_login(outsider)
    assert client.get(reverse("admin:strategies_strategy_changelist")).status_code == 403
    assert client.get(reverse("admin:strategies_aftersalerequest_changelist")).status_code == 403
