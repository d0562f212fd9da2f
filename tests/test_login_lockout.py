"""Admin logins are throttled (RELIABILITY.md scenario 29): too many wrong passwords lock the
username for that address, the right password does not get in during the lock, operators see
the locks and lift them, the platform API is never touched, and sessions end after a working day
or with the browser."""

import datetime as dt
import time

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.contrib.auth.models import User
from django.test import Client

from tests.strategies.platforms.generic.api_client import (
    CREATE_URL,
    encode,
    headers_for,
    payload,
)

LOGIN = "/admin/login/"
ATTACKER = "203.0.113.7"
COLLEAGUE = "198.51.100.20"
PASSWORD = "pw-for-tests-1"  # tests.factories.make_membership


def try_login(client: Client, username: str, password: str, *, address: str = ATTACKER, **extra):
    return client.post(
        LOGIN,
        {"username": username, "password": password, "next": "/admin/"},
        REMOTE_ADDR=address,
        HTTP_ACCEPT_LANGUAGE="en",
        **extra,
    )


def logged_in(client: Client) -> bool:
    return SESSION_KEY in client.session


def lock_out(client: Client, username: str, *, address: str = ATTACKER) -> list[int]:
    return [
        try_login(client, username, f"wrong-{n}", address=address).status_code
        for n in range(settings.AXES_FAILURE_LIMIT)
    ]


@pytest.fixture
def operator(db):
    return User.objects.create_superuser("operator", "op@example.com", PASSWORD)


@pytest.mark.django_db
def test_200_wrong_passwords_lock_the_user_and_the_right_one_is_refused_during_the_lock(
    client, owner
):
    statuses = [try_login(client, owner.username, f"guess-{n}").status_code for n in range(200)]
    limit = settings.AXES_FAILURE_LIMIT
    # The form answers the first wrong passwords; from the limit on, every try is refused.
    assert statuses[: limit - 1] == [200] * (limit - 1)
    assert set(statuses[limit - 1 :]) == {429}

    refused = try_login(client, owner.username, PASSWORD)
    assert refused.status_code == 429
    assert "Too many failed logins" in refused.content.decode()
    assert not logged_in(client)

    # The lock is the pair (username, address): the owner at another address gets in.
    elsewhere = Client()
    assert try_login(elsewhere, owner.username, PASSWORD, address=COLLEAGUE).status_code == 302
    assert logged_in(elsewhere)


@pytest.mark.django_db
def test_the_lock_lasts_the_cool_off_and_each_try_during_it_restarts_it(client, owner, settings):
    settings.AXES_COOLOFF_TIME = dt.timedelta(seconds=2)
    assert lock_out(client, owner.username)[-1] == 429
    time.sleep(1.2)
    assert try_login(client, owner.username, PASSWORD).status_code == 429  # restarts the wait
    time.sleep(1.2)
    assert try_login(client, owner.username, PASSWORD).status_code == 429
    assert not logged_in(client)
    time.sleep(2.3)
    assert try_login(client, owner.username, PASSWORD).status_code == 302
    assert logged_in(client)


@pytest.mark.django_db
def test_a_success_before_the_limit_forgets_the_failures(client, owner):
    for n in range(settings.AXES_FAILURE_LIMIT - 1):
        assert try_login(client, owner.username, f"typo-{n}").status_code == 200
    assert try_login(client, owner.username, PASSWORD).status_code == 302
    client.logout()
    for n in range(settings.AXES_FAILURE_LIMIT - 1):
        assert try_login(client, owner.username, f"typo-{n}").status_code == 200
    assert try_login(client, owner.username, PASSWORD).status_code == 302


@pytest.mark.django_db
def test_an_operator_sees_the_lock_and_lifts_it(client, owner, operator):
    attacker = Client()
    lock_out(attacker, owner.username)
    client.force_login(operator)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"

    page = client.get("/admin/axes/accessattempt/?locked_out=yes")
    assert page.status_code == 200
    html = page.content.decode()
    assert owner.username in html and ATTACKER in html and "Locked Out" in html
    assert "/admin/axes/accessattempt/" in client.get("/admin/").content.decode()

    attempt = AccessAttempt.objects.get(username=owner.username)
    done = client.post(
        "/admin/axes/accessattempt/",
        {"action": "unlock", "_selected_action": [attempt.pk]},
        follow=True,
    )
    assert "1 lock lifted." in done.content.decode()
    assert not AccessAttempt.objects.filter(username=owner.username).exists()
    assert try_login(attacker, owner.username, PASSWORD).status_code == 302


@pytest.mark.django_db
def test_merchant_staff_never_see_the_locks(client, owner, viewer):
    lock_out(Client(), owner.username)
    for user in (owner, viewer):
        client.force_login(user)
        assert client.get("/admin/axes/accessattempt/").status_code == 403
        assert client.get("/admin/axes/accesslog/").status_code == 403
        assert "/admin/axes/" not in client.get("/admin/").content.decode()


@pytest.mark.django_db
def test_the_platform_api_is_never_touched_by_the_lockout(client, shop, owner, sent):
    lock_out(Client(), owner.username)

    def post(body: bytes, **sign) -> int:
        return client.post(
            CREATE_URL,
            data=body,
            content_type="application/json",
            headers=headers_for(shop, body, **sign),
            REMOTE_ADDR=ATTACKER,
        ).status_code

    # Wrong signatures from the locked-out address are the API's own 401, never a login try.
    assert {post(encode(payload(aftersale_id=f"AS-BAD-{n}")), secret="w") for n in range(50)} == {
        401
    }
    assert AccessAttempt.objects.count() == 1  # only the admin lock
    assert post(encode(payload())) == 202


@pytest.mark.django_db
def test_behind_the_proxy_locks_follow_its_address_header_and_ignore_it_without(
    client, owner, settings
):
    # Without a configured proxy header, a header the client made up changes nothing.
    for n in range(settings.AXES_FAILURE_LIMIT):
        try_login(client, owner.username, "wrong", HTTP_X_REAL_IP=f"192.0.2.{n}")
    assert try_login(client, owner.username, PASSWORD).status_code == 429

    # Behind the proxy every request comes from the proxy's socket: its header tells clients
    # apart, so one client's lock does not lock out the others.
    AccessAttempt.objects.all().delete()
    settings.ATOM_CLIENT_IP_HEADER = "HTTP_X_REAL_IP"
    proxy = "127.0.0.1"
    for _ in range(settings.AXES_FAILURE_LIMIT):
        try_login(client, owner.username, "wrong", address=proxy, HTTP_X_REAL_IP=ATTACKER)
    assert (
        try_login(client, owner.username, PASSWORD, address=proxy, HTTP_X_REAL_IP=ATTACKER)
    ).status_code == 429
    colleague = Client()
    assert (
        try_login(colleague, owner.username, PASSWORD, address=proxy, HTTP_X_REAL_IP=COLLEAGUE)
    ).status_code == 302


@pytest.mark.django_db
def test_a_session_ends_with_the_browser_and_after_a_working_day(client, owner, settings):
    response = try_login(client, owner.username, PASSWORD)
    cookie = response.cookies[settings.SESSION_COOKIE_NAME]
    assert cookie["expires"] == "" and cookie["max-age"] == ""  # a browser-session cookie
    assert 8 * 3600 <= client.session.get_expiry_age() <= 10 * 3600

    settings.SESSION_COOKIE_AGE = 1
    short = Client()
    try_login(short, owner.username, PASSWORD)
    assert short.get("/admin/").status_code == 200
    time.sleep(1.5)
    expired = short.get("/admin/")
    assert expired.status_code == 302 and expired["Location"].startswith(LOGIN)
