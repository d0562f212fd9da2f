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


# --- what a process opened is remembered ---------------------------------------------------------


@pytest.fixture
def decrypts(monkeypatch):
    """Counts the real decryptions behind ``secret_open``, from an empty memory."""
    from strategies import encryption

    counts = {"n": 0}
    uncached = encryption.secret_open_uncached

    def counting(sealed):
        counts["n"] += 1
        return uncached(sealed)

    monkeypatch.setattr(encryption, "secret_open_uncached", counting)
    encryption._secret_open_cached.cache_clear()
    yield counts
    encryption._secret_open_cached.cache_clear()


def test_a_sealed_value_is_decrypted_once_per_process(decrypts):
    first, second = secret_seal(SECRET), secret_seal(SECRET)
    assert [secret_open(first) for _ in range(3)] == [SECRET] * 3
    assert decrypts["n"] == 1
    assert secret_open(second) == SECRET  # another ciphertext (a rotation makes one): decrypted
    assert decrypts["n"] == 2


def test_an_unreadable_value_is_never_remembered(decrypts):
    for _ in range(2):
        with pytest.raises(SecretUnreadable):
            secret_open("not a token")
    assert decrypts["n"] == 2


def test_a_key_taken_away_stops_opening_what_it_sealed_even_if_opened_before(settings, decrypts):
    sealed = secret_seal(SECRET)
    assert secret_open(sealed) == SECRET
    settings.SECRET_KEY = "a-brand-new-django-secret-key-0123456789-abcdefghijklmnop"
    with pytest.raises(SecretUnreadable):
        secret_open(sealed)


def test_the_memory_is_bounded(decrypts):
    from strategies import encryption

    size = encryption.SECRET_OPEN_CACHE_SIZE
    sealed = [secret_seal(f"{SECRET}-{i}") for i in range(size + 1)]
    for value in sealed:
        secret_open(value)
    assert encryption._secret_open_cached.cache_info().currsize == size
    assert decrypts["n"] == size + 1
    secret_open(sealed[-1])  # the newest stayed
    assert decrypts["n"] == size + 1
    assert secret_open(sealed[0]) == f"{SECRET}-0"  # the oldest went out: decrypted again
    assert decrypts["n"] == size + 2
