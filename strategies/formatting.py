"""The one way the back office shows money and dates (issue 12: ``100,000.00`` and
``2026-11-22 10:15`` everywhere, whatever the interface language)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

DATE_FORMAT = "%Y-%m-%d"
DATETIME_FORMAT = "%Y-%m-%d %H:%M"


def money(value: Decimal | int | None) -> str:
    """Two places with a comma between thousands: ``100,000.00``; "—" for no value."""
    if value is None:
        return "—"
    return f"{Decimal(value):,.2f}"


def local_datetime(value: dt.datetime | None, zone: dt.tzinfo) -> str:
    return value.astimezone(zone).strftime(DATETIME_FORMAT) if value else "…"
