"""The decision service: claims a request, runs the pure matcher, reserves the amount on the
strategy's daily ledger and records the decision, in ONE short transaction.

- **Claim**: the request row is locked (``SELECT ... FOR UPDATE``) and only a ``received``
  request is decided; a replayed or racing task waits for the winner and returns its decision.
- **Constant queries**: the request with its shop, order and items, the shop's strategies of the
  scenarios the request falls under with their products and latest history id, today's
  ledgers, and (only when a candidate strategy has a per-buyer limit) the buyer's approvals:
  the count does not grow with strategies or past decisions.
- **Cap**: one conditional UPDATE on the (strategy, shop-local day) ledger row; if a concurrent
  worker filled it first, the matcher runs again with that strategy marked full, so the next
  strategy by priority may take the request.
- **Which day**: the shop-local day of NOW, the moment of approval (when the money moves), not
  the request's ``applied_at``: a request applied at 23:59 and decided at 00:00 counts against
  the new day, whose cap is the one still open. (Windows and day ranges are still judged on
  ``applied_at`` by the matcher, as PRODUCT.md says.)
- **Per-buyer limit**: the buyer's approvals are counted under a transaction-level advisory lock
  per (shop, buyer) on PostgreSQL, so concurrent requests of one buyer are decided one after the
  other and never pass the limit (SQLite serializes writers anyway).
- **After commit**: execution (``strategies.execute_decision``) and, when the reservation
  crossed 95% or 100% of the cap, ``notifications.check_ledger_alerts`` are enqueued by name.
  The gateway is never called with a row lock held.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from decimal import Decimal

from celery import current_app
from django.db import connection, transaction
from django.db.models import OuterRef, Prefetch, Subquery
from django.utils import timezone

from strategies.matching import evaluate, scenarios_for
from strategies.models import (
    AfterSaleRequest,
    DailyLedger,
    Decision,
    Outcome,
    Product,
    RequestStatus,
    Strategy,
)
from strategies.selectors import shop_today
from strategies.services.ledgers import ledger_for_day, ledger_reserve

logger = logging.getLogger(__name__)

EXECUTE_TASK = "strategies.execute_decision"
ALERT_TASK = "notifications.check_ledger_alerts"
# Fractions of the daily cap whose crossing asks notifications to check its alerts.
ALERT_THRESHOLDS = (Decimal("0.95"), Decimal("1.00"))
BUYER_WINDOW = dt.timedelta(days=30)


def _send_task(name: str, args: list) -> None:
    current_app.send_task(name, args=args)


def enqueue_on_commit(name: str, *args: int) -> None:
    """Publishes task ``name`` once the current transaction commits (never if it rolls back).

    Robust: a broker outage is logged, never raised after the commit; the sweeper re-enqueues
    whatever was lost.
    """

    def publish() -> None:  # a plain function: Django logs a robust hook's __qualname__
        _send_task(name, list(args))

    transaction.on_commit(publish, robust=True)


def _buyer_lock_key(shop_id: int, buyer_id: str) -> int:
    digest = hashlib.blake2b(f"atom:buyer:{shop_id}:{buyer_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _lock_buyer(*, shop_id: int, buyer_id: str) -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_buyer_lock_key(shop_id, buyer_id)])


def buyer_approvals_count(*, shop_id: int, buyer_id: str, now: dt.datetime) -> int:
    """Auto-approvals of one buyer in the shop over the last 30 days (failed ones, whose
    reservation was released, do not count)."""
    return Decision.objects.filter(
        shop_id=shop_id,
        buyer_id=buyer_id,
        outcome=Outcome.APPROVED,
        decided_at__gte=now - BUYER_WINDOW,
        released_at__isnull=True,
    ).count()


def _crossed_alert_threshold(*, old: Decimal, new: Decimal, cap: Decimal) -> bool:
    return any(old < cap * t <= new for t in ALERT_THRESHOLDS)


def request_decide(*, request_id: int, now: dt.datetime | None = None) -> Decision:
    """Decides request ``request_id`` once; a replay returns the decision already made."""
    from strategies.snapshots import snapshot_request, snapshot_strategy

    now = now or timezone.now()
    with transaction.atomic():
        request = (
            AfterSaleRequest.objects.select_for_update(of=("self",))
            .select_related("shop", "order")
            .prefetch_related("order__items")
            .get(pk=request_id)
        )
        if request.status != RequestStatus.RECEIVED:
            return Decision.objects.get(request_id=request.pk)

        shop = request.shop
        today = shop_today(shop=shop, now=now)
        request_snapshot = snapshot_request(request)
        scenarios = scenarios_for(request_snapshot)
        history = Strategy.history.model.objects.filter(id=OuterRef("pk")).order_by("-history_id")
        strategies = list(
            Strategy.objects.filter(shop_id=shop.pk, scenario__in=scenarios)
            .annotate(version=Subquery(history.values("history_id")[:1]))
            .prefetch_related(Prefetch("products", queryset=Product.objects.only("product_id")))
            .order_by("scenario", "position", "id")
        )
        by_id = {s.pk: s for s in strategies}
        snapshots = [snapshot_strategy(s) for s in strategies]
        ledgers = {
            strategy_id: (ledger_id, consumed)
            for ledger_id, strategy_id, consumed in DailyLedger.objects.filter(
                shop_id=shop.pk, day=today
            ).values_list("id", "strategy_id", "consumed")
        }
        buyer_approvals = 0
        if any(s.max_per_buyer_30d is not None for s in strategies):
            _lock_buyer(shop_id=shop.pk, buyer_id=request.buyer_id)
            buyer_approvals = buyer_approvals_count(
                shop_id=shop.pk, buyer_id=request.buyer_id, now=now
            )

        consumed = {sid: value for sid, (_, value) in ledgers.items()}
        reserved: tuple[int, Decimal] | None = None  # (ledger id, new consumed)
        while True:
            evaluation = evaluate(
                request_snapshot,
                snapshots,
                zone=shop.zone,
                consumed_today=consumed,
                buyer_approvals_30d=buyer_approvals,
            )
            hit = evaluation.hit
            if hit is None:
                break
            if hit.id in ledgers:
                ledger_id = ledgers[hit.id][0]
            else:
                ledger_id = ledger_for_day(strategy=by_id[hit.id], day=today).pk
                ledgers[hit.id] = (ledger_id, Decimal("0.00"))
            new_consumed = ledger_reserve(
                ledger_id=ledger_id, amount=request.amount, cap=hit.daily_cap
            )
            if new_consumed is not None:
                reserved = (ledger_id, new_consumed)
                break
            # A concurrent worker filled the cap first: pass this strategy over.
            logger.info("strategy %s full for request %s; trying the next", hit.id, request.pk)
            consumed[hit.id] = max(hit.daily_cap, consumed.get(hit.id, Decimal("0.00")))

        approved = hit is not None and reserved is not None
        decision = Decision.objects.create(
            request=request,
            shop_id=shop.pk,
            aftersale_id=request.aftersale_id,
            order_id=request.order.order_id,
            reason=request.reason,
            outcome=Outcome.APPROVED if approved else Outcome.MANUAL_REVIEW,
            scenario=evaluation.scenario or "",
            strategy_id=hit.id if approved and hit else None,
            strategy_name=hit.name if approved and hit else "",
            strategy_version=getattr(by_id[hit.id], "version", None) if approved and hit else None,
            action=evaluation.action if approved else "",
            amount=request.amount,
            explanations=[e.as_json() for e in evaluation.explanations],
            buyer_id=request.buyer_id,
            ledger_id=reserved[0] if reserved else None,
            decided_at=now,
        )
        AfterSaleRequest.objects.filter(pk=request.pk).update(
            status=RequestStatus.APPROVED if approved else RequestStatus.MANUAL_REVIEW,
            updated_at=now,
        )
        request.status = RequestStatus.APPROVED if approved else RequestStatus.MANUAL_REVIEW

        if approved and hit is not None and reserved is not None:
            enqueue_on_commit(EXECUTE_TASK, decision.pk)
            ledger_id, new_consumed = reserved
            if _crossed_alert_threshold(
                old=new_consumed - request.amount, new=new_consumed, cap=hit.daily_cap
            ):
                enqueue_on_commit(ALERT_TASK, ledger_id)
    return decision
