"""Decision-log rows in bulk, straight in SQL, for the monitoring tests and benchmarks."""

from __future__ import annotations

import datetime as dt

from django.db import connection

from strategies.models import AfterSaleRequest, Decision, Order, Shop, Strategy


def insert_decisions(
    *,
    shop: Shop,
    strategies: list[Strategy],
    rows: int,
    start: int = 1,
    newest: dt.datetime | None = None,
) -> None:
    """``rows`` orders, requests and decisions of ``shop`` in three INSERT ... SELECT.

    Ids are ``AS<shop.pk>-<n>`` / ``OD<shop.pk>-<n>``; one decision a minute back from
    ``newest``; every fourth is a manual review; reasons and strategies rotate. Parameters are
    bound on the server (settings): where PostgreSQL cannot infer a type, it is cast.
    """
    newest = newest or dt.datetime.now(dt.UTC)
    reasons = ["no_longer_needed", "quality_issue", "not_received", "other"]
    strategy_ids = [s.pk for s in strategies]
    names = {s.pk: s.name for s in strategies}
    scenarios = {s.pk: s.scenario for s in strategies}
    with connection.cursor() as cur:
        cur.execute(
            f"""INSERT INTO {Order._meta.db_table}
                (shop_id, order_id, status, paid_at, shipped_at, tags, updated_at)
            SELECT %s, 'OD' || %s || '-' || i, 'shipped', %s, %s, '[]'::jsonb, now()
            FROM generate_series(%s::integer, %s::integer) AS i""",
            [shop.pk, shop.pk, newest, newest, start, start + rows - 1],
        )
        cur.execute(
            f"""INSERT INTO {AfterSaleRequest._meta.db_table}
                (shop_id, aftersale_id, order_id, buyer_id, type, reason, amount, applied_at,
                 risk_flag, payload, payload_digest, status, received_at, updated_at)
            SELECT o.shop_id, 'AS' || %s || '-' || i, o.id, 'B1', 'refund_only',
                   (%s::text[])[1 + i %% 4], 10 + (i %% 50), now(), false, '{{}}'::jsonb,
                   repeat('0', 64),
                   CASE WHEN i %% 4 = 0 THEN 'manual_review' ELSE 'executed' END, now(), now()
            FROM generate_series(%s::integer, %s::integer) AS i
            JOIN {Order._meta.db_table} o
              ON o.shop_id = %s AND o.order_id = 'OD' || %s || '-' || i""",
            [shop.pk, reasons, start, start + rows - 1, shop.pk, shop.pk],
        )
        cur.execute(
            f"""INSERT INTO {Decision._meta.db_table}
                (request_id, shop_id, aftersale_id, order_id, reason, outcome, scenario,
                 strategy_id, strategy_name, action, amount, explanations, buyer_id,
                 decided_at, idempotency_key, execution_attempts, failure_reason)
            SELECT r.id, r.shop_id, r.aftersale_id, 'OD' || %s || '-' || g.i, r.reason,
                   CASE WHEN g.i %% 4 = 0 THEN 'manual_review' ELSE 'approved' END,
                   CASE WHEN g.i %% 4 = 0 THEN '' ELSE (%s::text[])[1 + g.i %% %s] END,
                   CASE WHEN g.i %% 4 = 0 THEN NULL ELSE (%s::bigint[])[1 + g.i %% %s] END,
                   CASE WHEN g.i %% 4 = 0 THEN '' ELSE (%s::text[])[1 + g.i %% %s] END,
                   CASE WHEN g.i %% 4 = 0 THEN '' ELSE 'approve_refund' END,
                   r.amount, '[]'::jsonb, 'B1', %s - g.i * interval '1 minute',
                   gen_random_uuid(), 0, ''
            FROM generate_series(%s::integer, %s::integer) AS g(i)
            JOIN {AfterSaleRequest._meta.db_table} r
              ON r.shop_id = %s AND r.aftersale_id = 'AS' || %s || '-' || g.i""",
            [
                shop.pk,
                [scenarios[i] for i in strategy_ids],
                len(strategy_ids),
                strategy_ids,
                len(strategy_ids),
                [names[i] for i in strategy_ids],
                len(strategy_ids),
                newest,
                start,
                start + rows - 1,
                shop.pk,
                shop.pk,
            ],
        )


def analyze() -> None:
    with connection.cursor() as cur:
        for model in (Order, AfterSaleRequest, Decision):
            cur.execute(f"ANALYZE {model._meta.db_table}")
