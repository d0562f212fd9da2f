"""Secrets at rest (strategies/encryption.py): sealed with ATOM_SECRETS_KEY, or a key derived
from SECRET_KEY; old keys keep opening what they sealed; a wrong key is a clear error."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured
from django.db import connection

from strategies.encryption import SecretUnreadable, secret_open, secret_seal
from strategies.models import Shop
from tests.factories import make_shop

SECRET = "a-shop-secret-of-more-than-32-characters"


def test_a_sealed_secret_opens_and_never_shows_the_plain_text():
    first, second = secret_seal(SECRET), secret_seal(SECRET)
    assert first != second  # a fresh IV each time
    assert SECRET not in first
    assert secret_open(first) == secret_open(second) == SECRET


def test_it_seals_with_the_first_configured_key_and_opens_with_any(settings):
    derived = secret_seal(SECRET)  # ATOM_SECRETS_KEY empty: derived from SECRET_KEY
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.ATOM_SECRETS_KEY = [old]
    by_old = secret_seal(SECRET)
    assert Fernet(old.encode()).decrypt(by_old.encode()).decode() == SECRET
    settings.ATOM_SECRETS_KEY = [new, old]
    by_new = secret_seal(SECRET)
    assert Fernet(new.encode()).decrypt(by_new.encode()).decode() == SECRET
    # What an older key sealed, and what the SECRET_KEY-derived key sealed, still opens.
    assert secret_open(by_old) == secret_open(derived) == SECRET


def test_a_rotated_secret_key_kept_as_a_fallback_still_opens(settings):
    sealed = secret_seal(SECRET)
    settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
    settings.SECRET_KEY = "a-brand-new-django-secret-key-0123456789-abcdefghijklmnop"
    assert secret_open(sealed) == SECRET


def test_without_the_old_key_it_says_what_happened(settings):
    sealed = secret_seal(SECRET)
    settings.SECRET_KEY = "a-brand-new-django-secret-key-0123456789-abcdefghijklmnop"
    with pytest.raises(SecretUnreadable, match="ATOM_SECRETS_KEY or SECRET_KEY changed"):
        secret_open(sealed)
    with pytest.raises(SecretUnreadable):
        secret_open("not a token")


def test_a_malformed_key_is_a_configuration_error(settings):
    settings.ATOM_SECRETS_KEY = ["not-a-fernet-key"]
    with pytest.raises(ImproperlyConfigured, match="ATOM_SECRETS_KEY entry 1"):
        secret_seal(SECRET)


def test_a_shops_secret_is_sealed_in_the_database(db):
    shop = make_shop(code="sealed", api_secret=SECRET)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT api_secret_sealed, api_secret_previous_sealed FROM strategies_shop "
            "WHERE id = %s",
            [shop.pk],
        )
        sealed, previous = cursor.fetchone()
    assert SECRET not in sealed and previous == ""
    assert secret_open(sealed) == SECRET
    assert Shop.objects.get(pk=shop.pk).api_secret == SECRET
