"""Encryption at rest for the secrets ATOM keeps in its database (the shops' API secrets).

Fernet (``cryptography``: AES-128-CBC with an HMAC-SHA256 tag) through ``MultiFernet``, keyed
by ``ATOM_SECRETS_KEY``: a comma-separated list of Fernet keys, the first encrypting, every one
decrypting (so the key itself can be rotated). When it is empty the key is derived from
``SECRET_KEY`` with HKDF, so a database dump alone never reads a secret. Keys derived from
``SECRET_KEY`` and ``SECRET_KEY_FALLBACKS`` always stay accepted for decryption, so setting
``ATOM_SECRETS_KEY`` later (or rotating ``SECRET_KEY`` with the old one kept as a fallback)
still reads what was sealed before; a secret is sealed again under the first key when it is
next written.

What a process opened is remembered (``SECRET_OPEN_CACHE_SIZE`` sealed values, least recently
used first out): the same ciphertext under the same keys always opens to the same text, and the
signed API opens two per request. A rotation seals a new ciphertext, so it is never answered
from the memory; a change of keys empties it.
"""

from __future__ import annotations

import base64
import functools
import secrets
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver

_KEY_SETTINGS = {"ATOM_SECRETS_KEY", "SECRET_KEY", "SECRET_KEY_FALLBACKS"}


class SecretUnreadable(RuntimeError):
    """A sealed value no configured key opens: the keys changed without keeping the old one."""


def secret_seal(plain: str) -> str:
    """``plain`` encrypted and authenticated, as ASCII text for a text column."""
    return _fernet().encrypt(plain.encode("utf-8")).decode("ascii")


# Bounded: the sealed values come from the database only (shops' current and previous
# secrets, and the dummy), never from a caller; 1024 covers every shop of a large deployment.
SECRET_OPEN_CACHE_SIZE = 1024


def secret_open(sealed: str) -> str:
    """The text ``secret_seal`` sealed; ``SecretUnreadable`` if no configured key opens it.

    Opened once per process and ciphertext (an error is never remembered)."""
    return _secret_open_cached(sealed)


@functools.lru_cache(maxsize=SECRET_OPEN_CACHE_SIZE)
def _secret_open_cached(sealed: str) -> str:
    return secret_open_uncached(sealed)


def secret_open_uncached(sealed: str) -> str:
    """``secret_open`` without the memory: every call decrypts (bench/intake compares both)."""
    try:
        return _fernet().decrypt(sealed.encode("ascii")).decode("utf-8")
    except (InvalidToken, UnicodeError) as exc:
        raise SecretUnreadable(
            "A stored secret cannot be decrypted: ATOM_SECRETS_KEY or SECRET_KEY changed without "
            "keeping the old key (list it after the new one in ATOM_SECRETS_KEY, or in "
            "SECRET_KEY_FALLBACKS)."
        ) from exc


@functools.cache
def secret_sealed_dummy() -> str:
    """A sealed random secret no shop has: opening it costs what opening a real one does."""
    return secret_seal(secrets.token_urlsafe(32))


@functools.cache
def _fernet() -> MultiFernet:
    keys: list[Fernet] = []
    for index, key in enumerate(settings.ATOM_SECRETS_KEY):
        try:
            keys.append(Fernet(key))
        except (ValueError, TypeError) as exc:
            raise ImproperlyConfigured(
                f"ATOM_SECRETS_KEY entry {index + 1} is not a Fernet key (32 url-safe "
                'base64-encoded bytes; make one with `python -c "from cryptography.fernet '
                'import Fernet; print(Fernet.generate_key().decode())"`).'
            ) from exc
    for secret_key in [settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS]:
        keys.append(Fernet(_derived_key(secret_key)))
    return MultiFernet(keys)


def _derived_key(secret_key: str | bytes) -> bytes:
    material = secret_key.encode("utf-8") if isinstance(secret_key, str) else secret_key
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"atom.shop-secrets")
    return base64.urlsafe_b64encode(hkdf.derive(material))


@receiver(setting_changed)
def _keys_changed(*, setting: str, **kwargs: Any) -> None:
    if setting in _KEY_SETTINGS:
        _fernet.cache_clear()
        secret_sealed_dummy.cache_clear()
        _secret_open_cached.cache_clear()  # a key taken away must stop opening what it sealed
