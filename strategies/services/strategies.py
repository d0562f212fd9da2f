"""Writes on strategies: create (from scratch or from a template), update, status, delete
(archive) and reorder.

The database holds each setting's own rules and says so in its constraints' messages
(``Strategy.Meta.constraints``, shown next to their field). What it cannot say lives here: the
exact shop-local validity bounds, reasons from ``Reason``, products of the strategy's own shop,
at most ``MAX_STRATEGIES_PER_SCENARIO`` per (shop, scenario) even when two staff add at the same
moment (the shop row is locked), priorities kept 1..n per scenario, and the version that refuses
a save made from a form opened before someone else's change. Every function raises
``ValidationError`` with field keys on bad input and changes nothing.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import ProtectedError
from django.utils import timezone
from django.utils.translation import gettext as _

from strategies.models import (
    MAX_STRATEGIES_PER_SCENARIO,
    SMALL_AMOUNT_DAILY_CAP,
    SMALL_AMOUNT_DEFAULT_PER_REQUEST_CAP,
    STRATEGY_CREATE_SETTINGS,
    STRATEGY_SETTINGS,
    VALIDITY_FIRST_DAY,
    VALIDITY_LAST_DAY,
    Product,
    Reason,
    Scenario,
    Shop,
    Strategy,
    StrategyStatus,
    StrategyTemplate,
    setting_applies,
)

Actor = AbstractBaseUser | AnonymousUser | None

# The settings a merchant edits (the form's, but products, a many-to-many, are passed apart).
EDITABLE_FIELDS: frozenset[str] = frozenset(STRATEGY_SETTINGS) - {"products"}
# What a new strategy may also be given once: its template.
CREATE_FIELDS: frozenset[str] = EDITABLE_FIELDS | frozenset(STRATEGY_CREATE_SETTINGS)


def validity_bounds(zone: zoneinfo.ZoneInfo) -> tuple[dt.datetime, dt.datetime]:
    """The first moment a validity date may name and the first it may no longer, in ``zone``."""
    first = dt.datetime.combine(VALIDITY_FIRST_DAY, dt.time.min, tzinfo=zone)
    after = dt.datetime.combine(VALIDITY_LAST_DAY + dt.timedelta(days=1), dt.time.min, tzinfo=zone)
    return first, after


def strategy_check(
    *,
    shop: Shop | None,
    scenario: str,
    values: Mapping[str, Any],
    products: Iterable[Product] | None = None,
) -> dict[str, list[str]]:
    """What the database cannot say about one strategy's settings, as ``{field: [message]}``
    (empty when valid); the rest is ``Strategy.full_clean()``'s (its constraints' messages).

    Used by the services (which raise), the admin form and the strategy files, so all three
    agree and the merchant sees each message next to its field.
    """
    errors: dict[str, list[str]] = {}

    def add(field: str, message: str) -> None:
        errors.setdefault(field, []).append(message)

    if shop is not None:
        first, after = validity_bounds(shop.zone)
        for field in ("valid_from", "valid_until"):
            value = values.get(field)
            # Aware comparisons never convert (year 9999 at -08:00 is year 10000 in UTC).
            if isinstance(value, dt.datetime) and not (first <= value < after):
                add(
                    field,
                    _("Give a date within %(first)s and %(last)s (shop time).")
                    % {"first": VALIDITY_FIRST_DAY, "last": VALIDITY_LAST_DAY},
                )

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

    if products is not None:
        products = list(products)
        if products and not setting_applies("products", scenario):
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


def strategy_errors(
    strategy: Strategy, products: list[Product] | None = None
) -> dict[str, list[str]]:
    """Every problem of an unsaved strategy's settings, by field: ``strategy_check``'s, then the
    model's own (field rules and constraints) on the fields that passed."""
    values = {f: getattr(strategy, f) for f in CREATE_FIELDS}
    shop = strategy.shop if strategy.shop_id else None
    errors = strategy_check(shop=shop, scenario=strategy.scenario, values=values, products=products)
    try:
        strategy.full_clean(exclude=list(errors))
    except ValidationError as exc:
        for field, messages in exc.message_dict.items():
            errors.setdefault(field, []).extend(messages)
    return errors


# django-simple-history's ``history_change_reason`` column (a CharField of 100).
CHANGE_REASON_MAX_LENGTH = 100


def _set_history_user(strategy: Strategy, actor: Actor, change_reason: str = "") -> None:
    if actor is not None and getattr(actor, "is_authenticated", False):
        strategy._history_user = actor  # type: ignore[attr-defined]
    # Kept in the history row this save writes (shown in the history view).
    reason = (change_reason or "").strip()[:CHANGE_REASON_MAX_LENGTH]
    strategy._change_reason = reason or None  # type: ignore[attr-defined]


def _lock_shop(shop: Shop) -> Shop:
    # Serializes every write to the shop's strategy counts and priorities (create, delete,
    # reorder): the 11th of two simultaneous adds waits here, then sees the 10th, and an add
    # during a delete waits for the gap to be closed before it takes max+1.
    return Shop.objects.select_for_update().get(pk=shop.pk)


def _check_room(*, shop: Shop, scenario: str, adding: int = 1) -> None:
    # Archived strategies do not count (the default manager leaves them out).
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


def _unknown_fields(fields: Mapping[str, Any], allowed: frozenset[str]) -> None:
    unknown = sorted(set(fields) - allowed - {"products"})
    if unknown:
        raise ValidationError({f: [_("This setting cannot be set here.")] for f in unknown})


def strategy_create(
    *, shop: Shop, scenario: str, actor: Actor = None, change_reason: str = "", **fields: Any
) -> Strategy:
    """Creates a strategy at the end of its scenario (priority max+1), inactive unless told.

    ``products``: products (or their ids) of ``shop``. At most ``MAX_STRATEGIES_PER_SCENARIO``
    per (shop, scenario): the shop row is locked, so two simultaneous adds are serialized.
    """
    _unknown_fields(fields, CREATE_FIELDS)
    products_in = fields.pop("products", None)
    fields.setdefault("status", StrategyStatus.INACTIVE)
    if scenario not in Scenario.values:
        raise ValidationError({"scenario": [_("Unknown scenario.")]})
    with transaction.atomic():
        shop = _lock_shop(shop)
        products = _validated_products(shop=shop, products=products_in)
        strategy = Strategy(shop=shop, scenario=scenario, **fields)
        _raise(strategy_errors(strategy, products))
        _check_room(shop=shop, scenario=scenario)
        last = (
            Strategy.objects.filter(shop=shop, scenario=scenario)
            .order_by("-position")
            .values_list("position", flat=True)
            .first()
        )
        strategy.position = (last or 0) + 1
        _set_history_user(strategy, actor, change_reason)
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
    """The ready-made small-amount strategy (小额自动仅退款), created inactive. Without a
    ``name``, the template's, numbered when the shop already has one of that name."""
    if template != StrategyTemplate.SMALL_AMOUNT:
        raise ValidationError({"template": [_("Unknown template.")]})
    if name is None:
        base = str(StrategyTemplate.SMALL_AMOUNT.label)
        taken = set(Strategy.objects.filter(shop=shop).values_list("name", flat=True))
        name = next(
            candidate
            for candidate in (base, *(f"{base} {n}" for n in range(2, len(taken) + 3)))
            if candidate not in taken
        )
    return strategy_create(
        shop=shop,
        scenario=Scenario.POST_SHIPMENT_REFUND,
        actor=actor,
        name=name,
        template=StrategyTemplate.SMALL_AMOUNT,
        status=StrategyStatus.INACTIVE,
        per_request_cap=per_request_cap,
        daily_cap=SMALL_AMOUNT_DAILY_CAP,
        covers_shipped=True,
        covers_received=True,
        risk_control=True,
        products=[],
    )


class StrategyChanged(ValidationError):
    """A save based on an older version of the strategy: someone changed it meanwhile.

    ``changes`` says who changed what and when (from the history), ``version`` is the strategy's
    version now; the message keys are the changed settings (and ``__all__`` for the summary).
    """

    def __init__(self, *, strategy: Strategy, since: int) -> None:
        self.version = strategy.version
        self.changes = strategy_changes_since(strategy=strategy, version=since)
        summary = _(
            "This strategy was changed after you opened it, so nothing was saved: %(changes)s. "
            "What you typed is still below: check it against these changes and save again."
        ) % {"changes": "; ".join(c.sentence() for c in self.changes) or _("no details kept")}
        errors: dict[str, list[str]] = {NON_FIELD_ERRORS: [summary]}
        for change in self.changes:
            if change.field:
                errors.setdefault(change.field, []).append(
                    _("Changed meanwhile by %(who)s at %(when)s: now %(new)s.")
                    % {"who": change.who, "when": change.when, "new": change.new}
                )
        super().__init__(errors)


class Change:
    """One setting changed by one history record."""

    __slots__ = ("field", "label", "new", "old", "when", "who")

    def __init__(self, *, who: str, when: str, field: str, label: str, old: str, new: str) -> None:
        self.who, self.when, self.field, self.label = who, when, field, label
        self.old, self.new = old, new

    def sentence(self) -> str:
        if not self.field:
            return _("%(who)s changed it at %(when)s") % {"who": self.who, "when": self.when}
        return _("%(who)s changed %(setting)s from %(old)s to %(new)s at %(when)s") % {
            "who": self.who,
            "setting": self.label,
            "old": self.old,
            "new": self.new,
            "when": self.when,
        }


def _shown(strategy: Strategy, field: str, value: Any) -> str:
    """A setting's value in the merchant's words (choice labels, yes/no, shop time)."""
    if value is None or value == "" or value == []:
        return "—"
    if field == "reasons":
        labels = dict(Reason.choices)
        return ", ".join(str(labels.get(r, r)) for r in value)
    choices = dict(getattr(Strategy._meta.get_field(field), "choices", None) or ())
    if isinstance(value, str) and value in choices:
        return str(choices[value])
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if isinstance(value, dt.datetime):
        return value.astimezone(strategy.shop.zone).strftime("%Y-%m-%d %H:%M")
    if isinstance(value, dt.time):
        return value.strftime("%H:%M")
    return str(value)


# Changes no merchant needs to be told about.
_UNTOLD = frozenset({"version", "updated_at"})


def strategy_changes_since(*, strategy: Strategy, version: int) -> list[Change]:
    """Who changed what and when after ``version`` (django-simple-history), oldest first."""
    records = list(
        Strategy.history.filter(id=strategy.pk, version__gt=version)
        .select_related("history_user")
        .order_by("history_date", "history_id")
    )
    changes: list[Change] = []
    zone = strategy.shop.zone
    for record in records:
        who = str(record.history_user) if record.history_user else _("the system")
        when = record.history_date.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")
        previous = record.prev_record
        if previous is None:
            changes.append(Change(who=who, when=when, field="", label="", old="", new=""))
            continue
        told = [c for c in record.diff_against(previous).changes if c.field not in _UNTOLD]
        if not told:
            changes.append(Change(who=who, when=when, field="", label="", old="", new=""))
        for change in told:
            label = str(getattr(Strategy._meta.get_field(change.field), "verbose_name", ""))
            changes.append(
                Change(
                    who=who,
                    when=when,
                    field=change.field,
                    label=label,
                    old=_shown(strategy, change.field, change.old),
                    new=_shown(strategy, change.field, change.new),
                )
            )
    return changes


def _locked(strategy: Strategy) -> Strategy:
    current = Strategy.objects.select_for_update().filter(pk=strategy.pk).first()
    if current is None:
        raise ValidationError(
            {NON_FIELD_ERRORS: [_("This strategy was deleted meanwhile; nothing was saved.")]}
        )
    return current


def strategy_update(
    *,
    strategy: Strategy,
    actor: Actor = None,
    expected_version: int | None = None,
    change_reason: str = "",
    **fields: Any,
) -> Strategy:
    """Changes settings of one strategy (not its shop, scenario, template or priority).

    ``expected_version``: the version the change was based on (the form's); when the strategy
    has moved on since, ``StrategyChanged`` is raised and nothing is stored. The row is locked
    for the check and the write, so two saves of one version cannot both pass.
    """
    _unknown_fields(fields, EDITABLE_FIELDS)
    products_in = fields.pop("products", None)
    with transaction.atomic():
        current = _locked(strategy)
        if expected_version is not None and current.version != expected_version:
            raise StrategyChanged(strategy=current, since=expected_version)
        products = (
            _validated_products(shop=current.shop, products=products_in)
            if products_in is not None
            else None
        )
        for name, value in fields.items():
            setattr(current, name, value)
        if products is None and not setting_applies("products", current.scenario):
            products = []
        _raise(strategy_errors(current, products))
        current.version += 1
        _set_history_user(current, actor, change_reason)
        current.save()
        if products is not None:
            current.products.set(products)
    for field in current._meta.concrete_fields:
        setattr(strategy, field.attname, getattr(current, field.attname))
    return strategy


def strategy_set_status(
    *,
    strategies: Iterable[Strategy],
    status: str,
    actor: Actor = None,
    change_reason: str = "",
) -> int:
    """Switches strategies to ``status``; those already there are left alone (repeat-safe).

    Returns how many changed; each of those moves to its next version, with ``change_reason``
    in its history.
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
            strategy.version += 1
            _set_history_user(strategy, actor, change_reason)
            strategy.save(update_fields=["status", "version", "updated_at"])
            changed += 1
    return changed


def strategy_delete(*, strategy: Strategy, actor: Actor = None) -> Strategy | None:
    """Deletes a strategy, or archives it when money records name it (decisions, ledgers,
    alerts: kept forever, PRODUCT.md), and closes the gap: the rest of its scenario stays 1..n.

    Returns the archived strategy, or None when it was removed. An archived strategy is
    inactive, gone from the lists, the matcher and the 10-per-scenario count; its decisions and
    history still name it.
    Repeat-safe: a strategy already gone or archived is left alone.
    """
    with transaction.atomic():
        _lock_shop(strategy.shop)
        rows = _lock_scenario(shop=strategy.shop, scenario=strategy.scenario)
        target = next((r for r in rows if r.pk == strategy.pk), None)
        if target is None:
            return None
        _set_history_user(target, actor)
        archived: Strategy | None = None
        try:
            with transaction.atomic():
                target.delete()
        except ProtectedError:
            target.archived_at = timezone.now()
            target.status = StrategyStatus.INACTIVE
            target.version += 1
            target.save(update_fields=["archived_at", "status", "version", "updated_at"])
            archived = target
        _renumber([r for r in rows if r.pk != target.pk], actor=actor)
    return archived


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
            strategy.version += 1
            _set_history_user(strategy, actor)
            strategy.save(update_fields=["position", "version", "updated_at"])
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
