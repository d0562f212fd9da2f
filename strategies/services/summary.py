"""What a strategy does, in one generated sentence in the interface language, and how the
scenarios take precedence over one another (issue 12, points 4 and 5).

The sentence is built from the one list of settings (``STRATEGY_SETTING_GROUPS``): each group
that applies to the strategy's scenario gives its phrase (``_PHRASES``, keyed by the group's
first setting), so a new setting without a phrase is caught by a test, not left out silently.
For example (docs/admin.md has the Chinese)::

    Automatically approves refund-only requests on shipped (within 10 days)/received orders:
    each ≤ 25.50, per day ≤ 3,000.00, 22:00-08:00, reasons: ...; risk control on

The precedence between scenarios is derived from the matcher's own ``scenario_covers`` over
every kind of request, so what the interface says cannot drift from what the matcher does.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import pgettext

from strategies.matching import OrderSnapshot, RequestSnapshot, scenario_covers
from strategies.models import (
    SCENARIO_ORDER,
    STRATEGY_SETTING_GROUPS,
    AfterSaleType,
    BacktestRun,
    OrderStatus,
    Reason,
    Scenario,
    Strategy,
    StrategyStatus,
)


def money(value: Decimal) -> str:
    """An amount as the interface shows it: ``100,000.00``."""
    return f"{value:,.2f}"


def _days(low: int | None, high: int | None) -> str:
    if low is not None and high is not None:
        return _("%(low)d-%(high)d days") % {"low": low, "high": high}
    if high is not None:
        return _("within %(high)d days") % {"high": high}
    if low is not None:
        return _("after %(low)d days") % {"low": low}
    return ""


def _status_part(label: str, low: int | None, high: int | None) -> str:
    days = _days(low, high)
    return _("%(status)s (%(days)s)") % {"status": label, "days": days} if days else label


def _statuses(values: dict[str, Any]) -> str:
    parts = []
    if values["covers_shipped"]:
        parts.append(
            _status_part(
                pgettext("order status, short", "shipped"),
                values["shipped_min_days"],
                values["shipped_max_days"],
            )
        )
    if values["covers_received"]:
        parts.append(
            _status_part(
                pgettext("order status, short", "received"),
                values["received_min_days"],
                values["received_max_days"],
            )
        )
    return "/".join(parts) or _("no")


def _head(scenario: str, values: dict[str, Any]) -> str:
    if scenario == Scenario.PRE_SHIPMENT_REFUND:
        return _("Automatically approves refund-only requests on orders pending shipment")
    if scenario == Scenario.TAGGED_REFUND_NO_RETURN:
        return _(
            "Automatically approves refund-without-return requests on shipped/received orders "
            "tagged “refund without return”"
        )
    statuses = _statuses(values)
    if scenario == Scenario.POST_SHIPMENT_NO_RETURN:
        return _(
            "Automatically approves refund-only and return-and-refund requests on %(statuses)s "
            "orders as refunds without return"
        ) % {"statuses": statuses}
    if scenario == Scenario.POST_SHIPMENT_RETURN_REFUND:
        return _(
            "Automatically approves the return of return-and-refund requests on %(statuses)s orders"
        ) % {"statuses": statuses}
    return _("Automatically approves refund-only requests on %(statuses)s orders") % {
        "statuses": statuses
    }


def _day(value: dt.datetime, zone: Any) -> str:
    return value.astimezone(zone).strftime("%Y-%m-%d %H:%M")


def _validity(values: dict[str, Any], zone: Any) -> list[str]:
    start, end = values["valid_from"], values["valid_until"]
    if start and end:
        return [
            _("valid %(from)s ~ %(until)s") % {"from": _day(start, zone), "until": _day(end, zone)}
        ]
    if start:
        return [_("valid from %(from)s") % {"from": _day(start, zone)}]
    if end:
        return [_("valid until %(until)s") % {"until": _day(end, zone)}]
    return []


def _window(values: dict[str, Any], zone: Any) -> list[str]:
    start, end = values["window_start"], values["window_end"]
    if start is None or end is None:
        return []
    return [f"{start:%H:%M}-{end:%H:%M}"]


def _products(values: dict[str, Any], zone: Any) -> list[str]:
    count = values["products"]
    if not count:
        return []
    return [_("only %(count)d chosen products") % {"count": count}]


def _caps(values: dict[str, Any], zone: Any) -> list[str]:
    per_request = values["per_request_cap"]
    first = (
        _("each ≤ %(cap)s") % {"cap": money(per_request)}
        if per_request is not None
        else _("no per-request cap")
    )
    return [first, _("per day ≤ %(cap)s") % {"cap": money(values["daily_cap"])}]


def _hours(values: dict[str, Any], zone: Any) -> list[str]:
    hours = values["max_hours_since_payment"]
    if hours is None:
        return []
    return [_("within %(hours)d hours of payment") % {"hours": hours}]


def _reasons(values: dict[str, Any], zone: Any) -> list[str]:
    reasons = values["reasons"] or []
    if not reasons:
        return []
    labels = dict(Reason.choices)
    names = pgettext("list of names", ", ").join(str(labels.get(r, r)) for r in reasons)
    return [_("reasons: %(reasons)s") % {"reasons": names}]


def _buyer(values: dict[str, Any], zone: Any) -> list[str]:
    limit = values["max_per_buyer_30d"]
    if limit is None:
        return []
    return [_("at most %(n)d per buyer in 30 days") % {"n": limit}]


def _nothing(values: dict[str, Any], zone: Any) -> list[str]:
    return []


# The phrase of each group, keyed by its first setting. Name, remark and status are shown next
# to the sentence, not in it; the order status is in the sentence's head; risk control ends it.
_PHRASES: dict[str, Callable[[dict[str, Any], Any], list[str]]] = {
    "name": _nothing,
    "status": _nothing,
    "valid_from": _validity,
    "window_start": _window,
    "products": _products,
    "covers_shipped": _nothing,
    "daily_cap": _caps,
    "max_hours_since_payment": _hours,
    "reasons": _reasons,
    "risk_control": _nothing,
    "max_per_buyer_30d": _buyer,
}


def phrase_keys() -> set[str]:
    """The groups the sentence knows (a test holds them equal to the settings' groups)."""
    return set(_PHRASES)


def strategy_summary(
    *, strategy: Strategy, product_count: int | None = None, values: dict[str, Any] | None = None
) -> str:
    """One sentence saying what ``strategy`` approves, in the active language.

    ``values``: settings that override the strategy's (an unsaved form's); ``product_count``:
    the number of chosen products when known (else read, one query for a saved strategy).
    """
    settings = {
        name: getattr(strategy, name)
        for group in STRATEGY_SETTING_GROUPS
        for name in group.names()
        if name != "products"
    }
    settings.update({k: v for k, v in (values or {}).items() if k != "products"})
    if values is not None and "products" in values:
        product_count = len(list(values["products"] or ()))
    if product_count is None:
        product_count = strategy.products.count() if strategy.pk else 0
    settings["products"] = product_count
    zone = strategy.shop.zone
    scenario = strategy.scenario
    conditions: list[str] = []
    # Caps first (what the merchant checks first), then the rest in the seeds' order.
    groups = sorted(STRATEGY_SETTING_GROUPS, key=lambda g: 0 if g.names()[0] == "daily_cap" else 1)
    for group in groups:
        if group.scenarios is not None and scenario not in group.scenarios:
            continue
        conditions.extend(_PHRASES[group.names()[0]](settings, zone))
    risk = _("risk control on") if settings["risk_control"] else _("risk control off")
    return _("%(head)s: %(conditions)s; %(risk)s") % {
        "head": _head(scenario, settings),
        "conditions": pgettext("list of conditions", ", ").join(conditions),
        "risk": risk,
    }


# -- precedence between scenarios ---------------------------------------------------------------


def _request_kinds() -> Iterable[tuple[str, RequestSnapshot]]:
    """One request of every type on every order status, tagged and not."""
    moment = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    for kind, status, tagged in itertools.product(
        AfterSaleType.values, OrderStatus.values, (False, True)
    ):
        order = OrderSnapshot(
            status=status,
            paid_at=moment,
            shipped_at=moment,
            received_at=moment,
            tags=frozenset({AfterSaleType.REFUND_NO_RETURN} if tagged else ()),
            product_ids=frozenset(),
        )
        yield (
            kind,
            RequestSnapshot(
                type=kind,
                reason=Reason.OTHER,
                amount=Decimal("1.00"),
                applied_at=moment,
                risk_flag=False,
                buyer_id="b",
                order=order,
            ),
        )


def _shared_types(first: str, second: str) -> list[str]:
    """The request types both scenarios take (in ``AfterSaleType`` order)."""
    shared = {
        kind
        for kind, request in _request_kinds()
        if scenario_covers(first, request) and scenario_covers(second, request)
    }
    return [k for k in AfterSaleType.values if k in shared]


def _types_text(types: list[str]) -> str:
    labels = dict(AfterSaleType.choices)
    return pgettext("list of names", ", ").join(f"“{labels[t]}”" for t in types)


def scenario_precedence(scenario: str) -> list[str]:
    """Sentences on which other scenarios share requests with ``scenario`` and which of them
    is tried first (the fixed order: the first hit decides)."""
    rank = SCENARIO_ORDER.index(scenario)
    sentences = []
    for other in SCENARIO_ORDER:
        if other == scenario:
            continue
        types = _shared_types(scenario, other)
        if not types:
            continue
        params = {"other": Scenario(other).label, "types": _types_text(types)}
        if SCENARIO_ORDER.index(other) > rank:
            if scenario == Scenario.POST_SHIPMENT_NO_RETURN:
                text = _(
                    "Strategies here also take %(types)s requests, and are tried before every "
                    "strategy of “%(other)s”: a hit here refunds without the goods coming back."
                )
            else:
                text = _(
                    "Strategies here take %(types)s requests before every strategy of "
                    "“%(other)s”: a hit here decides them."
                )
        elif other == Scenario.POST_SHIPMENT_NO_RETURN:
            text = _(
                "%(types)s requests are tried first by “%(other)s”: an active strategy there "
                "refunds them without the goods coming back, before any strategy here is tried."
            )
        else:
            text = _(
                "%(types)s requests are tried first by “%(other)s”: a hit there decides them "
                "before any strategy here is tried."
            )
        sentences.append(text % params)
    return sentences


def scenario_order_text() -> str:
    """The fixed order the scenarios are tried in, as one line."""
    steps = " → ".join(
        f"{number}. {Scenario(code).label}" for number, code in enumerate(SCENARIO_ORDER, 1)
    )
    return _("Scenarios are tried in this fixed order; the first hit decides: %(steps)s") % {
        "steps": steps
    }


# -- what a save asks to confirm ----------------------------------------------------------------


def backtest_headline(*, run: BacktestRun, strategy_id: int | None) -> str:
    """ "backtested 30 days: would approve 1,204 requests, 8,310.50": the strategy's own hits
    in the run when it names them, else the whole set's."""
    report = run.report or {}
    own = next((s for s in report.get("strategies", ()) if s.get("id") == strategy_id), None)
    tally = (own or {}).get("hits") or report.get("candidate") or {"count": 0, "amount": "0"}
    return _("backtested %(days)d days: would approve %(count)s requests, %(amount)s") % {
        "days": len(report.get("days", ())) or (run.last_day - run.first_day).days + 1,
        "count": f"{int(tally['count']):,}",
        "amount": money(Decimal(str(tally["amount"]))),
    }


def strategy_save_risks(
    *, before: Strategy | None, values: dict[str, Any], used_today: Decimal | None
) -> list[str]:
    """What a save of ``values`` (the form's settings) would change that moves money, each a
    sentence to confirm: switching on, raising a cap of an active strategy, a daily cap below
    what is already used today. Empty: nothing to confirm."""
    risks: list[str] = []
    status = values.get("status", before.status if before else "")
    active = status == StrategyStatus.ACTIVE
    if active and (before is None or before.status != StrategyStatus.ACTIVE):
        risks.append(
            _("Switching on: from now on this strategy approves requests and money is paid out.")
        )
    if before is not None and active and before.status == StrategyStatus.ACTIVE:
        daily = values.get("daily_cap", before.daily_cap)
        if daily is not None and daily > before.daily_cap:
            risks.append(
                _("The daily total cap is raised from %(old)s to %(new)s.")
                % {"old": money(before.daily_cap), "new": money(daily)}
            )
        per_request = values.get("per_request_cap", before.per_request_cap)
        if before.per_request_cap is not None and (
            per_request is None or per_request > before.per_request_cap
        ):
            risks.append(
                _("The per-request cap is raised from %(old)s to %(new)s.")
                % {
                    "old": money(before.per_request_cap),
                    "new": money(per_request) if per_request is not None else _("no limit"),
                }
            )
    daily = values.get("daily_cap")
    if (
        before is not None
        and used_today
        and daily is not None
        and daily != before.daily_cap
        and daily <= used_today
    ):
        risks.append(cap_used_up_warning(used=used_today, cap=daily))
    return risks


def cap_used_up_warning(*, used: Decimal, cap: Decimal) -> str:
    return _(
        "Today %(used)s is already used, at or above the daily total cap of %(cap)s: no more "
        "requests today."
    ) % {"used": money(used), "cap": money(cap)}
