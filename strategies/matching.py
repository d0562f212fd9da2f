"""The matching service: a pure function from a request snapshot and the shop's ordered
strategies to a decision with its explanations. No database, no clock: everything it needs is
passed in, so it can be read and tested on its own.

The decision service (``strategies.pipeline.decide``) wraps it: it loads the snapshots, passes
today's consumption and the buyer's recent approvals, then tries to reserve the amount on the
hit's ledger row. If that conditional UPDATE loses a race, it calls ``evaluate`` again with the
strategy marked full, so the next strategy by priority may take the request.

Which scenarios and strategies are tried, in what order, and what a trial strategy does:
docs/pipeline.md "The matching service" (from PRODUCT.md "The five scenarios" and "Strategy
settings"); ``SCENARIO_ORDER`` and ``CHECKS`` below are that order.
A strategy whose stored row could not be read (``unreadable``: the loader skipped its values
and alerted the operator) is explained as ``strategy_unreadable`` and never hits.

The exact semantics of each check:

- Validity: ``valid_from <= applied_at < valid_until``; either bound may be open.
- Window: the wall-clock time of ``applied_at`` in the shop's zone, within ``[start, end)``. When
  ``start > end`` the window crosses midnight (22:00-08:00 covers 22:00:00 up to 07:59:59.999).
  No window: all day. (The database forbids ``start == end`` and half-set windows; should one
  reach here anyway, ``start == end`` is an empty window, a missing start is 00:00 and a missing
  end is midnight.)
- Products (scenarios in ``SCENARIOS_WITH_PRODUCTS``): with a non-empty product set, every
  product of the order must be in it; an order without items is then not covered.
- Order status (scenarios in ``SCENARIOS_WITH_ORDER_STATUS``): ``shipped`` needs
  ``covers_shipped``, ``received`` needs ``covers_received``. Day ranges are inclusive
  (``min <= days <= max``) and count **calendar days in the shop's zone**: the local date of
  ``applied_at`` minus the local date of ``shipped_at`` (``received_at`` for ``received``). So a
  parcel shipped at 23:50 and a request at 00:10 the next local day is "1 day since shipment",
  which is what a merchant means by "shipped yesterday"; DST changes do not shift the count. A
  range is set when either bound is; then a missing ``shipped_at``/``received_at`` does not
  cover.
- Reasons: a non-empty set must contain the request's reason.
- Application time limit: ``applied_at - paid_at <= max_hours_since_payment`` hours (exactly N
  hours still passes).
- Risk: with ``risk_control`` on, a request the platform flagged is not approved.
- Per-request cap: ``amount <= per_request_cap``.
- Order total: what the order already had auto-approved (``order_refunded``) plus ``amount``
  must not pass the order's total (several requests on one order never refund more than it).
- Per-buyer limit: ``buyer_approvals_30d < max_per_buyer_30d``.
- Daily cap, a hard ceiling: ``consumed_today.get(id, 0) + amount <= daily_cap``; reaching the
  cap exactly hits, a request that would cross it does not.

Messages are English source strings (gettext); each explanation also carries ``params``, the
strings the message is built from, so ``explanation_message(code, params)`` can render it again
in another language later.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_UP, Decimal, InvalidOperation
from zoneinfo import ZoneInfo

from django.utils.translation import gettext, gettext_noop

from strategies.models import (
    SCENARIO_ORDER,
    SCENARIOS_WITH_ORDER_STATUS,
    SCENARIOS_WITH_PRODUCTS,
    Action,
    AfterSaleType,
    OrderStatus,
    Reason,
    Scenario,
    StrategyStatus,
)

ZERO = Decimal("0.00")
CENT = Decimal("0.01")
OPEN = "…"  # An open bound of a validity period or day range, in messages.


@dataclass(frozen=True)
class OrderSnapshot:
    status: str
    paid_at: dt.datetime
    shipped_at: dt.datetime | None
    received_at: dt.datetime | None
    tags: frozenset[str]
    product_ids: frozenset[str]
    # Sum of price x quantity of the items; None: unknown, not checked.
    total: Decimal | None = None


@dataclass(frozen=True)
class RequestSnapshot:
    type: str
    reason: str
    amount: Decimal
    applied_at: dt.datetime
    risk_flag: bool
    buyer_id: str
    order: OrderSnapshot


@dataclass(frozen=True)
class StrategySnapshot:
    id: int
    name: str
    scenario: str
    status: str
    position: int
    valid_from: dt.datetime | None = None
    valid_until: dt.datetime | None = None
    window_start: dt.time | None = None
    window_end: dt.time | None = None
    product_ids: frozenset[str] = frozenset()
    covers_shipped: bool = True
    shipped_min_days: int | None = None
    shipped_max_days: int | None = None
    covers_received: bool = True
    received_min_days: int | None = None
    received_max_days: int | None = None
    daily_cap: Decimal = Decimal("50000.00")
    per_request_cap: Decimal | None = None
    max_hours_since_payment: int | None = None
    reasons: frozenset[str] = frozenset()
    risk_control: bool = True
    max_per_buyer_30d: int | None = None
    # Not a column: set by the loader when the stored row could not be read.
    unreadable: bool = False


# The snapshot's fields that are no column of the strategy's row.
SNAPSHOT_EXTRAS = frozenset({"product_ids", "unreadable"})


@dataclass(frozen=True)
class Explanation:
    scenario: str
    strategy_id: int
    strategy_name: str
    code: str
    message: str
    # The values the message was built from (strings), so it can be rendered again.
    params: Mapping[str, str] = field(default_factory=dict)

    def as_json(self) -> dict:
        """The shape API.md gives for one entry of ``explanations`` (plus ``params``)."""
        return {
            "scenario": str(self.scenario),
            "strategy": {"id": self.strategy_id, "name": self.strategy_name},
            "code": self.code,
            "message": self.message,
            "params": dict(self.params),
        }


@dataclass(frozen=True)
class Evaluation:
    """The outcome: ``hit`` is the strategy that approves (None: manual review)."""

    hit: StrategySnapshot | None
    scenario: str
    action: str
    explanations: tuple[Explanation, ...] = field(default_factory=tuple)


# ---------------------------------------------------------------------------------------------
# Explanation codes and their messages
# ---------------------------------------------------------------------------------------------

STRATEGY_UNREADABLE = "strategy_unreadable"
INACTIVE = "inactive"
OUTSIDE_VALIDITY = "outside_validity"
OUTSIDE_WINDOW = "outside_window"
PRODUCT_NOT_COVERED = "product_not_covered"
ORDER_STATUS_NOT_COVERED = "order_status_not_covered"
REASON_NOT_COVERED = "reason_not_covered"
APPLICATION_TOO_LATE = "application_too_late"
RISK_FLAGGED = "risk_flagged"
OVER_PER_REQUEST_CAP = "over_per_request_cap"
ORDER_TOTAL_EXCEEDED = "order_total_exceeded"
BUYER_LIMIT_REACHED = "buyer_limit_reached"
DAILY_CAP_REACHED = "daily_cap_reached"
TRIAL_WOULD_HIT = "trial_would_hit"
# Why a manual review had no strategy to try (request-level: ``strategy`` is null).
ORDER_COMPLETED = "order_completed"
TYPE_NOT_COVERED = "type_not_covered"
NO_STRATEGY = "no_strategy"

# Message templates by code; a code with several sentences puts the variant in
# ``params["detail"]`` and its template is keyed "<code>.<detail>".
MESSAGES: dict[str, str] = {
    STRATEGY_UNREADABLE: gettext_noop(
        "The strategy's stored settings could not be read, so it was skipped; the operator "
        "has been alerted"
    ),
    INACTIVE: gettext_noop("The strategy is inactive"),
    f"{OUTSIDE_VALIDITY}.not_started": gettext_noop(
        "Applied at %(applied_at)s (%(zone)s), before the strategy is valid from %(valid_from)s"
    ),
    f"{OUTSIDE_VALIDITY}.ended": gettext_noop(
        "Applied at %(applied_at)s (%(zone)s), the strategy was valid until %(valid_until)s"
    ),
    OUTSIDE_WINDOW: gettext_noop(
        "Applied at %(applied_time)s (%(zone)s), outside the daily window "
        "%(window_start)s-%(window_end)s"
    ),
    PRODUCT_NOT_COVERED: gettext_noop("Products %(products)s are not covered by the strategy"),
    f"{ORDER_STATUS_NOT_COVERED}.status": gettext_noop(
        "Order status %(status)s is not covered by the strategy"
    ),
    f"{ORDER_STATUS_NOT_COVERED}.no_date": gettext_noop(
        "Order status %(status)s has no date to count days from; the strategy needs "
        "%(min_days)s to %(max_days)s days"
    ),
    f"{ORDER_STATUS_NOT_COVERED}.days": gettext_noop(
        "Order status %(status)s for %(days)s days, outside the strategy's %(min_days)s to "
        "%(max_days)s days"
    ),
    REASON_NOT_COVERED: gettext_noop("Reason %(reason)s is not accepted by the strategy"),
    APPLICATION_TOO_LATE: gettext_noop(
        "Applied %(hours)s hours after payment, later than the limit of %(max_hours)s hours"
    ),
    RISK_FLAGGED: gettext_noop("The platform flagged the request as risky and risk control is on"),
    OVER_PER_REQUEST_CAP: gettext_noop("Amount %(amount)s is over the per-request cap %(cap)s"),
    ORDER_TOTAL_EXCEEDED: gettext_noop(
        "Amount %(amount)s on top of %(refunded)s already auto-approved on this order would pass "
        "the order total %(total)s"
    ),
    BUYER_LIMIT_REACHED: gettext_noop(
        "Buyer %(buyer_id)s already has %(approvals)s auto-approvals in 30 days, the limit is "
        "%(limit)s"
    ),
    DAILY_CAP_REACHED: gettext_noop(
        "Amount %(amount)s on top of %(consumed)s approved today would pass the daily cap %(cap)s"
    ),
    TRIAL_WOULD_HIT: gettext_noop(
        "Trial run: would approve %(amount)s; nothing is executed and the next strategy is tried"
    ),
    ORDER_COMPLETED: gettext_noop(
        "The order is completed (settled): no scenario covers after-sales requests on it, so "
        "a person decides"
    ),
    TYPE_NOT_COVERED: gettext_noop(
        "No scenario covers a %(type)s request on an order in status %(status)s, so a person "
        "decides"
    ),
    NO_STRATEGY: gettext_noop(
        "The request falls under %(scenarios)s, which has no strategy set up, so a person decides"
    ),
}


# Params stored as codes are shown by their label in the active language.
_LABELLED_PARAMS = {"status": OrderStatus, "reason": Reason, "type": AfterSaleType}
# Params stored as plain amounts ("50000.00", machine-readable in the API and the CSV's params)
# are shown as every page shows money: 50,000.00.
_MONEY_PARAMS = ("amount", "cap", "consumed", "refunded", "total")


def _money_shown(value: str) -> str:
    try:
        return f"{Decimal(value):,.2f}"
    except (InvalidOperation, TypeError, ValueError):
        return value


def explanation_message(code: str, params: Mapping[str, str]) -> str:
    """The readable sentence for ``code`` with ``params``, in the active language."""
    key = f"{code}.{params['detail']}" if "detail" in params else code
    shown = dict(params)
    for name, choices in _LABELLED_PARAMS.items():
        if shown.get(name) in choices.values:
            shown[name] = str(choices(shown[name]).label)
    for name in _MONEY_PARAMS:
        if name in shown:
            shown[name] = _money_shown(shown[name])
    if "scenarios" in shown:  # scenario codes, comma-separated
        shown["scenarios"] = gettext(", ").join(
            str(Scenario(c).label) if c in Scenario.values else c
            for c in shown["scenarios"].split(",")
        )
    return gettext(MESSAGES[key]) % shown


@dataclass(frozen=True)
class Miss:
    """A failed check: its code and the values its message needs."""

    code: str
    params: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Context:
    """What every check may look at besides the strategy."""

    request: RequestSnapshot
    zone: ZoneInfo
    consumed_today: Mapping[int, Decimal]
    buyer_approvals_30d: int
    # Auto-approved on the same order before (not released).
    order_refunded: Decimal = ZERO


# ---------------------------------------------------------------------------------------------
# Formatting helpers (message params are strings)
# ---------------------------------------------------------------------------------------------


def money(value: Decimal) -> str:
    return str(value.quantize(CENT))


def local_datetime(value: dt.datetime | None, zone: ZoneInfo) -> str:
    return value.astimezone(zone).strftime("%Y-%m-%d %H:%M") if value else OPEN


def clock(value: dt.time | None) -> str:
    return value.strftime("%H:%M") if value else OPEN


def bound(value: int | None) -> str:
    return OPEN if value is None else str(value)


# ---------------------------------------------------------------------------------------------
# The checks: one small function each, returning None when the strategy passes
# ---------------------------------------------------------------------------------------------


def check_readable(strategy: StrategySnapshot, ctx: Context) -> Miss | None:
    return Miss(STRATEGY_UNREADABLE) if strategy.unreadable else None


def check_active_or_trial(strategy: StrategySnapshot, ctx: Context) -> Miss | None:
    # Anything but active or trial (inactive, or a status this code does not know) never hits.
    if strategy.status not in (StrategyStatus.ACTIVE, StrategyStatus.TRIAL):
        return Miss(INACTIVE)
    return None


def check_validity(strategy: StrategySnapshot, ctx: Context) -> Miss | None:
    applied_at = ctx.request.applied_at
    params = {"applied_at": local_datetime(applied_at, ctx.zone), "zone": ctx.zone.key}
    if strategy.valid_from is not None and applied_at < strategy.valid_from:
        valid_from = local_datetime(strategy.valid_from, ctx.zone)
        return Miss(OUTSIDE_VALIDITY, {**params, "detail": "not_started", "valid_from": valid_from})
    if strategy.valid_until is not None and applied_at >= strategy.valid_until:
        valid_until = local_datetime(strategy.valid_until, ctx.zone)
        return Miss(OUTSIDE_VALIDITY, {**params, "detail": "ended", "valid_until": valid_until})
    return None


def in_window(moment: dt.time, start: dt.time | None, end: dt.time | None) -> bool:
    """Whether a wall-clock time is in the daily window ``[start, end)``."""
    if start is None and end is None:
        return True
    if end is None:  # until midnight
        return moment >= (start or dt.time.min)
    start = start or dt.time.min
    if start <= end:
        return start <= moment < end
    return moment >= start or moment < end  # crosses midnight


def check_window(strategy: StrategySnapshot, ctx: Context) -> Miss | None:
    local_time = ctx.request.applied_at.astimezone(ctx.zone).time()
    if in_window(local_time, strategy.window_start, strategy.window_end):
        return None
    return Miss(
        OUTSIDE_WINDOW,
        {
            "applied_time": local_time.strftime("%H:%M"),
            "zone": ctx.zone.key,
            "window_start": clock(strategy.window_start),
            "window_end": clock(strategy.window_end),
        },
    )


def check_products(strategy: StrategySnapshot, ctx: Context) -> Miss | None:
    if strategy.scenario not in SCENARIOS_WITH_PRODUCTS or not strategy.product_ids:
        return None
    order_products = ctx.request.order.product_ids
    if order_products and order_products <= strategy.product_ids:
        return None
    outside = sorted(order_products - strategy.product_ids)
    return Miss(PRODUCT_NOT_COVERED, {"products": ", ".join(outside)})


def local_days_between(earlier: dt.datetime, later: dt.datetime, zone: ZoneInfo) -> int:
    """Calendar days between two moments, counted on the shop's local dates."""
    return (later.astimezone(zone).date() - earlier.astimezone(zone).date()).days


def check_days_in_range(
    *,
    status: str,
    since: dt.datetime | None,
    min_days: int | None,
    max_days: int | None,
    ctx: Context,
) -> Miss | None:
    if min_days is None and max_days is None:
        return None
    params = {"status": status, "min_days": bound(min_days), "max_days": bound(max_days)}
    if since is None:
        return Miss(ORDER_STATUS_NOT_COVERED, {**params, "detail": "no_date"})
    days = local_days_between(since, ctx.request.applied_at, ctx.zone)
    if (min_days is None or days >= min_days) and (max_days is None or days <= max_days):
        return None
    return Miss(ORDER_STATUS_NOT_COVERED, {**params, "detail": "days", "days": str(days)})


def check_order_status(strategy: StrategySnapshot, ctx: Context) -> Miss | None:
    if strategy.scenario not in SCENARIOS_WITH_ORDER_STATUS:
        return None
    order = ctx.request.order
    if order.status == OrderStatus.SHIPPED and strategy.covers_shipped:
        return check_days_in_range(
            status=order.status,
            since=order.shipped_at,
            min_days=strategy.shipped_min_days,
            max_days=strategy.shipped_max_days,
            ctx=ctx,
        )
    if order.status == OrderStatus.RECEIVED and strategy.covers_received:
        return check_days_in_range(
            status=order.status,
            since=order.received_at,
            min_days=strategy.received_min_days,
            max_days=strategy.received_max_days,
            ctx=ctx,
        )
    return Miss(ORDER_STATUS_NOT_COVERED, {"detail": "status", "status": order.status})


def check_reason(strategy: StrategySnapshot, ctx: Context) -> Miss | None:
    if not strategy.reasons or ctx.request.reason in strategy.reasons:
        return None
    return Miss(REASON_NOT_COVERED, {"reason": ctx.request.reason})


def check_application_time(strategy: StrategySnapshot, ctx: Context) -> Miss | None:
    limit = strategy.max_hours_since_payment
    if limit is None:
        return None
    elapsed = ctx.request.applied_at - ctx.request.order.paid_at
    if elapsed <= dt.timedelta(hours=limit):
        return None
    # Rounded up, so a request one second late never reads as exactly on the limit.
    seconds = Decimal(elapsed // dt.timedelta(microseconds=1)) / 1_000_000
    hours = (seconds / 3600).quantize(CENT, rounding=ROUND_UP)
    return Miss(APPLICATION_TOO_LATE, {"hours": str(hours), "max_hours": str(limit)})


def check_risk(strategy: StrategySnapshot, ctx: Context) -> Miss | None:
    if strategy.risk_control and ctx.request.risk_flag:
        return Miss(RISK_FLAGGED)
    return None


def check_per_request_cap(strategy: StrategySnapshot, ctx: Context) -> Miss | None:
    cap = strategy.per_request_cap
    if cap is None or ctx.request.amount <= cap:
        return None
    return Miss(OVER_PER_REQUEST_CAP, {"amount": money(ctx.request.amount), "cap": money(cap)})


def check_order_total(strategy: StrategySnapshot, ctx: Context) -> Miss | None:
    # Several requests on one order may each be within its total; together they never pass it.
    total = ctx.request.order.total
    if total is None or ctx.order_refunded + ctx.request.amount <= total:
        return None
    return Miss(
        ORDER_TOTAL_EXCEEDED,
        {
            "amount": money(ctx.request.amount),
            "refunded": money(ctx.order_refunded),
            "total": money(total),
        },
    )


def check_buyer_limit(strategy: StrategySnapshot, ctx: Context) -> Miss | None:
    limit = strategy.max_per_buyer_30d
    if limit is None or ctx.buyer_approvals_30d < limit:
        return None
    return Miss(
        BUYER_LIMIT_REACHED,
        {
            "buyer_id": ctx.request.buyer_id,
            "approvals": str(ctx.buyer_approvals_30d),
            "limit": str(limit),
        },
    )


def check_daily_cap(strategy: StrategySnapshot, ctx: Context) -> Miss | None:
    consumed = ctx.consumed_today.get(strategy.id, ZERO)
    if consumed + ctx.request.amount <= strategy.daily_cap:
        return None
    return Miss(
        DAILY_CAP_REACHED,
        {
            "amount": money(ctx.request.amount),
            "consumed": money(consumed),
            "cap": money(strategy.daily_cap),
        },
    )


# The checks in the order they are made: the first that fails explains the miss.
CHECKS: tuple[Callable[[StrategySnapshot, Context], Miss | None], ...] = (
    check_readable,  # strategy_unreadable
    check_active_or_trial,  # inactive
    check_validity,  # outside_validity
    check_window,  # outside_window
    check_products,  # product_not_covered
    check_order_status,  # order_status_not_covered
    check_reason,  # reason_not_covered
    check_application_time,  # application_too_late
    check_risk,  # risk_flagged
    check_per_request_cap,  # over_per_request_cap
    check_order_total,  # order_total_exceeded
    check_buyer_limit,  # buyer_limit_reached
    check_daily_cap,  # daily_cap_reached
)


def first_miss(strategy: StrategySnapshot, ctx: Context) -> Miss | None:
    for check in CHECKS:
        miss = check(strategy, ctx)
        if miss is not None:
            return miss
    return None


# ---------------------------------------------------------------------------------------------
# Scenarios
# ---------------------------------------------------------------------------------------------

AFTER_SHIPMENT = frozenset({OrderStatus.SHIPPED, OrderStatus.RECEIVED})


def scenario_covers(scenario: str, request: RequestSnapshot) -> bool:
    """Whether ``request`` falls under ``scenario`` (PRODUCT.md "The five scenarios")."""
    status, kind = request.order.status, request.type
    if scenario == Scenario.TAGGED_REFUND_NO_RETURN:
        return (
            AfterSaleType.REFUND_NO_RETURN in request.order.tags
            and status in AFTER_SHIPMENT
            and kind == AfterSaleType.REFUND_NO_RETURN
        )
    if scenario == Scenario.PRE_SHIPMENT_REFUND:
        return status == OrderStatus.PENDING_SHIPMENT and kind == AfterSaleType.REFUND_ONLY
    if scenario == Scenario.POST_SHIPMENT_NO_RETURN:
        return status in AFTER_SHIPMENT and kind in (
            AfterSaleType.REFUND_ONLY,
            AfterSaleType.RETURN_REFUND,
        )
    if scenario == Scenario.POST_SHIPMENT_REFUND:
        return status in AFTER_SHIPMENT and kind == AfterSaleType.REFUND_ONLY
    if scenario == Scenario.POST_SHIPMENT_RETURN_REFUND:
        return status in AFTER_SHIPMENT and kind == AfterSaleType.RETURN_REFUND
    return False


def scenarios_for(request: RequestSnapshot) -> tuple[str, ...]:
    """The scenarios ``request`` falls under, in the order they are tried (none if completed)."""
    return tuple(str(s) for s in SCENARIO_ORDER if scenario_covers(s, request))


def action_for(scenario: str) -> str:
    if scenario == Scenario.POST_SHIPMENT_RETURN_REFUND:
        return str(Action.APPROVE_RETURN)
    return str(Action.APPROVE_REFUND)


def candidates(
    strategies: Iterable[StrategySnapshot], scenarios: tuple[str, ...]
) -> list[StrategySnapshot]:
    """The strategies to try, in order: by scenario order, then priority, then id."""
    rank = {scenario: index for index, scenario in enumerate(scenarios)}
    chosen = [s for s in strategies if s.scenario in rank]
    return sorted(chosen, key=lambda s: (rank[s.scenario], s.position, s.id))


def explain(strategy: StrategySnapshot, code: str, params: dict[str, str]) -> Explanation:
    return Explanation(
        scenario=str(strategy.scenario),
        strategy_id=strategy.id,
        strategy_name=strategy.name,
        code=code,
        message=explanation_message(code, params),
        params=params,
    )


def evaluate(
    request: RequestSnapshot,
    strategies: Iterable[StrategySnapshot],
    *,
    zone: ZoneInfo,
    consumed_today: Mapping[int, Decimal],
    buyer_approvals_30d: int,
    order_refunded: Decimal = ZERO,
) -> Evaluation:
    """The first active strategy that passes every check, with why each one before it did not."""
    ctx = Context(
        request=request,
        zone=zone,
        consumed_today=consumed_today,
        buyer_approvals_30d=buyer_approvals_30d,
        order_refunded=order_refunded,
    )
    explanations: list[Explanation] = []
    for strategy in candidates(strategies, scenarios_for(request)):
        miss = first_miss(strategy, ctx)
        if miss is not None:
            explanations.append(explain(strategy, miss.code, miss.params))
        elif strategy.status == StrategyStatus.TRIAL:
            explanations.append(
                explain(strategy, TRIAL_WOULD_HIT, {"amount": money(request.amount)})
            )
        else:
            return Evaluation(
                hit=strategy,
                scenario=str(strategy.scenario),
                action=action_for(strategy.scenario),
                explanations=tuple(explanations),
            )
    return Evaluation(hit=None, scenario="", action="", explanations=tuple(explanations))


def unmatched_explanation(request: RequestSnapshot, evaluation: Evaluation) -> dict | None:
    """Why a manual review had nothing to try, as an entry of API.md's ``explanations`` with
    ``strategy`` null: the order is completed, no scenario covers the request's type on its
    order status (exchange and resend requests too, once the platforms send them), or the
    scenarios it falls under have no strategy. None when a strategy hit or was explained."""
    if evaluation.hit is not None or evaluation.explanations:
        return None
    scenarios = scenarios_for(request)
    if scenarios:
        code, params = NO_STRATEGY, {"scenarios": ",".join(scenarios)}
    elif request.order.status == OrderStatus.COMPLETED:
        code, params = ORDER_COMPLETED, {}
    else:
        code, params = TYPE_NOT_COVERED, {"type": request.type, "status": request.order.status}
    return {
        "scenario": scenarios[0] if scenarios else None,
        "strategy": None,
        "code": code,
        "message": explanation_message(code, params),
        "params": params,
    }
