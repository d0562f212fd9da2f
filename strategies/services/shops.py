"""Writes on shops."""

from __future__ import annotations

import secrets

from django.db import transaction

from strategies.models import Shop


def shop_secret_generate() -> str:
    return secrets.token_urlsafe(32)


@transaction.atomic
def shop_create(
    *,
    code: str,
    name: str,
    timezone: str = "Asia/Shanghai",
    phone: str = "",
    email: str = "",
    secret: str | None = None,
) -> tuple[Shop, str]:
    """Creates a shop and returns it with its API secret (generated when not given).

    Raises ``ValidationError`` (field keys: code, name, timezone, phone, alert_email, api_secret)
    on bad input, e.g. a code already taken or an unknown time zone.
    """
    secret = secret or shop_secret_generate()
    shop = Shop(
        code=code,
        name=name,
        timezone=timezone,
        phone=phone or "",
        alert_email=email or "",
        api_secret=secret,
    )
    shop.full_clean()
    shop.save()
    return shop, secret
