"""Strategy files (API.md "Strategy files"): export a shop's strategies as a JSON list, import
such a list into a shop, all or nothing.

Import validates every entry first and stores nothing when one is invalid; the error names the
entry (its index in the list, from 0, and its name) and the field, with keys such as
``"[2].per_request_cap"``. Imported strategies are appended after the shop's existing ones in
their scenario, with the status the file gives. Product ids are the platform's: an id the shop
has not seen yet is created as a product of the shop (the platform is authoritative).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from strategies.models import (
    MAX_STRATEGIES_PER_SCENARIO,
    SCENARIO_ORDER,
    SCENARIOS_WITH_ORDER_STATUS,
    SCENARIOS_WITH_PRODUCTS,
    Product,
    Scenario,
    Shop,
    Strategy,
    StrategyStatus,
)
from strategies.services.strategies import (
    EDITABLE_FIELDS,
    Actor,
    strategy_check,
    strategy_create,
)

FILE_KEYS = (
    "name",
    "scenario",
    "status",
    "valid_from",
    "valid_until",
    "window",
    "products",
    "order_status",
    "daily_cap",
    "per_request_cap",
    "max_hours_since_payment",
    "reasons",
    "risk_control",
    "max_per_buyer_30d",
    "remark",
)
ORDER_STATUS_KEYS = ("shipped", "received")

# Model field -> the key of the file that holds it (for error messages).
_FILE_KEY_OF = {
    "window_start": "window",
    "window_end": "window",
    "covers_shipped": "order_status",
    "covers_received": "order_status",
    "shipped_min_days": "order_status.shipped.min_days",
    "shipped_max_days": "order_status.shipped.max_days",
    "received_min_days": "order_status.received.min_days",
    "received_max_days": "order_status.received.max_days",
    "__all__": "entry",
}


# -- export ------------------------------------------------------------------------------------


def _money(value: Decimal | None) -> str | None:
    return None if value is None else f"{value.quantize(Decimal('0.01'))}"


def _time(value: dt.time) -> str:
    return value.strftime("%H:%M:%S" if value.second else "%H:%M")


def strategy_to_entry(*, strategy: Strategy, zone: Any) -> dict[str, Any]:
    def when(value: dt.datetime | None) -> str | None:
        return None if value is None else value.astimezone(zone).isoformat()

    order_status: dict[str, dict[str, Any]] = {}
    for key in ORDER_STATUS_KEYS:
        if getattr(strategy, f"covers_{key}"):
            low, high = getattr(strategy, f"{key}_min_days"), getattr(strategy, f"{key}_max_days")
            order_status[key] = (
                {} if low is None and high is None else {"min_days": low, "max_days": high}
            )
    window = (
        None
        if strategy.window_start is None or strategy.window_end is None
        else {"start": _time(strategy.window_start), "end": _time(strategy.window_end)}
    )
    return {
        "name": strategy.name,
        "scenario": strategy.scenario,
        "status": strategy.status,
        "valid_from": when(strategy.valid_from),
        "valid_until": when(strategy.valid_until),
        "window": window,
        "products": sorted(p.product_id for p in strategy.products.all()),
        "order_status": order_status,
        "daily_cap": _money(strategy.daily_cap),
        "per_request_cap": _money(strategy.per_request_cap),
        "max_hours_since_payment": strategy.max_hours_since_payment,
        "reasons": list(strategy.reasons or []),
        "risk_control": strategy.risk_control,
        "max_per_buyer_30d": strategy.max_per_buyer_30d,
        "remark": strategy.remark,
    }


def strategies_export(*, shop: Shop) -> list[dict[str, Any]]:
    """The shop's strategies, scenario by scenario (in the fixed order), by priority within."""
    rank = {code: i for i, code in enumerate(SCENARIO_ORDER)}
    rows = sorted(
        Strategy.objects.filter(shop=shop).prefetch_related("products"),
        key=lambda s: (rank.get(s.scenario, len(rank)), s.position, s.pk),
    )
    return [strategy_to_entry(strategy=s, zone=shop.zone) for s in rows]


# -- import ------------------------------------------------------------------------------------


class _EntryError(Exception):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def _decimal(field: str, value: Any, *, nullable: bool) -> Decimal | None:
    if value is None:
        if nullable:
            return None
        raise _EntryError(field, _("This value is required."))
    if isinstance(value, bool | float):
        raise _EntryError(field, _('Give the amount as a string, e.g. "100.00".'))
    try:
        number = Decimal(str(value))
    except InvalidOperation as exc:
        raise _EntryError(field, _("Not a decimal number.")) from exc
    if not number.is_finite():
        raise _EntryError(field, _("Not a decimal number."))
    if number.as_tuple().exponent < -2:  # type: ignore[operator]
        raise _EntryError(field, _("At most 2 decimal places."))
    return number.quantize(Decimal("0.01"))


def _integer(field: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _EntryError(field, _("Give a whole number or null."))
    if value < 0:
        raise _EntryError(field, _("Must not be negative."))
    return value


def _boolean(field: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise _EntryError(field, _("Give true or false."))
    return value


def _string(field: str, value: Any) -> str:
    if not isinstance(value, str):
        raise _EntryError(field, _("Give a text."))
    return value


def _datetime(field: str, value: Any) -> dt.datetime | None:
    if value is None:
        return None
    try:
        parsed = dt.datetime.fromisoformat(_string(field, value))
    except ValueError as exc:
        raise _EntryError(field, _("Not an ISO 8601 date and time.")) from exc
    if parsed.tzinfo is None:
        raise _EntryError(field, _("Give the time with its offset, e.g. +08:00."))
    return parsed


def _clock(field: str, value: Any) -> dt.time:
    try:
        parsed = dt.time.fromisoformat(_string(field, value))
    except ValueError as exc:
        raise _EntryError(field, _('Not a time of day such as "22:00".')) from exc
    if parsed.tzinfo is not None:
        raise _EntryError(field, _("Give the time without an offset (the shop's time zone)."))
    return parsed


def _parse_entry(entry: Any) -> tuple[str, dict[str, Any], list[str]]:
    """(scenario, model fields, product ids) of one file entry, or ``_EntryError``."""
    if not isinstance(entry, dict):
        raise _EntryError("entry", _("Each entry must be an object."))
    unknown = sorted(set(entry) - set(FILE_KEYS))
    if unknown:
        raise _EntryError(unknown[0], _("Unknown key."))
    for required in ("name", "scenario"):
        if required not in entry:
            raise _EntryError(required, _("This key is required."))
    scenario = _string("scenario", entry["scenario"])
    if scenario not in Scenario.values:
        raise _EntryError("scenario", _("Unknown scenario."))
    status = _string("status", entry.get("status", StrategyStatus.INACTIVE))
    if status not in StrategyStatus.values:
        raise _EntryError("status", _("Give inactive, trial or active."))

    fields: dict[str, Any] = {
        "name": _string("name", entry["name"]),
        "remark": _string("remark", entry.get("remark") or ""),
        "status": status,
        "valid_from": _datetime("valid_from", entry.get("valid_from")),
        "valid_until": _datetime("valid_until", entry.get("valid_until")),
        "per_request_cap": _decimal("per_request_cap", entry.get("per_request_cap"), nullable=True),
        "max_hours_since_payment": _integer(
            "max_hours_since_payment", entry.get("max_hours_since_payment")
        ),
        "risk_control": _boolean("risk_control", entry.get("risk_control", True)),
        "max_per_buyer_30d": _integer("max_per_buyer_30d", entry.get("max_per_buyer_30d")),
    }
    if "daily_cap" in entry:
        fields["daily_cap"] = _decimal("daily_cap", entry["daily_cap"], nullable=False)

    window = entry.get("window")
    if window is not None:
        if not isinstance(window, dict) or set(window) != {"start", "end"}:
            raise _EntryError("window", _('Give {"start": "HH:MM", "end": "HH:MM"} or null.'))
        fields["window_start"] = _clock("window.start", window["start"])
        fields["window_end"] = _clock("window.end", window["end"])

    reasons = entry.get("reasons") or []
    if not isinstance(reasons, list) or not all(isinstance(r, str) for r in reasons):
        raise _EntryError("reasons", _("Give a list of reason codes."))
    fields["reasons"] = reasons

    products = entry.get("products") or []
    if not isinstance(products, list) or not all(isinstance(p, str) and p for p in products):
        raise _EntryError("products", _("Give a list of the platform's product ids."))
    if len(set(products)) != len(products):
        raise _EntryError("products", _("A product is listed twice."))
    if products and scenario not in SCENARIOS_WITH_PRODUCTS:
        raise _EntryError("products", _("This scenario does not restrict products."))

    if scenario in SCENARIOS_WITH_ORDER_STATUS and "order_status" in entry:
        order_status = entry["order_status"]
        if not isinstance(order_status, dict):
            raise _EntryError("order_status", _('Give an object such as {"shipped": {}}.'))
        unknown = sorted(set(order_status) - set(ORDER_STATUS_KEYS))
        if unknown:
            raise _EntryError(f"order_status.{unknown[0]}", _("Unknown order status."))
        for key in ORDER_STATUS_KEYS:
            fields[f"covers_{key}"] = key in order_status
            if key not in order_status:
                continue
            days = order_status[key] or {}
            if not isinstance(days, dict) or set(days) - {"min_days", "max_days"}:
                raise _EntryError(
                    f"order_status.{key}", _('Give {"min_days": N, "max_days": N} or {}.')
                )
            for bound in ("min_days", "max_days"):
                fields[f"{key}_{bound}"] = _integer(f"order_status.{key}.{bound}", days.get(bound))
    return scenario, fields, products


def _entry_errors(index: int, name: Any, errors: dict[str, list[str]]) -> dict[str, list[str]]:
    label = name if isinstance(name, str) else ""
    named: dict[str, list[str]] = {}
    for field, messages in errors.items():
        key = _FILE_KEY_OF.get(field, field)
        named.setdefault(f"[{index}].{key}", []).extend(
            _("entry %(index)d “%(name)s”, %(field)s: %(message)s")
            % {"index": index, "name": label, "field": key, "message": message}
            for message in messages
        )
    return named


def strategies_validate_file(*, shop: Shop, entries: Any) -> list[tuple[str, dict, list[str]]]:
    """Checks every entry of a file against the shop; raises one ``ValidationError`` naming every
    bad entry and field, or returns the parsed entries."""
    if not isinstance(entries, list):
        raise ValidationError({"file": [_("A strategy file is a JSON list of strategies.")]})
    errors: dict[str, list[str]] = {}
    parsed: list[tuple[str, dict, list[str]]] = []
    room = Counter(Strategy.objects.filter(shop=shop).values_list("scenario", flat=True))
    for index, entry in enumerate(entries):
        name = entry.get("name") if isinstance(entry, dict) else None
        try:
            scenario, fields, products = _parse_entry(entry)
        except _EntryError as exc:
            errors.update(_entry_errors(index, name, {exc.field: [exc.message]}))
            continue
        candidate = Strategy(shop=shop, scenario=scenario, position=1, **fields)
        problems = strategy_check(
            shop=shop,
            scenario=scenario,
            values={f: getattr(candidate, f) for f in EDITABLE_FIELDS},
        )
        try:
            candidate.full_clean(exclude=list(problems))
        except ValidationError as exc:
            for field, messages in exc.message_dict.items():
                problems.setdefault(field, []).extend(messages)
        room[scenario] += 1
        if room[scenario] > MAX_STRATEGIES_PER_SCENARIO:
            problems.setdefault("scenario", []).append(
                _("The scenario would hold more than %(max)d strategies.")
                % {"max": MAX_STRATEGIES_PER_SCENARIO}
            )
        if problems:
            errors.update(_entry_errors(index, name, problems))
            continue
        parsed.append((scenario, fields, products))
    if errors:
        raise ValidationError(errors)
    return parsed


def strategies_import(*, shop: Shop, entries: Sequence[Any], actor: Actor = None) -> list[Strategy]:
    """Stores every strategy of a file, or none: see the module's docstring."""
    parsed = strategies_validate_file(shop=shop, entries=entries)
    created: list[Strategy] = []
    with transaction.atomic():
        for index, (scenario, fields, product_ids) in enumerate(parsed):
            products = [
                Product.objects.get_or_create(shop=shop, product_id=pid)[0] for pid in product_ids
            ]
            try:
                created.append(
                    strategy_create(
                        shop=shop, scenario=scenario, actor=actor, products=products, **fields
                    )
                )
            except ValidationError as exc:
                # E.g. someone added strategies meanwhile: the whole file is rolled back.
                raise ValidationError(
                    _entry_errors(index, fields.get("name"), exc.message_dict)
                ) from exc
    return created
