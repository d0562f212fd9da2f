"""Writes on the daily ledger: one row per (strategy, shop-local day), created lazily.

The cap is held by ONE conditional statement (RELIABILITY.md): PostgreSQL re-checks the WHERE
on the latest row version under READ COMMITTED, so concurrent reservations can never overshoot.
The decision's own reservation, an upsert that creates the day's row, is plain SQL on the hot
path (``rows.ledger_reserve_on_day``; on PostgreSQL inside the approval's one statement,
``rows.decision_insert_reserving``); the rest here is the ORM. The same statements run on
SQLite >= 3.35 (the demo), where writers are serialized anyway. No midnight job is needed for
correctness: the first reservation of a day creates its row.
"""

from __future__ import annotations

import datetime as dt
import logging
from decimal import Decimal

from django.db import transaction
from django.db.models import F, Value
from django.db.models.functions import Greatest
from django.utils import timezone

from strategies.models import DailyLedger, Decision, Shop, Strategy, StrategyStatus
from strategies.selectors import shop_today

logger = logging.getLogger(__name__)


def ledger_for_day(*, strategy: Strategy, day: dt.date) -> DailyLedger:
    """The ledger row of ``strategy`` on ``day``, inserted if missing (ON CONFLICT DO NOTHING)."""
    DailyLedger.objects.bulk_create(
        [DailyLedger(shop_id=strategy.shop_id, strategy_id=strategy.pk, day=day)],
        ignore_conflicts=True,
    )
    return DailyLedger.objects.get(strategy_id=strategy.pk, day=day)


def ledger_reserve(*, ledger_id: int, amount: Decimal, cap: Decimal) -> Decimal | None:
    """Adds ``amount`` to the ledger if it stays within ``cap``; the new total, or None if full.

    One conditional UPDATE, never read-then-write; the total is read back under the row lock
    the UPDATE took, so it is this reservation's.
    """
    with transaction.atomic():
        reserved = DailyLedger.objects.filter(pk=ledger_id, consumed__lte=cap - amount).update(
            consumed=F("consumed") + amount, approved_count=F("approved_count") + 1
        )
        if not reserved:
            return None
        return DailyLedger.objects.values_list("consumed", flat=True).get(pk=ledger_id)


def ledger_mark_cap_refused(*, ledger_id: int, now: dt.datetime) -> bool:
    """Marks the day's ledger as having refused a request for its cap; True the first time."""
    return bool(
        DailyLedger.objects.filter(pk=ledger_id, cap_refused_at__isnull=True).update(
            cap_refused_at=now
        )
    )


def ledger_release(*, decision_id: int, now: dt.datetime | None = None) -> bool:
    """Gives a failed approval's amount back to its ledger, exactly once (only once the
    decision is marked failed: an executed approval keeps its reservation).

    The claim is the conditional update ``released_at IS NULL`` on the decision: a failing task
    that runs twice releases once. Returns True if this call released.
    """
    now = now or timezone.now()
    with transaction.atomic():
        claimed = Decision.objects.filter(
            pk=decision_id, released_at__isnull=True, failed_at__isnull=False, ledger__isnull=False
        ).update(released_at=now)
        if not claimed:
            return False
        ledger_id, amount = Decision.objects.values_list("ledger_id", "amount").get(pk=decision_id)
        # Never below zero, even if the row was edited by hand meanwhile.
        DailyLedger.objects.filter(pk=ledger_id).update(
            consumed=Greatest(F("consumed") - amount, Value(Decimal("0.00"))),
            approved_count=Greatest(F("approved_count") - 1, Value(0)),
        )
    logger.info("released %s on ledger %s for decision %s", amount, ledger_id, decision_id)
    return True


def ledgers_roll_over(*, now: dt.datetime | None = None) -> int:
    """Pre-creates today's ledger rows (shop-local day) for every active or trial strategy.

    Pure housekeeping so dashboards show a fresh 0 at each shop's midnight: idempotent, harmless
    when late or repeated; decisions never depend on it (they create rows lazily). Returns the
    number of rows that did not exist yet.
    """
    now = now or timezone.now()
    strategies = Strategy.objects.filter(
        status__in=[StrategyStatus.ACTIVE, StrategyStatus.TRIAL]
    ).values_list("pk", "shop_id", "shop__timezone")
    zones: dict[int, Shop] = {}
    rows = []
    for strategy_id, shop_id, tz in strategies:
        shop = zones.setdefault(shop_id, Shop(pk=shop_id, timezone=tz))
        rows.append(
            DailyLedger(
                shop_id=shop_id, strategy_id=strategy_id, day=shop_today(shop=shop, now=now)
            )
        )
    if not rows:
        return 0
    before = DailyLedger.objects.filter(
        strategy_id__in=[r.strategy_id for r in rows], day__in={r.day for r in rows}
    ).count()
    DailyLedger.objects.bulk_create(rows, ignore_conflicts=True, batch_size=1000)
    after = DailyLedger.objects.filter(
        strategy_id__in=[r.strategy_id for r in rows], day__in={r.day for r in rows}
    ).count()
    return max(after - before, 0)
