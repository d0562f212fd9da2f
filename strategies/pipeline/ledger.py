"""Writes on the daily ledger: one row per (strategy, shop-local day), created lazily.

The cap is held by ONE conditional UPDATE (RELIABILITY.md): PostgreSQL re-checks the WHERE on
the latest row version under READ COMMITTED, so concurrent reservations can never overshoot.
The same statements run on SQLite >= 3.35 (the demo), where writers are serialized anyway.
No midnight job is needed for correctness: the first reservation of a day creates its row.
"""

from __future__ import annotations

import datetime as dt
import logging
from decimal import Decimal

from django.db import connection, transaction
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

    One conditional UPDATE: never read-then-write.
    """
    table = DailyLedger._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET consumed = consumed + CAST(%s AS NUMERIC), "  # noqa: S608
            "approved_count = approved_count + 1 "
            "WHERE id = %s AND consumed + CAST(%s AS NUMERIC) <= CAST(%s AS NUMERIC) "
            "RETURNING consumed",
            [amount, ledger_id, amount, cap],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    return Decimal(str(row[0])).quantize(Decimal("0.01"))


def ledger_reserve_on_day(
    *, shop_id: int, strategy_id: int, day: dt.date, amount: Decimal
) -> tuple[int, Decimal] | None:
    """Adds ``amount`` to the (strategy, day) ledger if it stays within the strategy's daily
    cap, creating the row when this is the day's first approval: ``(ledger id, new total)``,
    or None if full (or the strategy is no longer active).

    ONE statement, an upsert whose UPDATE is conditional: on a conflict PostgreSQL locks the
    existing row and evaluates the WHERE on its latest version, exactly as the conditional
    UPDATE of ``ledger_reserve`` does, so concurrent reservations can never overshoot. The
    INSERT itself only happens when ``amount`` alone fits the cap.

    The cap is the strategy's as committed when this statement runs, not the one the matcher
    read a moment before: a merchant who lowers the cap or switches the strategy off while a
    request is being decided is obeyed, and one who raises it is too.
    """
    table = DailyLedger._meta.db_table
    live_cap = (
        f"(SELECT s.daily_cap FROM {Strategy._meta.db_table} s "  # noqa: S608
        "WHERE s.id = %s AND s.status = %s)"
    )
    live: list[int | str] = [strategy_id, StrategyStatus.ACTIVE.value]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (shop_id, strategy_id, day, consumed, approved_count) "
            f"SELECT %s, %s, %s, CAST(%s AS NUMERIC), 1 WHERE CAST(%s AS NUMERIC) <= {live_cap} "
            f"ON CONFLICT (strategy_id, day) DO UPDATE SET "
            f"consumed = {table}.consumed + excluded.consumed, "
            f"approved_count = {table}.approved_count + 1 "
            f"WHERE {table}.consumed + excluded.consumed <= {live_cap} "
            "RETURNING id, consumed",
            [
                shop_id,
                strategy_id,
                connection.ops.adapt_datefield_value(day),
                amount,
                amount,
                *live,
                *live,
            ],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    return row[0], Decimal(str(row[1])).quantize(Decimal("0.01"))


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
        table = DailyLedger._meta.db_table
        with connection.cursor() as cursor:
            # Never below zero, even if the row was edited by hand meanwhile.
            cursor.execute(
                f"UPDATE {table} SET consumed = CASE WHEN consumed >= CAST(%s AS NUMERIC) "  # noqa: S608
                "THEN consumed - CAST(%s AS NUMERIC) "
                "ELSE 0 END, approved_count = CASE WHEN approved_count > 0 "
                "THEN approved_count - 1 ELSE 0 END WHERE id = %s",
                [amount, amount, ledger_id],
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
