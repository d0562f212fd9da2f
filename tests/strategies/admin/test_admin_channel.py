"""The channel form (operators only, secrets write-only) and the channel health panel on the
shop's page (hints only)."""

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.urls import reverse

from strategies.models import Channel
from strategies.services.channels import Credentials, connect_shop

pytestmark = pytest.mark.django_db

SECRET = "app-secret-never-shown-0042"


@pytest.fixture
def as_operator(client):
    user = get_user_model().objects.create_superuser("root", password="pw-for-tests-1")
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    client.force_login(user)
    return client


def form_data(shop, **changes):
    data = {
        "shop": shop.pk,
        "platform": "kuaishou",
        "app_key": "ks-app-key-0001",
        "app_secret": SECRET,
        "sign_secret": "sign-secret-0001",
        "message_key": "MDEyMzQ1Njc4OWFiY2RlZg==",
        "sign_method": "HMAC_SHA256",
        "access_token": "",
        "refresh_token": "",
        "expires_in": "",
        "refresh_expires_in": "",
        "merchant_id": "open-1",
        "api_base": "",
        "return_address_id": "",
    }
    data.update(changes)
    return data


def test_an_operator_connects_a_shop_and_the_secrets_are_never_rendered_again(as_operator, shop):
    response = as_operator.post(reverse("admin:strategies_channel_add"), form_data(shop))
    assert response.status_code == 302, response.content.decode()[:3000]
    row = Channel.objects.get(shop=shop)
    assert row.secret("app_secret") == SECRET
    page = as_operator.get(reverse("admin:strategies_channel_change", args=[row.pk]))
    html = page.content.decode()
    assert page.status_code == 200
    assert SECRET not in html and "sign-secret-0001" not in html
    assert "…0042" in html
    # Empty secret fields keep what is stored.
    changed = form_data(shop, app_secret="", sign_secret="", message_key="", app_key="")
    changed.pop("shop")
    response = as_operator.post(reverse("admin:strategies_channel_change", args=[row.pk]), changed)
    assert response.status_code == 302
    row.refresh_from_db()
    assert row.secret("app_secret") == SECRET


def test_a_missing_credential_is_a_form_error(as_operator, shop):
    response = as_operator.post(
        reverse("admin:strategies_channel_add"), form_data(shop, sign_secret="")
    )
    assert response.status_code == 200
    assert "sign_secret" in response.content.decode()
    assert not Channel.objects.exists()


def test_a_member_sees_the_health_panel_but_never_the_channel_form(as_owner, shop):
    connect_shop(
        shop=shop,
        platform="douyin",
        credentials=Credentials(app_key="7000", app_secret=SECRET, merchant_id="88001"),
    )
    Channel.objects.filter(shop=shop).update(last_error="token refused")
    page = as_owner.get(reverse("admin:strategies_shop_change", args=[shop.pk]))
    html = page.content.decode()
    assert page.status_code == 200
    assert "Channel health" in html or "channel health" in html
    assert "token refused" in html and "88001" in html
    assert SECRET not in html
    row = Channel.objects.get(shop=shop)
    assert as_owner.get(reverse("admin:strategies_channel_change", args=[row.pk])).status_code in (
        403,
        404,
    )
    assert as_owner.get(reverse("admin:strategies_channel_changelist")).status_code == 403
