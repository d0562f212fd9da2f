"""Strategy files (API.md "Strategy files", 1.1): export a shop's strategies as a JSON list,
import such a list into a shop, all or nothing.

``StrategyEntry`` is the one declaration of the format (pydantic), read on import and written on
export. An error names the entry and the field by its path in the file, ``3.daily_cap`` or
``0.window.start`` (the entry's index from 0, then the keys), in the interface language:
pydantic's own messages are English, so each of its error types is given a sentence of ours
(``SCHEMA_MESSAGES``). The schema says what the file may hold (types, sizes, ids); whether the
strategy makes sense is the model's and the services' (``strategy_errors``), as in the form.

Import validates every entry first and stores nothing when one is invalid. Imported strategies
are appended after the shop's existing ones in their scenario and arrive inactive, whatever the
file says, unless the caller keeps the file's status (an operator restoring a backup). Product
ids are the platform's: an id the shop has not seen yet is created as a product of the shop
(the platform is authoritative).
"""

from __future__ import annotations

import datetime as dt
import json
import zoneinfo
from collections import Counter
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Annotated, Any, Literal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop, ngettext
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    Strict,
    StringConstraints,
    field_validator,
    model_serializer,
)
from pydantic import ValidationError as SchemaError
from pydantic_core import ErrorDetails, PydanticCustomError

from strategies.models import (
    DEFAULT_DAILY_CAP,
    MAX_STRATEGIES_PER_SCENARIO,
    SCENARIO_ORDER,
    STRATEGY_CREATE_SETTINGS,
    STRATEGY_SETTINGS,
    Product,
    Reason,
    Scenario,
    Shop,
    Strategy,
    StrategyStatus,
    StrategyTemplate,
    setting_applies,
)
from strategies.services.strategies import Actor, strategy_create, strategy_errors

CENT = Decimal("0.01")
ORDER_STATUS_KEYS = ("shipped", "received")
# API.md 1.1: platform ids are 1-64 of A-Z a-z 0-9 _ - . : starting with a letter or digit.
PLATFORM_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$"
# The columns' sizes: an integer setting is a PostgreSQL integer, money has 14 digits.
MAX_COUNT = 2**31 - 1


def _max_length(model: Any, field: str) -> int:
    return int(model._meta.get_field(field).max_length)


# -- the format --------------------------------------------------------------------------------


def _text_only(value: Any) -> Any:
    # Dates and times are text in a file: no number read as a Unix timestamp.
    if not isinstance(value, str):
        raise PydanticCustomError("text_expected", "Give a text")
    return value


def _no_nul(value: str) -> str:
    # PostgreSQL text cannot hold NUL: refused here, never a database error.
    if "\x00" in value:
        raise PydanticCustomError("text_nul", "Text may not contain the NUL character")
    return value


def _no_float(value: Any) -> Any:
    # A binary float is not an amount (0.1 + 0.2); a JSON number read as Decimal is.
    if isinstance(value, float):
        raise PydanticCustomError("money_float", 'Give the amount as a string, e.g. "100.00"')
    return value


def _cents(value: Decimal) -> Decimal:
    return value.quantize(CENT)


def _no_offset(value: dt.time) -> dt.time:
    if value.tzinfo is not None:
        raise PydanticCustomError("time_offset", "Give the time without an offset")
    return value


def _clock_text(value: dt.time) -> str:
    return value.strftime("%H:%M:%S" if value.second else "%H:%M")


def _iso(value: dt.datetime) -> str:
    return value.isoformat()


Name = Annotated[
    str,
    Strict(),
    StringConstraints(min_length=1, max_length=_max_length(Strategy, "name")),
    AfterValidator(_no_nul),
]
Remark = Annotated[
    str,
    Strict(),
    StringConstraints(max_length=_max_length(Strategy, "remark")),
    AfterValidator(_no_nul),
]
Money = Annotated[
    Decimal,
    BeforeValidator(_no_float),
    Field(max_digits=14, decimal_places=2),
    AfterValidator(_cents),
]
Count = Annotated[int, Strict(), Field(ge=0, le=MAX_COUNT)]
Moment = Annotated[
    AwareDatetime, BeforeValidator(_text_only), PlainSerializer(_iso, return_type=str)
]
Clock = Annotated[
    dt.time,
    BeforeValidator(_text_only),
    AfterValidator(_no_offset),
    PlainSerializer(_clock_text, return_type=str),
]
PlatformId = Annotated[
    str,
    Strict(),
    StringConstraints(max_length=_max_length(Product, "product_id"), pattern=PLATFORM_ID_PATTERN),
]


class _Schema(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Window(_Schema):
    start: Clock
    end: Clock


class DayRange(_Schema):
    min_days: Count | None = None
    max_days: Count | None = None

    @model_serializer
    def dump_keys(self) -> dict[str, Any]:
        if self.min_days is None and self.max_days is None:
            return {}
        return {"min_days": self.min_days, "max_days": self.max_days}


class OrderStatusCover(_Schema):
    """A key per covered status (``{}`` or null: the whole status); absent: not covered."""

    shipped: DayRange | None = None
    received: DayRange | None = None

    def covers(self, key: str) -> bool:
        return key in self.model_fields_set

    @model_serializer
    def dump_keys(self) -> dict[str, Any]:
        return {
            key: (getattr(self, key) or DayRange()).dump_keys()
            for key in ORDER_STATUS_KEYS
            if self.covers(key)
        }


class StrategyEntry(_Schema):
    """One strategy of a file, in API.md's order of keys."""

    name: Name
    scenario: Scenario
    status: StrategyStatus = StrategyStatus.INACTIVE
    valid_from: Moment | None = None
    valid_until: Moment | None = None
    window: Window | None = None
    products: list[PlatformId] | None = None
    order_status: OrderStatusCover | None = None
    daily_cap: Money = DEFAULT_DAILY_CAP
    per_request_cap: Money | None = None
    max_hours_since_payment: Count | None = None
    reasons: list[Reason] | None = None
    risk_control: Annotated[bool, Strict()] = True
    max_per_buyer_30d: Count | None = None
    template: Literal["small_amount"] | None = None
    remark: Remark | None = None

    @field_validator("products")
    @classmethod
    def _each_product_once(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and len(set(value)) != len(value):
            raise PydanticCustomError("product_twice", "A product is listed twice")
        return value

    def to_model_fields(self) -> dict[str, Any]:
        """The strategy's model fields (``products``: the platform's ids)."""
        fields: dict[str, Any] = {name: getattr(self, name) for name in _FLAT}
        fields.update(
            status=str(self.status),
            reasons=[str(r) for r in self.reasons or ()],
            template=self.template or StrategyTemplate.NONE,
            remark=self.remark or "",
            products=list(self.products or ()),
        )
        if self.window is not None:
            fields.update(window_start=self.window.start, window_end=self.window.end)
        if self.order_status is not None and setting_applies("covers_shipped", self.scenario):
            for key in ORDER_STATUS_KEYS:
                days = getattr(self.order_status, key) or DayRange()
                fields[f"covers_{key}"] = self.order_status.covers(key)
                fields[f"{key}_min_days"] = days.min_days
                fields[f"{key}_max_days"] = days.max_days
        return fields

    @classmethod
    def of(cls, strategy: Strategy, *, zone: zoneinfo.ZoneInfo) -> StrategyEntry:
        """The entry of a stored strategy (times in the shop's zone)."""
        values: dict[str, Any] = {name: getattr(strategy, name) for name in _FLAT}
        for name in ("valid_from", "valid_until"):
            if values[name] is not None:
                values[name] = values[name].astimezone(zone)
        covered = {
            key: DayRange.model_construct(
                min_days=getattr(strategy, f"{key}_min_days"),
                max_days=getattr(strategy, f"{key}_max_days"),
            )
            for key in ORDER_STATUS_KEYS
            if getattr(strategy, f"covers_{key}")
        }
        values.update(
            scenario=Scenario(strategy.scenario),
            status=StrategyStatus(strategy.status),
            window=(
                Window.model_construct(start=strategy.window_start, end=strategy.window_end)
                if strategy.window_start is not None and strategy.window_end is not None
                else None
            ),
            products=sorted(p.product_id for p in strategy.products.all()),
            order_status=OrderStatusCover.model_construct(_fields_set=set(covered), **covered),
            daily_cap=_cents(strategy.daily_cap),
            per_request_cap=(
                None if strategy.per_request_cap is None else _cents(strategy.per_request_cap)
            ),
            reasons=[Reason(r) if r in Reason.values else r for r in strategy.reasons or ()],
            template=strategy.template or None,
        )
        return cls.model_construct(**values)


# Where each setting is in a file: the window's and the order status's are nested.
_NESTED: dict[str, str] = {
    "window_start": "window.start",
    "window_end": "window.end",
    "covers_shipped": "order_status.shipped",
    "shipped_min_days": "order_status.shipped.min_days",
    "shipped_max_days": "order_status.shipped.max_days",
    "covers_received": "order_status.received",
    "received_min_days": "order_status.received.min_days",
    "received_max_days": "order_status.received.max_days",
}
FILE_PATH: dict[str, str] = {
    name: _NESTED.get(name, name) for name in (*STRATEGY_SETTINGS, *STRATEGY_CREATE_SETTINGS)
}
# The settings that are a key of their own, as the model holds them.
_FLAT = tuple(
    name
    for name in (*STRATEGY_SETTINGS, *STRATEGY_CREATE_SETTINGS)
    if name not in _NESTED and name != "products"
)
# A rule of the model over the window (start and end together) is the window's, one over the
# covered statuses the order status's.
_ERROR_PATH = {
    **FILE_PATH,
    "window_start": "window",
    "window_end": "window",
    "covers_shipped": "order_status",
    "covers_received": "order_status",
    "__all__": "",
}


# -- errors in the interface language ------------------------------------------------------------

# pydantic's error types (and ours, raised above) -> the sentence shown; ``%(...)s`` are the
# error's context. An unlisted type falls back to pydantic's English text.
SCHEMA_MESSAGES: dict[str, str] = {
    "missing": gettext_noop("This key is required."),
    "extra_forbidden": gettext_noop("Unknown key."),
    "model_type": gettext_noop("Give an object."),
    "model_attributes_type": gettext_noop("Give an object."),
    "dict_type": gettext_noop("Give an object."),
    "list_type": gettext_noop("Give a list."),
    "string_type": gettext_noop("Give a text."),
    "text_expected": gettext_noop("Give a text."),
    "string_too_short": gettext_noop("Give at least %(min_length)s characters."),
    "string_too_long": gettext_noop("At most %(max_length)s characters."),
    "string_pattern_mismatch": gettext_noop(
        "Not a platform id: 1 to 64 of A-Z a-z 0-9 _ - . : starting with a letter or digit."
    ),
    "text_nul": gettext_noop("Text may not contain the NUL character."),
    "bool_type": gettext_noop("Give true or false."),
    "int_type": gettext_noop("Give a whole number or null."),
    "int_parsing": gettext_noop("Give a whole number or null."),
    "int_from_float": gettext_noop("Give a whole number or null."),
    "greater_than_equal": gettext_noop("Give at least %(ge)s."),
    "less_than_equal": gettext_noop("Give at most %(le)s."),
    "decimal_type": gettext_noop('Give the amount as a string, e.g. "100.00".'),
    "money_float": gettext_noop('Give the amount as a string, e.g. "100.00".'),
    "decimal_parsing": gettext_noop("Not a decimal number."),
    "finite_number": gettext_noop("Not a decimal number."),
    "decimal_max_digits": gettext_noop("Too large: at most %(max_digits)s digits in all."),
    "decimal_whole_digits": gettext_noop(
        "Too large: at most %(whole_digits)s digits before the decimal point."
    ),
    "decimal_max_places": gettext_noop("At most %(decimal_places)s decimal places."),
    "enum": gettext_noop("Give one of: %(expected)s."),
    "literal_error": gettext_noop("Give one of: %(expected)s, or null."),
    "datetime_type": gettext_noop("Not an ISO 8601 date and time."),
    "datetime_parsing": gettext_noop("Not an ISO 8601 date and time."),
    "datetime_from_date_parsing": gettext_noop("Not an ISO 8601 date and time."),
    "timezone_aware": gettext_noop("Give the time with its offset, e.g. +08:00."),
    "time_type": gettext_noop('Not a time of day such as "22:00".'),
    "time_parsing": gettext_noop('Not a time of day such as "22:00".'),
    "time_offset": gettext_noop("Give the time without an offset (the shop's time zone)."),
    "product_twice": gettext_noop("A product is listed twice."),
    "recursion_loop": gettext_noop("Nested too deeply."),
}


def schema_message(error: ErrorDetails) -> str:
    """One pydantic error as a sentence in the active language."""
    template = SCHEMA_MESSAGES.get(error["type"])
    if template is None:
        return error["msg"]
    context = {k: str(v).replace(" or ", ", ") for k, v in (error.get("ctx") or {}).items()}
    try:
        return _(template) % context
    except (KeyError, TypeError, ValueError):
        return error["msg"]


def _shown_key(part: Any) -> str:
    # A key of the file as given, control characters (NUL...) escaped.
    text = str(part)
    return text if text.isprintable() else text.encode("unicode_escape").decode("ascii")


def _named(
    errors: dict[str, list[str]], *, index: int, name: Any, problems: Mapping[str, list[str]]
) -> None:
    label = _shown_key(name) if isinstance(name, str) else ""
    for path, messages in problems.items():
        key = f"{index}.{path}" if path else str(index)
        for message in messages:
            if path:
                text = _("entry %(index)d “%(name)s”, %(field)s: %(message)s") % {
                    "index": index,
                    "name": label,
                    "field": path,
                    "message": message,
                }
            else:
                text = _("entry %(index)d “%(name)s”: %(message)s") % {
                    "index": index,
                    "name": label,
                    "message": message,
                }
            errors.setdefault(key, []).append(text)


def _schema_problems(exc: SchemaError) -> dict[str, list[str]]:
    problems: dict[str, list[str]] = {}
    for error in exc.errors(include_url=False):
        path = ".".join(_shown_key(part) for part in error["loc"])
        problems.setdefault(path, []).append(schema_message(error))
    return problems


# -- export ------------------------------------------------------------------------------------


def strategy_to_entry(*, strategy: Strategy, zone: zoneinfo.ZoneInfo) -> dict[str, Any]:
    return StrategyEntry.of(strategy, zone=zone).model_dump(mode="json")


def strategies_export(*, shop: Shop) -> list[dict[str, Any]]:
    """The shop's strategies, scenario by scenario (in the fixed order), by priority within.
    Archived strategies are not exported."""
    rank = {code: i for i, code in enumerate(SCENARIO_ORDER)}
    rows = sorted(
        Strategy.objects.filter(shop=shop).prefetch_related("products"),
        key=lambda s: (rank.get(s.scenario, len(rank)), s.position, s.pk),
    )
    return [strategy_to_entry(strategy=s, zone=shop.zone) for s in rows]


# -- import ------------------------------------------------------------------------------------

Parsed = tuple[str, dict[str, Any]]


def strategies_validate_file(
    *, shop: Shop, entries: Any, keep_status: bool = False
) -> list[Parsed]:
    """Checks every entry of a file against the shop; raises one ``ValidationError`` naming every
    bad entry and field (keys such as ``"3.daily_cap"``), or returns (scenario, fields) each.
    ``keep_status``: keep the file's status; otherwise every strategy arrives inactive."""
    if not isinstance(entries, list):
        raise ValidationError({"file": [_("A strategy file is a JSON list of strategies.")]})
    most = MAX_STRATEGIES_PER_SCENARIO * len(SCENARIO_ORDER)
    if len(entries) > most:
        raise ValidationError(
            {"file": [_("A shop holds at most %(most)d strategies.") % {"most": most}]}
        )
    errors: dict[str, list[str]] = {}
    parsed: list[Parsed] = []
    room = Counter(Strategy.objects.filter(shop=shop).values_list("scenario", flat=True))
    names: set[str] = set()
    for index, raw in enumerate(entries):
        name = raw.get("name") if isinstance(raw, dict) else None
        try:
            entry = StrategyEntry.model_validate(raw)
        except SchemaError as exc:
            _named(errors, index=index, name=name, problems=_schema_problems(exc))
            continue
        fields = entry.to_model_fields()
        if not keep_status:
            fields["status"] = StrategyStatus.INACTIVE
        scenario = str(entry.scenario)
        product_ids = fields.pop("products")
        candidate = Strategy(shop=shop, scenario=scenario, position=1, **fields)
        problems: dict[str, list[str]] = {}
        for field, messages in strategy_errors(candidate).items():
            problems.setdefault(_ERROR_PATH.get(field, field), []).extend(messages)
        if fields["name"] in names:
            problems.setdefault("name", []).append(
                _("The file names another strategy “%(name)s” too: names are unique in a shop.")
                % {"name": fields["name"]}
            )
        names.add(fields["name"])
        room[scenario] += 1
        if room[scenario] > MAX_STRATEGIES_PER_SCENARIO:
            problems.setdefault("scenario", []).append(
                _("The scenario would hold more than %(max)d strategies.")
                % {"max": MAX_STRATEGIES_PER_SCENARIO}
            )
        if problems:
            _named(errors, index=index, name=name, problems=problems)
            continue
        parsed.append((scenario, {**fields, "products": product_ids}))
    if errors:
        raise ValidationError(errors)
    return parsed


def strategies_import(
    *, shop: Shop, entries: Sequence[Any], actor: Actor = None, keep_status: bool = False
) -> list[Strategy]:
    """Stores every strategy of a file, or none: see the module's docstring."""
    parsed = strategies_validate_file(shop=shop, entries=entries, keep_status=keep_status)
    created: list[Strategy] = []
    with transaction.atomic():
        for index, (scenario, fields) in enumerate(parsed):
            products = [
                Product.objects.get_or_create(shop=shop, product_id=pid)[0]
                for pid in fields.pop("products")
            ]
            try:
                created.append(
                    strategy_create(
                        shop=shop, scenario=scenario, actor=actor, products=products, **fields
                    )
                )
            except ValidationError as exc:
                # E.g. someone added strategies meanwhile: the whole file is rolled back.
                errors: dict[str, list[str]] = {}
                problems = {_ERROR_PATH.get(f, f): m for f, m in exc.message_dict.items()}
                _named(errors, index=index, name=fields.get("name"), problems=problems)
                raise ValidationError(errors) from exc
    return created


def strategies_import_summary(*, count: int, shop: Shop, kept_status: bool) -> str:
    """What an import tells the person who ran it, in the active language."""
    if kept_status:
        return ngettext(
            "%(count)d strategy imported into %(shop)s, with the status the file gives.",
            "%(count)d strategies imported into %(shop)s, with the statuses the file gives.",
            count,
        ) % {"count": count, "shop": shop.code}
    return ngettext(
        "%(count)d strategy imported into %(shop)s, inactive: switch it on after checking.",
        "%(count)d strategies imported into %(shop)s, all inactive: switch them on after checking.",
        count,
    ) % {"count": count, "shop": shop.code}


def strategies_read_file(data: bytes) -> Any:
    """A strategy file's bytes as JSON (numbers with a fraction as Decimal, never float), or
    a ``ValidationError`` saying why it cannot be read."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValidationError({"file": [_("The file is not UTF-8 text.")]}) from exc
    try:
        return json.loads(text, parse_float=Decimal)
    except RecursionError as exc:
        raise ValidationError(
            {"file": [_("The file is nested too deeply to be a strategy file.")]}
        ) from exc
    except ValueError as exc:
        raise ValidationError(
            {"file": [_("The file is not valid JSON: %(error)s") % {"error": exc}]}
        ) from exc
