"""Connecting a shop to its marketplace (PLATFORMS.md "Channels"): the command line and the admin
form both call ``connect_shop``.

Secrets are sealed as they are stored (``Channel.set_secret``) and never logged; what the
caller gets back shows hints only. A secret left empty on a change keeps the stored one (the
form's fields are write-only), except when the platform changes, which starts afresh.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext

from strategies.models import Channel, Platform, Shop
from strategies.platforms.kuaishou.signing import HMAC_SHA256, MD5

logger = logging.getLogger(__name__)

SIGN_METHODS = (HMAC_SHA256, MD5)
# What each platform needs before it can take a push or make a call.
REQUIRED: dict[str, tuple[str, ...]] = {
    Platform.KUAISHOU: ("app_key", "app_secret", "sign_secret", "message_key"),
    Platform.DOUYIN: ("app_key", "app_secret", "merchant_id"),
}


@dataclass(frozen=True)
class Credentials:
    """What an operator enters; "" (or None) leaves a stored value as it is."""

    app_key: str = ""
    app_secret: str = ""
    sign_secret: str = ""
    message_key: str = ""
    access_token: str = ""
    refresh_token: str = ""
    sign_method: str = ""
    expires_in: int | None = None
    refresh_expires_in: int | None = None
    merchant_id: str = ""  # Kuaishou open id / Douyin shop id
    api_base: str = ""
    return_address_id: str = ""


def channel_of(shop: Shop) -> Channel | None:
    return Channel.objects.filter(shop=shop).first()


@transaction.atomic
def connect_shop(
    *,
    shop: Shop,
    platform: str,
    credentials: Credentials | None = None,
    now: dt.datetime | None = None,
) -> Channel:
    """Connects ``shop`` to ``platform`` (``generic`` goes back: the marketplace credentials are
    wiped). Raises ``ValidationError`` for a missing credential or an unknown sign method."""
    now = now or timezone.now()
    given = credentials or Credentials()
    if platform not in Platform.values:
        raise ValidationError({"platform": gettext("Unknown platform.")})
    row = Channel.objects.select_for_update().filter(shop=shop).first()
    if row is None:
        row = Channel(shop=shop)
    fresh = row.platform != platform
    if fresh or platform == Platform.GENERIC:
        _wipe(row)
    row.platform = platform
    if platform == Platform.GENERIC:
        row.save()
        logger.info("shop %s: channel generic", shop.code)
        return row

    for name in Channel.SEALED:
        value = getattr(given, name)
        if value:
            row.set_secret(name, value)
    if given.sign_method:
        if given.sign_method not in SIGN_METHODS:
            raise ValidationError(
                {"sign_method": gettext("The sign method is HMAC_SHA256 or MD5.")}
            )
        row.sign_method = given.sign_method
    if platform == Platform.KUAISHOU and not row.sign_method:
        row.sign_method = HMAC_SHA256
    for field in ("merchant_id", "api_base", "return_address_id"):
        if getattr(given, field):
            setattr(row, field, getattr(given, field))
    if given.access_token:
        # A new authorisation: the alerts of the previous one are over.
        row.auth_failed_at = None
        row.auth_alerted_at = None
        row.access_expires_at = (
            now + dt.timedelta(seconds=given.expires_in) if given.expires_in else None
        )
    if given.message_key or given.app_secret:
        # The keys pushes are checked with changed: refusals start afresh, and may alert again.
        row.push_refusals = 0
        row.push_alerted_at = None
    if given.refresh_token:
        row.refresh_expiry_alerted_at = None
        row.refresh_expires_at = (
            now + dt.timedelta(seconds=given.refresh_expires_in)
            if given.refresh_expires_in
            else None
        )
    missing = [
        name
        for name in REQUIRED[platform]
        if not (getattr(row, name) if name == "merchant_id" else getattr(row, f"{name}_sealed"))
    ]
    if missing:
        raise ValidationError(
            gettext("Missing for this platform: %(names)s.") % {"names": ", ".join(missing)}
        )
    row.save()
    logger.info("shop %s: channel %s (app key %s)", shop.code, platform, row.app_key_hint)
    return row


def _wipe(row: Channel) -> None:
    for name in Channel.SEALED:
        row.set_secret(name, "")
    row.sign_method = ""
    row.merchant_id = row.api_base = row.return_address_id = ""
    row.access_expires_at = row.refresh_expires_at = None
    row.poll_high_water = None
    row.auth_failed_at = row.auth_alerted_at = row.refresh_expiry_alerted_at = None
    row.push_alerted_at = None
    row.push_refusals = 0
    row.poll_alerted_at = None
    row.poll_failures = 0
    row.last_error = ""
    row.last_error_at = None
