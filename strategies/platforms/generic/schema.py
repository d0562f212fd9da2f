"""Validation of the intake payload (API.md ``POST /api/v1/aftersales``).

Strict and explicit, so a platform engineer reading a 400 knows exactly what to fix:

- every field API.md lists is required; only ``order.shipped_at`` and ``order.received_at`` may
  be ``null``;
- keys API.md does not list are ignored (kept in the stored raw payload), so the platform may
  add fields without breaking intake;
- money (``amount``, ``order.items.N.price``) is a JSON **string** of ASCII digits with at most
  two decimals (``"9.90"``, ``"10"``); JSON numbers, exponents, signs, ``NaN`` and ``Infinity``
  are rejected; it must fit the database's ``Decimal(14, 2)``;
- times are ISO 8601 **with** a UTC offset, between 1970 and 2100;
- anywhere in the body (ignored keys included): no NUL character, no lone surrogate, no
  non-finite number and no nesting deeper than ``MAX_DEPTH``, since PostgreSQL's ``jsonb``
  could not store them.

Errors are collected per field path (``"order.items.0.price"``) and raised together as
``PayloadInvalid``; nothing here touches the database.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from decimal import Decimal
from typing import Any

from django.utils.translation import gettext

from strategies.models import AfterSaleType, OrderStatus, Reason
from strategies.platforms.base import AfterSaleIn, ItemIn, OrderIn

MAX_ID_LENGTH = 64
MAX_TITLE_LENGTH = 200
MAX_TAG_LENGTH = 64
MAX_DEPTH = 32
# Decimal(14, 2): at most 12 digits before the point.
MAX_MONEY = Decimal("999999999999.99")
# PositiveIntegerField on PostgreSQL.
MAX_QUANTITY = 2_147_483_647
EARLIEST = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
LATEST = dt.datetime(2100, 1, 1, tzinfo=dt.UTC)

# Money as the contract writes it; the sign and extra decimals are matched so that their errors
# can say precisely what is wrong.
_MONEY_RE = re.compile(r"(-?)([0-9]+)(?:\.([0-9]+))?")

BODY = "body"  # The error key for a body that is not a JSON object at all.


class PayloadInvalid(Exception):
    """The payload breaks the contract; ``errors`` maps field paths to messages."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__(errors)
        self.errors = errors


def payload_parse(raw: bytes) -> dict[str, Any]:
    """The JSON object in ``raw`` (UTF-8), or ``PayloadInvalid`` under the key ``body``."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PayloadInvalid({BODY: [gettext("The body is not UTF-8 text.")]}) from exc
    try:
        payload = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise PayloadInvalid({BODY: [gettext("The body is not valid JSON.")]}) from exc
    if not isinstance(payload, dict):
        raise PayloadInvalid({BODY: [gettext("The body must be a JSON object.")]})
    return payload


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def aftersale_payload_clean(payload: Any) -> AfterSaleIn:
    """Validates ``payload`` (parsed JSON) against the contract; ``PayloadInvalid`` if not."""
    if not isinstance(payload, dict):
        raise PayloadInvalid({BODY: [gettext("The body must be a JSON object.")]})
    errors = _Errors()
    _check_storable(payload, errors)
    if errors:
        raise PayloadInvalid(errors.as_dict())

    aftersale_id = _identifier(payload, "aftersale_id", "aftersale_id", errors)
    if aftersale_id is not None and "/" in aftersale_id:
        # It is a path segment of GET /api/v1/aftersales/{aftersale_id}: it must be reachable.
        errors.add("aftersale_id", gettext("Must not contain “/”."))
        aftersale_id = None
    buyer_id = _identifier(payload, "buyer_id", "buyer_id", errors)
    type_ = _choice(payload, "type", "type", AfterSaleType.values, errors)
    reason = _choice(payload, "reason", "reason", Reason.values, errors)
    amount = _money(payload, "amount", "amount", errors, positive=True)
    applied_at = _time(payload, "applied_at", "applied_at", errors)
    risk_flag = _boolean(payload, "risk_flag", "risk_flag", errors)
    order = _order(payload, errors)

    if amount is not None and order is not None and amount > order.total:
        errors.add(
            "amount",
            gettext("Must not be more than the order's total (%(total)s).")
            % {"total": _format_money(order.total)},
        )
    if errors:
        raise PayloadInvalid(errors.as_dict())
    assert aftersale_id is not None and buyer_id is not None and type_ is not None
    assert reason is not None and amount is not None and applied_at is not None
    assert risk_flag is not None and order is not None
    return AfterSaleIn(
        aftersale_id=aftersale_id,
        buyer_id=buyer_id,
        type=type_,
        reason=reason,
        amount=amount,
        applied_at=applied_at,
        risk_flag=risk_flag,
        order=order,
    )


# ---------------------------------------------------------------------------------------------


class _Errors:
    def __init__(self) -> None:
        self._errors: dict[str, list[str]] = {}

    def add(self, path: str, message: str) -> None:
        self._errors.setdefault(path, []).append(message)

    def __bool__(self) -> bool:
        return bool(self._errors)

    def as_dict(self) -> dict[str, list[str]]:
        return dict(self._errors)


_MISSING = object()


def _get(
    obj: dict[str, Any], key: str, path: str, errors: _Errors, *, nullable: bool = False
) -> Any:
    value = obj.get(key, _MISSING)
    if value is _MISSING:
        errors.add(path, gettext("This field is required."))
        return _MISSING
    if value is None and not nullable:
        errors.add(path, gettext("This field may not be null."))
        return _MISSING
    return value


def _check_storable(payload: Any, errors: _Errors) -> None:
    """What PostgreSQL's jsonb cannot hold, anywhere in the body (ignored keys included)."""
    stack: list[tuple[Any, str, int]] = [(payload, "", 0)]
    while stack:
        value, path, depth = stack.pop()
        if depth > MAX_DEPTH:
            errors.add(path or BODY, gettext("Nested too deeply."))
            continue
        if isinstance(value, dict):
            for key, child in value.items():
                child_path = f"{path}.{key}" if path else str(key)
                if not storable_text(key):
                    errors.add(path or BODY, gettext("A key holds characters not allowed."))
                    continue
                stack.append((child, child_path, depth + 1))
        elif isinstance(value, list):
            for index, child in enumerate(value):
                stack.append((child, f"{path}.{index}" if path else str(index), depth + 1))
        elif isinstance(value, str):
            if not storable_text(value):
                errors.add(path, gettext("Holds characters not allowed (NUL or a lone surrogate)."))
        elif isinstance(value, float) and not math.isfinite(value):
            errors.add(path, gettext("Numbers must be finite."))


def storable_text(text: str) -> bool:
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _string(obj: dict[str, Any], key: str, path: str, errors: _Errors) -> str | None:
    value = _get(obj, key, path, errors)
    if value is _MISSING:
        return None
    if not isinstance(value, str):
        errors.add(path, gettext("Must be a string."))
        return None
    return value


def _identifier(obj: dict[str, Any], key: str, path: str, errors: _Errors) -> str | None:
    value = _string(obj, key, path, errors)
    if value is None:
        return None
    if not value.strip():
        errors.add(path, gettext("Must not be empty."))
        return None
    if len(value) > MAX_ID_LENGTH:
        errors.add(path, gettext("At most %(max)d characters.") % {"max": MAX_ID_LENGTH})
        return None
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        errors.add(path, gettext("Must not contain control characters."))
        return None
    return value


def _choice(
    obj: dict[str, Any], key: str, path: str, choices: list[str], errors: _Errors
) -> str | None:
    value = _string(obj, key, path, errors)
    if value is None:
        return None
    if value not in choices:
        errors.add(path, gettext("Must be one of: %(choices)s.") % {"choices": ", ".join(choices)})
        return None
    return value


def _boolean(obj: dict[str, Any], key: str, path: str, errors: _Errors) -> bool | None:
    value = _get(obj, key, path, errors)
    if value is _MISSING:
        return None
    if not isinstance(value, bool):
        errors.add(path, gettext("Must be true or false."))
        return None
    return value


def _money(
    obj: dict[str, Any], key: str, path: str, errors: _Errors, *, positive: bool
) -> Decimal | None:
    value = _get(obj, key, path, errors)
    if value is _MISSING:
        return None
    hint = gettext('Must be a decimal string such as "9.90".')
    if not isinstance(value, str):
        errors.add(path, hint)
        return None
    match = _MONEY_RE.fullmatch(value)
    if match is None:
        errors.add(path, hint)
        return None
    sign, _whole, fraction = match.groups()
    if fraction is not None and len(fraction) > 2:
        errors.add(path, gettext("At most 2 decimal places."))
        return None
    amount = Decimal(value)
    if positive and amount <= 0:
        errors.add(path, gettext("Must be greater than 0."))
        return None
    if sign:
        errors.add(path, gettext("Must not be negative."))
        return None
    if amount > MAX_MONEY:
        errors.add(path, gettext("Too large: at most %(max)s.") % {"max": MAX_MONEY})
        return None
    return amount.quantize(Decimal("0.01"))


def _format_money(value: Decimal) -> str:
    return format(value.quantize(Decimal("0.01")), "f")


def _time(
    obj: dict[str, Any], key: str, path: str, errors: _Errors, *, nullable: bool = False
) -> dt.datetime | None:
    value = _get(obj, key, path, errors, nullable=nullable)
    if value is _MISSING or value is None:
        return None
    hint = gettext(
        'Must be an ISO 8601 date and time with a UTC offset, such as "2026-11-22T10:15:00+08:00".'
    )
    if not isinstance(value, str):
        errors.add(path, hint)
        return None
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        errors.add(path, hint)
        return None
    if moment.tzinfo is None or moment.utcoffset() is None:
        errors.add(path, gettext("Must include a UTC offset, such as +08:00."))
        return None
    try:
        in_utc = moment.astimezone(dt.UTC)
    except OverflowError:
        in_utc = None
    if in_utc is None or not EARLIEST <= in_utc < LATEST:
        errors.add(path, gettext("Must be between 1970 and 2100."))
        return None
    return moment


def _order(payload: dict[str, Any], errors: _Errors) -> OrderIn | None:
    order = _get(payload, "order", "order", errors)
    if order is _MISSING:
        return None
    if not isinstance(order, dict):
        errors.add("order", gettext("Must be an object."))
        return None
    before = len(errors.as_dict())
    order_id = _identifier(order, "order_id", "order.order_id", errors)
    status = _choice(order, "status", "order.status", OrderStatus.values, errors)
    paid_at = _time(order, "paid_at", "order.paid_at", errors)
    shipped_at = _time(order, "shipped_at", "order.shipped_at", errors, nullable=True)
    received_at = _time(order, "received_at", "order.received_at", errors, nullable=True)
    tags = _tags(order, errors)
    items = _items(order, errors)
    if len(errors.as_dict()) != before:
        return None
    assert order_id is not None and status is not None and paid_at is not None
    assert tags is not None and items is not None
    return OrderIn(
        order_id=order_id,
        status=status,
        paid_at=paid_at,
        shipped_at=shipped_at,
        received_at=received_at,
        tags=tags,
        items=items,
    )


def _tags(order: dict[str, Any], errors: _Errors) -> list[str] | None:
    tags = _get(order, "tags", "order.tags", errors)
    if tags is _MISSING:
        return None
    if not isinstance(tags, list):
        errors.add("order.tags", gettext("Must be a list of strings."))
        return None
    ok = True
    for index, tag in enumerate(tags):
        path = f"order.tags.{index}"
        if not isinstance(tag, str):
            errors.add(path, gettext("Must be a string."))
            ok = False
        elif not tag.strip() or len(tag) > MAX_TAG_LENGTH:
            errors.add(path, gettext("Must be 1 to %(max)d characters.") % {"max": MAX_TAG_LENGTH})
            ok = False
    return list(tags) if ok else None


def _items(order: dict[str, Any], errors: _Errors) -> list[ItemIn] | None:
    items = _get(order, "items", "order.items", errors)
    if items is _MISSING:
        return None
    if not isinstance(items, list):
        errors.add("order.items", gettext("Must be a list."))
        return None
    if not items:
        errors.add("order.items", gettext("Must hold at least one item."))
        return None
    result: list[ItemIn] = []
    for index, item in enumerate(items):
        path = f"order.items.{index}"
        if not isinstance(item, dict):
            errors.add(path, gettext("Must be an object."))
            continue
        product_id = _identifier(item, "product_id", f"{path}.product_id", errors)
        title = _string(item, "title", f"{path}.title", errors)
        if title is not None and len(title) > MAX_TITLE_LENGTH:
            errors.add(
                f"{path}.title",
                gettext("At most %(max)d characters.") % {"max": MAX_TITLE_LENGTH},
            )
            title = None
        quantity = _quantity(item, f"{path}.quantity", errors)
        price = _money(item, "price", f"{path}.price", errors, positive=False)
        if product_id is None or title is None or quantity is None or price is None:
            continue
        result.append(ItemIn(product_id=product_id, title=title, quantity=quantity, price=price))
    return result if len(result) == len(items) else None


def _quantity(item: dict[str, Any], path: str, errors: _Errors) -> int | None:
    value = _get(item, "quantity", path, errors)
    if value is _MISSING:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        errors.add(path, gettext("Must be a whole number."))
        return None
    if not 1 <= value <= MAX_QUANTITY:
        errors.add(path, gettext("Must be between 1 and %(max)d.") % {"max": MAX_QUANTITY})
        return None
    return value
