"""Writes on strategies: create (from scratch or from a template), update, status, delete and
reorder.

The rules the database cannot hold live here: at most ``MAX_STRATEGIES_PER_SCENARIO`` per
(shop, scenario), even when two staff add at the same moment (the shop row is locked), products
of the strategy's own shop only, reasons from ``Reason``, and priorities kept 1..n per scenario.
Every function raises ``ValidationError`` with field keys on bad input and changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from strategies.models import (
    MAX_STRATEGIES_PER_SCENARIO,
    SCENARIOS_WITH_ORDER_STATUS,
    SCENARIOS_WITH_PRODUCTS,
    SMALL_AMOUNT_DAILY_CAP,
    SMALL_AMOUNT_DEFAULT_PER_REQUEST_CAP,
    SMALL_AMOUNT_MAX_PER_REQUEST_CAP,
    Product,
    Reason,
    Scenario,
    Shop,
    Strategy,
    StrategyStatus,
    StrategyTemplate,
)

Actor = AbstractBaseUser | AnonymousUser | None

# The settings a merchant edits (everything but shop, scenario, position and timestamps).
EDITABLE_FIELDS: frozenset[str] = frozenset(
    {
        "name",
        "remark",
        "status",
        "template",
        "valid_from",
        "valid_until",
        "window_start",
        "window_end",
        "covers_shipped",
        "shipped_min_days",
        "shipped_max_days",
        "covers_received",
        "received_min_days",
        "received_max_days",
        "daily_cap",
        "per_request_cap",
        "max_hours_since_payment",
        "reasons",
        "risk_control",
        "max_per_buyer_30d",
    }
)


def strategy_check(
    *,
    shop: Shop | None,
    scenario: str,
    values: Mapping[str, Any],
    products: Iterable[Product] | None = None,
) -> dict[str, list[str]]:
    """The rules of one strategy's settings, as ``{field: [message, ...]}`` (empty when valid).

    Used by the services (which raise) and the admin form (which shows them next to each field),
    so the merchant sees a clear error before the database constraint would refuse the row.
    """
    errors: dict[str, list[str]] = {}

    def add(field: str, message: str) -> None:
        errors.setdefault(field, []).append(message)

    if scenario not in Scenario.values:
        add("scenario", _("Unknown scenario."))

    start, end = values.get("window_start"), values.get("window_end")
    if (start is None) != (end is None):
        add(
            "window_end" if end is None else "window_start",
            _("Give both the start and the end of the daily window, or neither (all day)."),
        )
    elif start is not None and start == end:
        add("window_end", _("The window's end must differ from its start."))

    valid_from, valid_until = values.get("valid_from"), values.get("valid_until")
    if valid_from is not None and valid_until is not None and valid_from >= valid_until:
        add("valid_until", _("The end of the validity period must be after its start."))

    ranges = (("shipped", _("days since shipment")), ("received", _("days since receipt")))
    for prefix, label in ranges:
        low, high = values.get(f"{prefix}_min_days"), values.get(f"{prefix}_max_days")
        if low is not None and high is not None and low > high:
            add(
                f"{prefix}_max_days",
                _("The maximum %(what)s must not be below the minimum.") % {"what": label},
            )
    if scenario in SCENARIOS_WITH_ORDER_STATUS and not (
        values.get("covers_shipped", True) or values.get("covers_received", True)
    ):
        add("covers_received", _("Choose at least one order status."))

    daily_cap = values.get("daily_cap")
    per_request_cap = values.get("per_request_cap")
    if daily_cap is not None and daily_cap <= 0:
        add("daily_cap", _("The daily total cap must be above zero."))
    if per_request_cap is not None:
        if per_request_cap <= 0:
            add("per_request_cap", _("The per-request cap must be above zero."))
        elif daily_cap is not None and per_request_cap > daily_cap:
            add("per_request_cap", _("The per-request cap must not exceed the daily total cap."))
    if values.get("template") == StrategyTemplate.SMALL_AMOUNT:
        if per_request_cap is None:
            add("per_request_cap", _("The small-amount strategy needs a per-request cap."))
        elif per_request_cap > SMALL_AMOUNT_MAX_PER_REQUEST_CAP:
            add(
                "per_request_cap",
                _("The small-amount strategy's per-request cap may be at most %(max)s.")
                % {"max": SMALL_AMOUNT_MAX_PER_REQUEST_CAP},
            )

    hours = values.get("max_hours_since_payment")
    if hours is not None and hours < 1:
        add("max_hours_since_payment", _("Give at least 1 hour, or leave it empty."))
    buyer = values.get("max_per_buyer_30d")
    if buyer is not None and buyer < 1:
        add("max_per_buyer_30d", _("Give at least 1, or leave it empty for no limit."))

    reasons = values.get("reasons")
    if reasons is not None:
        if not isinstance(reasons, list | tuple):
            add("reasons", _("Reasons must be a list."))
        else:
            unknown = [r for r in reasons if r not in Reason.values]
            if unknown:
                add(
                    "reasons",
                    _("Unknown reason: %(reasons)s.") % {"reasons": ", ".join(map(str, unknown))},
                )
            elif len(set(reasons)) != len(reasons):
                add("reasons", _("A reason is listed twice."))

    status = values.get("status")
    if status is not None and status not in StrategyStatus.values:
        add("status", _("Unknown status."))

    if products is not None:
        products = list(products)
        if products and scenario not in SCENARIOS_WITH_PRODUCTS:
            add("products", _("This scenario does not restrict products."))
        if shop is not None and any(p.shop_id != shop.pk for p in products):
            add("products", _("Choose products of this shop only."))
    return errors


def _raise(errors: dict[str, list[str]]) -> None:
    if errors:
        raise ValidationError(errors)


def _validated_products(*, shop: Shop, products: Iterable[Product | int] | None) -> list[Product]:
    if products is None:
        return []
    items = list(products)
    ids = [p.pk if isinstance(p, Product) else p for p in items]
    found = list(Product.objects.filter(pk__in=ids, shop=shop))
    if len(found) != len(set(ids)):
        raise ValidationError({"products": [_("Choose products of this shop only.")]})
    return found


def _full_clean(strategy: Strategy, products: list[Product] | None) -> None:
    values = {f: getattr(strategy, f) for f in EDITABLE_FIELDS}
    errors = strategy_check(
        shop=strategy.shop, scenario=strategy.scenario, values=values, products=products
    )
    _raise(errors)
    strategy.full_clean()


def _set_history_user(strategy: Strategy, actor: Actor) -> None:
    if actor is not None and getattr(actor, "is_authenticated", False):
        strategy._history_user = actor  # type: ignore[attr-defined]


def _lock_shop(shop: Shop) -> Shop:
    # Serializes every write to the shop's strategy counts and priorities (create, delete,
    # reorder): the 11th of two simultaneous adds waits here, then sees the 10th, and an add
    # during a delete waits for the gap to be closed before it takes max+1.
    return Shop.objects.select_for_update().get(pk=shop.pk)


def _check_room(*, shop: Shop, scenario: str, adding: int = 1) -> None:
    existing = Strategy.objects.filter(shop=shop, scenario=scenario).count()
    if existing + adding > MAX_STRATEGIES_PER_SCENARIO:
        raise ValidationError(
            {
                "scenario": [
                    _("A scenario holds at most %(max)d strategies; delete one first.")
                    % {"max": MAX_STRATEGIES_PER_SCENARIO}
                ]
            }
        )


def _unknown_fields(fields: Mapping[str, Any]) -> None:
    unknown = sorted(set(fields) - EDITABLE_FIELDS - {"products"})
    if unknown:
        raise ValidationError({f: [_("This setting cannot be set here.")] for f in unknown})


def strategy_create(*, shop: Shop, scenario: str, actor: Actor = None, **fields: Any) -> Strategy:
    """Creates a strategy at the end of its scenario (priority max+1), inactive unless told.

    ``products``: products (or their ids) of ``shop``. At most ``MAX_STRATEGIES_PER_SCENARIO``
    per (shop, scenario): the shop row is locked, so two simultaneous adds are serialized.
    """
    _unknown_fields(fields)
    products_in = fields.pop("products", None)
    fields.setdefault("status", StrategyStatus.INACTIVE)
    if scenario not in Scenario.values:
        raise ValidationError({"scenario": [_("Unknown scenario.")]})
    with transaction.atomic():
        shop = _lock_shop(shop)
        products = _validated_products(shop=shop, products=products_in)
        strategy = Strategy(shop=shop, scenario=scenario, **fields)
        _full_clean(strategy, products)
        _check_room(shop=shop, scenario=scenario)
        last = (
            Strategy.objects.filter(shop=shop, scenario=scenario)
            .order_by("-position")
            .values_list("position", flat=True)
            .first()
        )
        strategy.position = (last or 0) + 1
        _set_history_user(strategy, actor)
        strategy.save()
        if products:
            strategy.products.set(products)
    return strategy


def strategy_create_from_template(
    *,
    shop: Shop,
    template: str = StrategyTemplate.SMALL_AMOUNT,
    actor: Actor = None,
    per_request_cap: Decimal = SMALL_AMOUNT_DEFAULT_PER_REQUEST_CAP,
    name: str | None = None,
) -> Strategy:
    """The ready-made small-amount strategy (小额自动仅退款), created inactive."""
    if template != StrategyTemplate.SMALL_AMOUNT:
        raise ValidationError({"template": [_("Unknown template.")]})
    return strategy_create(
        shop=shop,
        scenario=Scenario.POST_SHIPMENT_REFUND,
        actor=actor,
        name=name or str(StrategyTemplate.SMALL_AMOUNT.label),
        template=StrategyTemplate.SMALL_AMOUNT,
        status=StrategyStatus.INACTIVE,
        per_request_cap=per_request_cap,
        daily_cap=SMALL_AMOUNT_DAILY_CAP,
        covers_shipped=True,
        covers_received=True,
        risk_control=True,
        products=[],
    )


def strategy_update(*, strategy: Strategy, actor: Actor = None, **fields: Any) -> Strategy:
    """Changes settings of one strategy (not its shop, scenario or priority)."""
    _unknown_fields(fields)
    products_in = fields.pop("products", None)
    with transaction.atomic():
        products = (
            _validated_products(shop=strategy.shop, products=products_in)
            if products_in is not None
            else None
        )
        for name, value in fields.items():
            setattr(strategy, name, value)
        if products is None and strategy.scenario not in SCENARIOS_WITH_PRODUCTS:
            products = []
        _full_clean(strategy, products)
        _set_history_user(strategy, actor)
        strategy.save()
        if products is not None:
            strategy.products.set(products)
    return strategy


def strategy_set_status(*, strategies: Iterable[Strategy], status: str, actor: Actor = None) -> int:
    """Switches strategies to ``status``; those already there are left alone (repeat-safe).

    Returns how many changed.
    """
    if status not in StrategyStatus.values:
        raise ValidationError({"status": [_("Unknown status.")]})
    changed = 0
    with transaction.atomic():
        ids = [s.pk for s in strategies]
        for strategy in (
            Strategy.objects.select_for_update().filter(pk__in=ids).exclude(status=status)
        ):
            strategy.status = status
            _set_history_user(strategy, actor)
            strategy.save(update_fields=["status", "updated_at"])
            changed += 1
    return changed


def strategy_delete(*, strategy: Strategy, actor: Actor = None) -> None:
    """Deletes a strategy and closes the gap: the rest of its scenario stays 1..n."""
    with transaction.atomic():
        _lock_shop(strategy.shop)
        rows = _lock_scenario(shop=strategy.shop, scenario=strategy.scenario)
        deleted_pk = strategy.pk
        _set_history_user(strategy, actor)
        strategy.delete()
        _renumber([r for r in rows if r.pk != deleted_pk], actor=actor)


def _lock_scenario(*, shop: Shop, scenario: str) -> list[Strategy]:
    # Callers lock the shop row first (``_lock_shop``): one lock order for every writer.
    return list(
        Strategy.objects.select_for_update()
        .filter(shop=shop, scenario=scenario)
        .order_by("position", "id")
    )


def _renumber(ordered: Sequence[Strategy], *, actor: Actor) -> list[Strategy]:
    for number, strategy in enumerate(ordered, start=1):
        if strategy.position != number:
            strategy.position = number
            _set_history_user(strategy, actor)
            strategy.save(update_fields=["position", "updated_at"])
    return list(ordered)


# A priority as posted by a drag: the scenario's rows are numbered 1..n, so anything beyond the
# position column's range is not a position but garbage (1e400, Infinity...). Ids are bigints.
MAX_POSITION = 2**31 - 1
MAX_ID = 2**63 - 1


def _whole_number(value: Any, *, maximum: int) -> int | None:
    """``value`` from a JSON body as a whole number in 0..maximum, else ``None``.

    Ints and strings of ASCII digits only: no floats (1e400 is infinity, 2.7 is not a position),
    no booleans, no "²".
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        number = value
    elif (
        isinstance(value, str)
        and value.isascii()
        and value.isdigit()
        and len(value) <= len(str(maximum))
    ):
        number = int(value)
    else:
        return None
    return number if 0 <= number <= maximum else None


def _check_ids(ids: Iterable[Any], rows: Sequence[Strategy]) -> list[int]:
    parsed = [_whole_number(i, maximum=MAX_ID) for i in ids]
    wanted = [i for i in parsed if i is not None]
    if len(wanted) != len(parsed):
        raise ValidationError({"ordered_ids": [_("Strategy ids must be numbers.")]})
    if len(set(wanted)) != len(wanted):
        raise ValidationError({"ordered_ids": [_("A strategy is listed twice.")]})
    known = {r.pk for r in rows}
    if not set(wanted) <= known:
        # Ids of another shop or scenario (or none at all): nothing is changed.
        raise PermissionDenied(_("These strategies are not all in this shop and scenario."))
    return wanted


def strategies_reorder(
    *, shop: Shop, scenario: str, ordered_ids: Sequence[int], actor: Actor = None
) -> list[Strategy]:
    """Sets the priority order of one (shop, scenario): ``ordered_ids`` first to last.

    The ids must be exactly the scenario's strategies. Positions become 1..n in one transaction
    under a lock on the shop row and the scenario's rows; anything else (another shop's id, a
    missing one) raises and changes nothing.
    """
    with transaction.atomic():
        _lock_shop(shop)
        rows = _lock_scenario(shop=shop, scenario=scenario)
        wanted = _check_ids(ordered_ids, rows)
        if set(wanted) != {r.pk for r in rows}:
            raise ValidationError(
                {"ordered_ids": [_("The list has changed meanwhile: reload the page.")]}
            )
        by_id = {r.pk: r for r in rows}
        return _renumber([by_id[i] for i in wanted], actor=actor)


def strategies_move(
    *, shop: Shop, scenario: str, moves: Mapping[Any, Any], actor: Actor = None
) -> list[Strategy]:
    """Applies a drag as django-admin-sortable2 posts it (``{id: new position}`` for the rows
    that moved), then renumbers the whole scenario 1..n, all under the shop's lock. Positions
    are whole numbers in the position column's range (not 1e400, 2.5 or -5).
    """
    parsed = [_whole_number(v, maximum=MAX_POSITION) for v in moves.values()]
    positions = [p for p in parsed if p is not None]
    if len(positions) != len(parsed):
        raise ValidationError({"moves": [_("Positions must be numbers.")]})
    with transaction.atomic():
        _lock_shop(shop)
        rows = _lock_scenario(shop=shop, scenario=scenario)
        wanted = _check_ids(moves.keys(), rows)
        targets = dict(zip(wanted, positions, strict=True))
        if not wanted:
            return rows
        ordered = sorted(
            enumerate(rows),
            key=lambda item: (
                targets.get(item[1].pk, item[1].position),
                0 if item[1].pk in targets else 1,
                item[0],
            ),
        )
        return _renumber([r for _i, r in ordered], actor=actor)
