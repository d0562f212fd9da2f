"""Shop API secrets: at least 32 characters, stored encrypted, rotated with a grace period
(API.md 1.1 "Command line"; RELIABILITY.md scenarios 31 and 32)."""

from __future__ import annotations

import datetime as dt
import io
import logging

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.utils import timezone, translation

from strategies.models import Shop
from strategies.services.shops import shop_create, shop_secret_rotate
from tests.factories import make_shop

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def english():
    # The messages are checked in English (the default interface language is Chinese).
    with translation.override("en"):
        yield


def run(*args):
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.mark.parametrize("secret", ["", "short", "x" * 31])
def test_shop_create_refuses_a_secret_under_32_characters(secret):
    with pytest.raises(ValidationError) as excinfo:
        shop_create(code="weak", name="Weak", secret=secret)
    assert excinfo.value.message_dict == {
        "api_secret": ["The API secret must be at least 32 characters long."]
    }
    assert not Shop.objects.exists()


def test_shop_create_reports_a_short_secret_with_the_other_errors():
    with pytest.raises(ValidationError) as excinfo:
        shop_create(code="weak", name="Weak", timezone="Mars/Olympus", secret="short")
    assert set(excinfo.value.message_dict) == {"api_secret", "timezone"}


def test_shop_create_takes_a_secret_of_exactly_32_characters():
    shop, secret = shop_create(code="ok", name="OK", secret="k" * 32)
    assert secret == "k" * 32
    assert Shop.objects.get(pk=shop.pk).api_secret == "k" * 32


def test_create_shop_refuses_a_short_secret_clearly(caplog):
    with pytest.raises(CommandError, match="api_secret: The API secret must be at least 32"):
        run("create_shop", "weak", "--name", "Weak", "--secret", "s" * 31)
    assert not Shop.objects.exists()


def test_create_shop_prints_the_secret_on_stdout_only(caplog):
    caplog.set_level(logging.DEBUG)
    out, err = run("create_shop", "cli", "--name", "CLI")
    secret = out.strip()
    assert Shop.objects.get(code="cli").api_secret == secret
    assert secret not in err
    assert all(secret not in record.getMessage() for record in caplog.records)


def test_rotation_gives_a_new_secret_and_keeps_the_old_one_for_the_grace_period():
    shop = make_shop(code="rot")
    old = shop.api_secret
    before = timezone.now()
    new = shop_secret_rotate(shop=shop, grace_seconds=3600)
    stored = Shop.objects.get(pk=shop.pk)
    assert new != old and len(new) >= 32
    assert stored.api_secret == new == shop.api_secret
    assert old not in stored.api_secret_previous_sealed  # sealed too
    assert before + dt.timedelta(seconds=3600) <= stored.api_secret_previous_until
    assert stored.api_secret_previous_until <= timezone.now() + dt.timedelta(seconds=3600)


def test_a_rotation_without_grace_drops_the_old_secret_at_once():
    shop = make_shop(code="rot")
    shop_secret_rotate(shop=shop, grace_seconds=3600)
    shop_secret_rotate(shop=shop, grace_seconds=0)
    stored = Shop.objects.get(pk=shop.pk)
    assert (stored.api_secret_previous_sealed, stored.api_secret_previous_until) == ("", None)


def test_a_negative_grace_period_is_refused_and_changes_nothing():
    shop = make_shop(code="rot")
    old = shop.api_secret
    with pytest.raises(ValidationError):
        shop_secret_rotate(shop=shop, grace_seconds=-1)
    assert Shop.objects.get(pk=shop.pk).api_secret == old


def test_rotate_shop_secret_prints_the_new_secret_and_when_the_old_one_ends(caplog):
    caplog.set_level(logging.DEBUG)
    shop = make_shop(code="rot")
    old = shop.api_secret
    out, err = run("rotate_shop_secret", "rot", "--grace-seconds", "600")
    new = out.strip()
    stored = Shop.objects.get(pk=shop.pk)
    assert stored.api_secret == new != old
    assert "accepted until" in err and stored.api_secret_previous_until.isoformat()[:16] in err
    assert new not in err and old not in err + out
    assert all(
        new not in record.getMessage() and old not in record.getMessage()
        for record in caplog.records
    )
    out, err = run("rotate_shop_secret", "rot", "--grace-seconds", "0")
    assert "no longer accepted" in err


def test_rotate_shop_secret_refuses_an_unknown_shop_and_a_negative_grace():
    make_shop(code="rot")
    with pytest.raises(CommandError, match="No shop with code 'nope'"):
        run("rotate_shop_secret", "nope")
    with pytest.raises(CommandError, match="grace"):
        run("rotate_shop_secret", "rot", "--grace-seconds", "-5")
