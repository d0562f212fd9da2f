"""Response headers (issue 11, point 15): a Content-Security-Policy that runs no inline script,
a Referrer-Policy and a Permissions-Policy; and no admin page carries an inline script or an
inline event handler that the policy would refuse (tests/browser runs them under the policy)."""

import re
from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from tests.factories import make_log_decision, make_strategy

SCRIPT = re.compile(r"<script\b([^>]*)>", re.I)
HANDLER = re.compile(r"<[a-z][^>]*\son[a-z]+\s*=", re.I)
JAVASCRIPT_URL = re.compile(r"""(?:href|src|action)\s*=\s*["']?\s*javascript:""", re.I)


def directives(header: str) -> dict[str, list[str]]:
    parts = (part.strip().split() for part in header.split(";") if part.strip())
    return {name: values for name, *values in parts}


@pytest.fixture
def operator_client(client, db):
    operator = User.objects.create_superuser("operator", "op@example.com", "pw-for-tests-1")
    client.force_login(operator)
    return client


@pytest.mark.django_db
def test_admin_pages_carry_a_policy_that_runs_only_our_own_scripts(client):
    response = client.get("/admin/login/")
    assert response.status_code == 200
    policy = directives(response["Content-Security-Policy"])
    assert policy["script-src"] == ["'self'"]  # no 'unsafe-inline', no 'unsafe-eval'
    assert policy["default-src"] == ["'self'"]
    assert policy["object-src"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["base-uri"] == ["'none'"]
    assert policy["form-action"] == ["'self'"]
    assert response["Referrer-Policy"] == "same-origin"
    permissions = response["Permissions-Policy"]
    for feature in ("camera", "microphone", "geolocation", "payment", "usb"):
        assert f"{feature}=()" in permissions


@pytest.mark.django_db
def test_the_api_answers_with_the_same_headers(client):
    response = client.get("/api/v1/aftersales/AS1")
    assert response.status_code == 401
    assert "Content-Security-Policy" in response
    assert response["Referrer-Policy"] == "same-origin"


def page_urls(shop) -> list[str]:
    strategy = make_strategy(shop=shop, name="Small refunds", per_request_cap=Decimal("10"))
    make_log_decision(shop=shop, strategy=strategy)
    return [
        "/admin/",
        reverse("admin:strategies_strategy_changelist") + "?scenario=post_shipment_refund",
        reverse("admin:strategies_strategy_add"),
        reverse("admin:strategies_strategy_change", args=[strategy.pk]),
        reverse("admin:strategies_strategy_history", args=[strategy.pk]),
        reverse("admin:monitoring_decisionlogentry_changelist"),
        reverse("monitoring:consumption"),
        reverse("admin:notifications_notice_changelist"),
        reverse("admin:strategies_shop_changelist"),
        reverse("admin:strategies_shop_change", args=[shop.pk]),
        reverse("admin:django_celery_beat_periodictask_add"),
        reverse("admin:axes_accessattempt_changelist"),
        reverse("admin:auth_user_changelist"),
    ]


@pytest.mark.django_db
def test_no_admin_page_has_an_inline_script_or_event_handler(operator_client, shop):
    for url in page_urls(shop):
        response = operator_client.get(url, follow=True)
        assert response.status_code == 200, url
        html = response.content.decode()
        for attributes in SCRIPT.findall(html):
            executable = "application/json" not in attributes
            assert not executable or "src=" in attributes, f"inline script on {url}: {attributes}"
        assert not HANDLER.search(html), f"inline event handler on {url}: {HANDLER.search(html)}"
        assert not JAVASCRIPT_URL.search(html), f"javascript: URL on {url}"


@pytest.mark.django_db
def test_the_login_page_has_no_inline_script_either(client):
    html = client.get("/admin/login/").content.decode()
    assert all("src=" in attrs for attrs in SCRIPT.findall(html))
    assert not HANDLER.search(html)
