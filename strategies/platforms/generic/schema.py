"""The intake payload (API.md ``POST /api/v1/aftersales``), declared once as a pydantic schema.

Strict and explicit, so a platform engineer reading a 400 knows exactly what to fix:

- every field API.md lists is required; only ``order.shipped_at`` and ``order.received_at`` may
  be ``null``; no type is coerced (``"1"`` is not a quantity, ``1`` is not ``true``);
- ids (``aftersale_id``, ``buyer_id``, ``order.order_id``, ``items[].product_id``) are 1 to 64
  characters of ``A-Z a-z 0-9 _ - . :`` starting with a letter or digit (API.md 1.1), so no id
  is a path trick such as ``.``, ``..`` or ``a/b``;
- keys API.md does not list are ignored (kept in the stored raw payload), so the platform may
  add fields without breaking intake;
- money (``amount``, ``order.items.N.price``) is a JSON **string** of ASCII digits with at most
  two decimals (``"9.90"``, ``"10"``); JSON numbers, exponents, signs, ``NaN`` and ``Infinity``
  are rejected; it must fit the database's ``Decimal(14, 2)``; ``amount`` is > 0 and at most
  the order's total;
- times are ISO 8601 **with** a UTC offset, between 1970 and 2100;
- anywhere in the body (ignored keys included): no NUL character, no lone surrogate, no
  non-finite number and no nesting deeper than ``MAX_DEPTH``, since PostgreSQL's ``jsonb``
  could not store them (checked before the schema, which then only sees storable text).

Errors are collected per field path (``"order.items.0.price"``), each pydantic error type
mapped to one translated message (``_MESSAGES``), and raised together as ``PayloadInvalid``;
nothing here touches the database. The result is the neutral ``AfterSaleIn``.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Sequence
from decimal import Decimal
from typing import Annotated, Any

from django.utils.functional import Promise
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_core import ErrorDetails, PydanticCustomError

from strategies.models import AfterSaleType, OrderStatus, Reason
from strategies.platforms.base import AfterSaleIn, ItemIn, OrderIn

MAX_ID_LENGTH = 64
# API.md 1.1. pydantic searches for a pattern (Rust regex): anchored, and there ``$`` is the
# very end (a trailing newline does not match).
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:\-]*$"
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
_CENT = Decimal("0.01")

BODY = "body"  # The error key for a body that is not a JSON object at all.

# One message per error type: pydantic's own types, then this module's (PydanticCustomError).
_MESSAGES: dict[str, Promise] = {
    "missing": _("This field is required."),
    "null": _("This field may not be null."),
    "string_type": _("Must be a string."),
    "string_too_short": _("Must not be empty."),
    "string_too_long": _("At most %(max_length)d characters."),
    "string_pattern_mismatch": _(
        "Only A-Z, a-z, 0-9, “_”, “-”, “.” and “:”, starting with a letter or digit."
    ),
    "bool_type": _("Must be true or false."),
    "int_type": _("Must be a whole number."),
    "model_type": _("Must be an object."),
    "list_type": _("Must be a list."),
    "too_short": _("Must hold at least one item."),
    "choice": _("Must be one of: %(choices)s."),
    "tags_type": _("Must be a list of strings."),
    "tag_length": _("Must be 1 to %(max)d characters."),
    "quantity_range": _("Must be between 1 and %(max)d."),
    "money_format": _('Must be a decimal string such as "9.90".'),
    "money_places": _("At most 2 decimal places."),
    "money_not_positive": _("Must be greater than 0."),
    "money_negative": _("Must not be negative."),
    "money_too_large": _("Too large: at most %(max)s."),
    "over_total": _("Must not be more than the order's total (%(total)s)."),
    "time_format": _(
        'Must be an ISO 8601 date and time with a UTC offset, such as "2026-11-22T10:15:00+08:00".'
    ),
    "time_offset": _("Must include a UTC offset, such as +08:00."),
    "time_range": _("Must be between 1970 and 2100."),
}


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


def storable_text(text: str) -> bool:
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# --- the field types ---------------------------------------------------------------------------


def _fail(kind: str, **context: Any) -> PydanticCustomError:
    # The template is never shown: ``_message`` translates by ``kind``.
    return PydanticCustomError(kind, kind, context or None)


def _money(value: Any, *, positive: bool) -> Decimal:
    if not isinstance(value, str):
        raise _fail("money_format")
    match = _MONEY_RE.fullmatch(value)
    if match is None:
        raise _fail("money_format")
    sign, _whole, fraction = match.groups()
    if fraction is not None and len(fraction) > 2:
        raise _fail("money_places")
    amount = Decimal(value)
    if positive and amount <= 0:
        raise _fail("money_not_positive")
    if sign:
        raise _fail("money_negative")
    if amount > MAX_MONEY:
        raise _fail("money_too_large", max=str(MAX_MONEY))
    return amount.quantize(_CENT)


def _amount(value: Any) -> Decimal:
    return _money(value, positive=True)


def _price(value: Any) -> Decimal:
    return _money(value, positive=False)


def _moment(value: Any) -> dt.datetime:
    if not isinstance(value, str):
        raise _fail("time_format")
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise _fail("time_format") from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise _fail("time_offset")
    try:
        in_utc: dt.datetime | None = moment.astimezone(dt.UTC)
    except OverflowError:
        in_utc = None
    if in_utc is None or not EARLIEST <= in_utc < LATEST:
        raise _fail("time_range")
    return moment


def _moment_or_null(value: Any) -> dt.datetime | None:
    return None if value is None else _moment(value)


def _one_of(choices: Sequence[str]) -> AfterValidator:
    allowed = frozenset(choices)
    listed = ", ".join(choices)

    def check(value: str) -> str:
        if value not in allowed:
            raise _fail("choice", choices=listed)
        return value

    return AfterValidator(check)


def _tags_list(value: Any) -> Any:
    if not isinstance(value, list):
        raise _fail("tags_type")
    return value


def _tag(value: str) -> str:
    if not value.strip() or len(value) > MAX_TAG_LENGTH:
        raise _fail("tag_length", max=MAX_TAG_LENGTH)
    return value


def _quantity(value: int) -> int:
    if not 1 <= value <= MAX_QUANTITY:
        raise _fail("quantity_range", max=MAX_QUANTITY)
    return value


Identifier = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_ID_LENGTH, pattern=ID_PATTERN)
]
Title = Annotated[str, StringConstraints(max_length=MAX_TITLE_LENGTH)]
Amount = Annotated[Decimal, PlainValidator(_amount)]
Price = Annotated[Decimal, PlainValidator(_price)]
Moment = Annotated[dt.datetime, PlainValidator(_moment)]
MomentOrNull = Annotated[dt.datetime | None, PlainValidator(_moment_or_null)]
Quantity = Annotated[int, AfterValidator(_quantity)]
Tags = Annotated[list[Annotated[str, AfterValidator(_tag)]], BeforeValidator(_tags_list)]

# Strict: no coercion, so every wrong type is an error rather than a guess.
_CONFIG = ConfigDict(strict=True, extra="ignore")


class _Item(BaseModel):
    model_config = _CONFIG

    product_id: Identifier
    title: Title
    quantity: Quantity
    price: Price


class _Order(BaseModel):
    model_config = _CONFIG

    order_id: Identifier
    status: Annotated[str, _one_of(OrderStatus.values)]
    paid_at: Moment
    shipped_at: MomentOrNull
    received_at: MomentOrNull
    tags: Tags
    items: Annotated[list[_Item], Field(min_length=1)]

    @property
    def total(self) -> Decimal:
        return sum((item.price * item.quantity for item in self.items), Decimal("0.00"))


class _AfterSale(BaseModel):
    model_config = _CONFIG

    aftersale_id: Identifier
    buyer_id: Identifier
    type: Annotated[str, _one_of(AfterSaleType.values)]
    reason: Annotated[str, _one_of(Reason.values)]
    applied_at: Moment
    risk_flag: bool
    order: _Order
    # After ``order``: fields validate in order, and the total needs the validated order.
    amount: Amount

    @field_validator("amount")
    @classmethod
    def _at_most_the_order_total(cls, amount: Decimal, info: ValidationInfo) -> Decimal:
        order = info.data.get("order")
        if order is not None and amount > order.total:
            raise _fail("over_total", total=format(order.total.quantize(_CENT), "f"))
        return amount


# --- validation ----------------------------------------------------------------------------


def aftersale_payload_clean(payload: Any) -> AfterSaleIn:
    """Validates ``payload`` (parsed JSON) against the contract; ``PayloadInvalid`` if not."""
    if not isinstance(payload, dict):
        raise PayloadInvalid({BODY: [gettext("The body must be a JSON object.")]})
    unstorable = _unstorable(payload)
    if unstorable:
        raise PayloadInvalid(unstorable)
    try:
        valid = _AfterSale.model_validate(payload)
    except ValidationError as exc:
        raise PayloadInvalid(_errors(exc.errors(include_url=False))) from None
    order = valid.order
    return AfterSaleIn(
        aftersale_id=valid.aftersale_id,
        buyer_id=valid.buyer_id,
        type=valid.type,
        reason=valid.reason,
        amount=valid.amount,
        applied_at=valid.applied_at,
        risk_flag=valid.risk_flag,
        order=OrderIn(
            order_id=order.order_id,
            status=order.status,
            paid_at=order.paid_at,
            shipped_at=order.shipped_at,
            received_at=order.received_at,
            tags=order.tags,
            items=[
                ItemIn(
                    product_id=item.product_id,
                    title=item.title,
                    quantity=item.quantity,
                    price=item.price,
                )
                for item in order.items
            ],
        ),
    )


def _errors(details: list[ErrorDetails]) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    for detail in details:
        path = ".".join(str(part) for part in detail["loc"]) or BODY
        errors.setdefault(path, []).append(_message(detail))
    return errors


def _message(detail: ErrorDetails) -> str:
    kind = detail["type"]
    loc = detail["loc"]
    # ``null`` for a field says so, whatever its type; a list's element is just of a wrong type.
    if kind != "missing" and detail["input"] is None and loc and isinstance(loc[-1], str):
        kind = "null"
    template = _MESSAGES.get(kind)
    if template is None:  # a pydantic error type this schema does not expect: still an answer
        return gettext("Invalid value.")
    return str(template) % (detail.get("ctx") or {})


def _unstorable(payload: dict[str, Any]) -> dict[str, list[str]]:
    """What PostgreSQL's jsonb cannot hold, anywhere in the body (ignored keys included)."""
    errors: dict[str, list[str]] = {}

    def add(path: str, message: str) -> None:
        errors.setdefault(path, []).append(message)

    stack: list[tuple[Any, str, int]] = [(payload, "", 0)]
    while stack:
        value, path, depth = stack.pop()
        if depth > MAX_DEPTH:
            add(path or BODY, gettext("Nested too deeply."))
            continue
        if isinstance(value, dict):
            for key, child in value.items():
                if not storable_text(key):
                    add(path or BODY, gettext("A key holds characters not allowed."))
                    continue
                stack.append((child, f"{path}.{key}" if path else str(key), depth + 1))
        elif isinstance(value, list):
            for index, child in enumerate(value):
                stack.append((child, f"{path}.{index}" if path else str(index), depth + 1))
        elif isinstance(value, str):
            if not storable_text(value):
                add(path, gettext("Holds characters not allowed (NUL or a lone surrogate)."))
        elif isinstance(value, float) and not math.isfinite(value):
            add(path, gettext("Numbers must be finite."))
    return errors
