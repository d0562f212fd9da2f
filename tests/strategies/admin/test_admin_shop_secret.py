"""RELIABILITY.md scenario 32: a shop's API secret is shown once, on a page no cache keeps, and
never appears in a cookie, the session, a log line or an admin page after that."""

from __future__ import annotations

import logging

import pytest
from django.conf import settings
from django.contrib.admin.models import LogEntry
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.db import connection
from django.urls import reverse

from strategies.encryption import secret_open
from strategies.models import Shop

pytestmark = pytest.mark.django_db


@pytest.fixture
def as_operator(client):
    get_user_model().objects.create_superuser("root", password="pw-for-tests-1")
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    # A real login through the login page (a session row in the database, django-axes in the
    # way), not force_login: the session is checked.
    response = client.post(
        "/admin/login/?next=/admin/", {"username": "root", "password": "pw-for-tests-1"}
    )
    assert response.status_code == 302, response.content
    return client


def add_shop(client, code: str = "new-shop"):
    return client.post(
        reverse("admin:strategies_shop_add"),
        {"code": code, "name": "New", "timezone": "Asia/Shanghai", "phone": "", "alert_email": ""},
    )


def everything_kept_about_the_client(client) -> str:
    cookies = " ".join(f"{m.key}={m.value}" for m in client.cookies.values())
    sessions = " ".join(str(s.get_decoded()) + s.session_data for s in Session.objects.all())
    return cookies + " " + sessions


def test_the_new_secret_is_shown_once_on_a_page_never_cached(as_operator, caplog):
    caplog.set_level(logging.DEBUG)
    response = add_shop(as_operator)

    shop = Shop.objects.get(code="new-shop")
    secret = shop.api_secret
    assert len(secret) >= 32
    # Shown on the answer to the POST itself (no redirect that would need to carry it).
    assert response.status_code == 200
    html = response.content.decode()
    assert secret in html and "new-shop" in html
    assert "no-store" in response["Cache-Control"]
    assert "private" in response["Cache-Control"] or "no-cache" in response["Cache-Control"]
    # Not in a cookie set by this answer, nor in any cookie or session the client now holds.
    assert all(secret not in morsel.value for morsel in response.cookies.values())
    assert secret not in everything_kept_about_the_client(as_operator)
    assert all(secret not in record.getMessage() for record in caplog.records)

    # Never shown again: the next page, the shop's pages, its admin history.
    for url in (
        reverse("admin:index"),
        reverse("admin:strategies_shop_changelist"),
        reverse("admin:strategies_shop_change", args=[shop.pk]),
        reverse("admin:strategies_shop_history", args=[shop.pk]),
    ):
        page = as_operator.get(url)
        assert page.status_code == 200, url
        assert secret not in page.content.decode(), url
    assert all(secret not in entry.change_message for entry in LogEntry.objects.all())
    assert secret not in everything_kept_about_the_client(as_operator)
    assert all(secret not in record.getMessage() for record in caplog.records)


def test_the_secret_is_stored_encrypted(as_operator):
    add_shop(as_operator)
    shop = Shop.objects.get(code="new-shop")
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM strategies_shop WHERE id = %s", [shop.pk])
        row = " ".join(str(value) for value in cursor.fetchone())
    assert shop.api_secret not in row
    assert secret_open(shop.api_secret_sealed) == shop.api_secret


def test_an_invalid_shop_form_shows_no_secret_and_stores_nothing(as_operator):
    add_shop(as_operator, code="taken")
    response = add_shop(as_operator, code="taken")
    assert response.status_code == 200
    assert "already exists" in response.content.decode()
    assert Shop.objects.filter(code="taken").count() == 1
    assert Shop.objects.get(code="taken").api_secret not in response.content.decode()


def test_editing_a_shop_keeps_its_secret_and_shows_none(as_operator):
    add_shop(as_operator)
    shop = Shop.objects.get(code="new-shop")
    secret = shop.api_secret
    response = as_operator.post(
        reverse("admin:strategies_shop_change", args=[shop.pk]),
        {
            "code": "new-shop",
            "name": "Renamed",
            "timezone": "Asia/Shanghai",
            "phone": "",
            "alert_email": "",
        },
        follow=True,
    )
    assert response.status_code == 200
    assert secret not in response.content.decode()
    shop.refresh_from_db()
    assert (shop.name, shop.api_secret) == ("Renamed", secret)
