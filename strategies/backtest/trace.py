"""A replayed request's trace: for every strategy it was tried against, in order, every check
of ``matching.CHECKS`` with the values it compared, on the state the replay decided it in.

Display only: pass or fail is each check's own answer (the matcher's functions, called one by
one); a failed check reads as the matcher's explanation, a passed one as the values it looked
at. The first failure is the one that decided (the matcher stops there).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.utils.translation import gettext as _

from strategies import matching as m
from strategies.backtest.replay import Moment
from strategies.models import OrderStatus, Reason, StrategyStatus

ZERO = Decimal("0.00")


@dataclass(frozen=True)
class CheckRow:
    label: str
    passed: bool
    detail: str
    decides: bool  # the first failure: the one the matcher explains


@dataclass(frozen=True)
class StrategyTrace:
    strategy: m.StrategySnapshot
    rows: list[CheckRow]
    outcome: str  # "hit", "trial", or the code of the miss


def _yes(value: bool) -> str:
    return _("yes") if value else _("no")


def _label(choices: Any, value: str) -> str:
    return str(choices(value).label) if value in choices.values else value


def _describe(check: Callable[..., Any], s: m.StrategySnapshot, ctx: m.Context) -> tuple[str, str]:
    """(label, values compared) of a check that passed."""
    req, zone = ctx.request, ctx.zone
    applied = m.local_datetime(req.applied_at, zone)
    if check is m.check_active_or_trial:
        return _("Status"), _label(StrategyStatus, str(s.status))
    if check is m.check_validity:
        return _("Validity"), _("applied %(at)s, valid %(start)s to %(end)s") % {
            "at": applied,
            "start": m.local_datetime(s.valid_from, zone),
            "end": m.local_datetime(s.valid_until, zone),
        }
    if check is m.check_window:
        if s.window_start is None and s.window_end is None:
            return _("Execution window"), _("all day")
        return _("Execution window"), _("%(time)s in %(start)s-%(end)s") % {
            "time": req.applied_at.astimezone(zone).strftime("%H:%M"),
            "start": m.clock(s.window_start),
            "end": m.clock(s.window_end),
        }
    if check is m.check_products:
        if not s.product_ids or s.scenario not in m.SCENARIOS_WITH_PRODUCTS:
            return _("Products"), _("every product")
        return _("Products"), _("%(products)s all chosen") % {
            "products": ", ".join(sorted(req.order.product_ids))
        }
    if check is m.check_order_status:
        if s.scenario not in m.SCENARIOS_WITH_ORDER_STATUS:
            return _("Order status"), _("not restricted in this scenario")
        order = req.order
        since = order.shipped_at if order.status == OrderStatus.SHIPPED else order.received_at
        low, high = (
            (s.shipped_min_days, s.shipped_max_days)
            if order.status == OrderStatus.SHIPPED
            else (s.received_min_days, s.received_max_days)
        )
        if low is None and high is None:
            return _("Order status"), _label(OrderStatus, order.status)
        days = m.local_days_between(since, req.applied_at, zone) if since else None
        return _("Order status"), _("%(status)s for %(days)s days, within %(low)s to %(high)s") % {
            "status": _label(OrderStatus, order.status),
            "days": days,
            "low": m.bound(low),
            "high": m.bound(high),
        }
    if check is m.check_reason:
        if not s.reasons:
            return _("Reason"), _("any reason (%(reason)s)") % {
                "reason": _label(Reason, req.reason)
            }
        return _("Reason"), _("%(reason)s is accepted") % {"reason": _label(Reason, req.reason)}
    if check is m.check_application_time:
        hours = (req.applied_at - req.order.paid_at) / dt.timedelta(hours=1)
        if s.max_hours_since_payment is None:
            return _("Application time"), _("no limit")
        return _("Application time"), _("%(hours).2f hours after payment, limit %(limit)s") % {
            "hours": hours,
            "limit": s.max_hours_since_payment,
        }
    if check is m.check_risk:
        return _("Risk control"), _("flagged: %(flag)s, risk control: %(on)s") % {
            "flag": _yes(req.risk_flag),
            "on": _yes(s.risk_control),
        }
    if check is m.check_per_request_cap:
        if s.per_request_cap is None:
            return _("Per-request cap"), _("none")
        return _("Per-request cap"), f"{m.money(req.amount)} <= {m.money(s.per_request_cap)}"
    if check is m.check_order_total:
        total = req.order.total
        if total is None:
            return _("Order total"), _("unknown")
        return _(
            "Order total"
        ), f"{m.money(ctx.order_refunded)} + {m.money(req.amount)} <= {m.money(total)}"
    if check is m.check_buyer_limit:
        if s.max_per_buyer_30d is None:
            return _("Buyer limit"), _("none")
        return _("Buyer limit"), _("%(n)s approvals in 30 days, below %(limit)s") % {
            "n": ctx.buyer_approvals_30d,
            "limit": s.max_per_buyer_30d,
        }
    if check is m.check_daily_cap:
        used = ctx.consumed_today.get(s.id, ZERO)
        return _("Daily cap"), f"{m.money(used)} + {m.money(req.amount)} <= {m.money(s.daily_cap)}"
    return check.__name__, ""


def trace(
    request: m.RequestSnapshot,
    strategies: Sequence[m.StrategySnapshot],
    *,
    zone: ZoneInfo,
    moment: Moment,
) -> list[StrategyTrace]:
    ctx = m.Context(
        request=request,
        zone=zone,
        consumed_today=moment.consumed,
        buyer_approvals_30d=moment.buyer_approvals,
        order_refunded=moment.order_refunded,
    )
    out: list[StrategyTrace] = []
    for s in m.candidates(strategies, m.scenarios_for(request)):
        rows: list[CheckRow] = []
        first: str | None = None
        for check in m.CHECKS:
            label, detail = _describe(check, s, ctx)
            miss = check(s, ctx)
            if miss is not None:
                detail = m.explanation_message(miss.code, miss.params)
            rows.append(CheckRow(label, miss is None, detail, miss is not None and first is None))
            if miss is not None and first is None:
                first = miss.code
        if first is None:
            outcome = "trial" if s.status == StrategyStatus.TRIAL else "hit"
        else:
            outcome = first
        out.append(StrategyTrace(strategy=s, rows=rows, outcome=outcome))
        if outcome == "hit":
            break
    return out
