"""Writes on shops: creating one, and its API secret (generated, checked, rotated).

A secret is returned to the caller once, to show it once; it is stored only encrypted
(``Shop.api_secret``) and never logged.
"""

from __future__ import annotations

import datetime as dt
import secrets

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext

from strategies.encryption import secret_seal
from strategies.models import MIN_API_SECRET_LENGTH, Shop


def shop_secret_generate() -> str:
    # 32 random bytes: 43 url-safe characters.
    return secrets.token_urlsafe(32)


def shop_secret_check(secret: str) -> None:
    """``ValidationError`` (key ``api_secret``) for a secret too short to be a key."""
    if len(secret) < MIN_API_SECRET_LENGTH:
        raise ValidationError(
            {
                "api_secret": gettext("The API secret must be at least %(min)d characters long.")
                % {"min": MIN_API_SECRET_LENGTH}
            }
        )


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
    on bad input, e.g. a code already taken, an unknown time zone or a secret under 32
    characters.
    """
    secret = secret if secret is not None else shop_secret_generate()
    errors: dict[str, list[str]] = {}
    try:
        shop_secret_check(secret)
    except ValidationError as exc:
        errors.update(exc.message_dict)
    shop = Shop(
        code=code,
        name=name,
        timezone=timezone,
        phone=phone or "",
        alert_email=email or "",
    )
    shop.api_secret = secret
    try:
        shop.full_clean()
    except ValidationError as exc:
        errors.update(exc.message_dict)
    if errors:
        raise ValidationError(errors)
    shop.save()
    return shop, secret


@transaction.atomic
def shop_secret_rotate(*, shop: Shop, grace_seconds: int = 86400) -> str:
    """Gives ``shop`` a new API secret and returns it; the current one still signs for
    ``grace_seconds`` (0: never again), then never again. A rotation within the grace period
    of the last one ends that one's grace: only the secret just replaced stays accepted.
    """
    if grace_seconds < 0:
        raise ValidationError({"grace_seconds": gettext("The grace period cannot be negative.")})
    locked = Shop.objects.select_for_update().get(pk=shop.pk)
    secret = shop_secret_generate()
    if grace_seconds:
        # Sealed again: under the first key, whatever key sealed the current one.
        locked.api_secret_previous_sealed = secret_seal(locked.api_secret)
        locked.api_secret_previous_until = timezone.now() + dt.timedelta(seconds=grace_seconds)
    else:
        locked.api_secret_previous_sealed = ""
        locked.api_secret_previous_until = None
    locked.api_secret = secret
    locked.save(
        update_fields=[
            "api_secret_sealed",
            "api_secret_previous_sealed",
            "api_secret_previous_until",
        ]
    )
    shop.api_secret_sealed = locked.api_secret_sealed
    shop.api_secret_previous_sealed = locked.api_secret_previous_sealed
    shop.api_secret_previous_until = locked.api_secret_previous_until
    return secret
