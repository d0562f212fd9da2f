"""The admin header's language switcher, through Django's test client: Chinese by default,
English on request, remembered in the language cookie."""

import pytest
from django.conf import settings

pytestmark = pytest.mark.django_db

SETLANG = "/i18n/setlang/"


def test_it_shows_the_switcher_on_every_admin_page_with_the_current_language_selected(
    client, owner
):
    login_page = client.get("/admin/login/").content.decode()
    assert '<html lang="zh-hans"' in login_page
    assert f'action="{SETLANG}"' in login_page

    client.force_login(owner)
    index = client.get("/admin/").content.decode()
    assert 'id="atom-language"' in index
    assert '<option value="zh-hans" lang="zh-hans" selected>' in index
    assert '<option value="en" lang="en">' in index
    # The notifications inbox link lives in the same header.
    assert 'id="atom-notices"' in index
    assert index.count('id="atom-notices"') == 1


def test_posting_english_sets_the_cookie_and_back_to_chinese(client, owner):
    client.force_login(owner)

    response = client.post(SETLANG, {"language": "en", "next": "/admin/"})

    assert response.status_code == 302
    assert response["Location"] == "/admin/"
    assert client.cookies[settings.LANGUAGE_COOKIE_NAME].value == "en"
    page = client.get("/admin/").content.decode()
    assert '<html lang="en"' in page
    assert '<option value="en" lang="en" selected>' in page

    client.post(SETLANG, {"language": "zh-hans", "next": "/admin/"})

    assert client.cookies[settings.LANGUAGE_COOKIE_NAME].value == "zh-hans"
    assert '<html lang="zh-hans"' in client.get("/admin/").content.decode()


def test_an_outside_next_url_is_not_followed(client, owner):
    client.force_login(owner)

    response = client.post(SETLANG, {"language": "en", "next": "https://evil.example/"})

    assert response["Location"] == "/"
