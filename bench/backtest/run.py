"""Benchmark of the backtest (回测): 300,000 stored requests (30 days of a shop with 10,000 a
day, 10 strategies in each of the 5 scenarios) replayed through the set with one strategy
changed, in a fresh process, as the Celery task runs it (``backtest_execute``: streaming,
matcher, ledgers, report, changed requests stored).

Generation is SQL (``generate_series``) in the bench's OWN database: orders, requests with
API.md payloads (the order state at arrival), and decisions; then the live outcomes are made
consistent with the set by one replay of it, written back with one UPDATE. Printed:

- the run's wall time and CPU time, requests per second, changes found;
- the matcher's time per request (``CompiledSet.decide`` alone, timed in a second pass), and
  the compiled matcher beside ``matching.evaluate`` on a sample (messages rendered);
- peak memory of the measuring process (``ru_maxrss``) and its growth during the run;
- the last line: ``backtest_seconds_300k: <s> (target <= 10): MET`` (or MISSED).

    python bench/backtest/run.py                 # generate (a few minutes) and measure
    python bench/backtest/run.py --reuse         # measure the data already there
    python bench/backtest/run.py --requests 30000 --days 3   # try it small
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import resource
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.common import DEFAULT_BROKER, database_url, setup_django, verdict, write_json

TARGET_SECONDS = 10.0
TARGET_MB = 300.0
TARGET_MATCHER_US = 30.0
ZONE = "Asia/Shanghai"
SHOP_CODE = "bench-backtest"
# The last day of the generated month is yesterday, so "the last 30 days" covers it exactly.
SCENARIOS = (
    "tagged_refund_no_return",
    "pre_shipment_refund",
    "post_shipment_no_return",
    "post_shipment_refund",
    "post_shipment_return_refund",
)
CATALOG = (
    ("P1001", "9.90"),
    ("P1002", "6.50"),
    ("P1003", "12.80"),
    ("P1004", "19.90"),
    ("P1005", "4.99"),
    ("P1006", "8.80"),
    ("P1007", "25.00"),
    ("P1008", "129.00"),
    ("P1009", "299.00"),
    ("P1010", "599.00"),
    ("P1011", "39.90"),
    ("P1012", "459.00"),
)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=database_url("atom_bench_backtest"))
    parser.add_argument("--broker-url", default=os.environ.get("BENCH_BROKER_URL", DEFAULT_BROKER))
    parser.add_argument("--requests", type=int, default=300_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--reuse", action="store_true", help="measure the existing data")
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--json", default=None)
    return parser.parse_args()


# --- the strategy set ---------------------------------------------------------------------


def strategy_rows(k: int, scenario: str, start: dt.datetime) -> dict[str, Any]:
    """Strategy ``k`` (0..9) of a scenario: a mix of what merchants set, caps sized to run
    out during the day for some."""
    base: dict[str, Any] = {"name": f"{scenario[:24]} #{k + 1}", "status": "active"}
    variants: list[dict[str, Any]] = [
        {"status": "trial", "per_request_cap": Decimal("50.00")},
        {
            "window_start": dt.time(9),
            "window_end": dt.time(21),
            "per_request_cap": Decimal("30.00"),
            "daily_cap": Decimal("3000.00"),
        },
        {
            "reasons": ["quality_issue", "not_received"],
            "per_request_cap": Decimal("100.00"),
            "daily_cap": Decimal("5000.00"),
        },
        {"status": "inactive"},
        {
            "valid_from": start + dt.timedelta(days=15),
            "per_request_cap": Decimal("200.00"),
            "max_hours_since_payment": 72,
        },
        {"max_per_buyer_30d": 3, "per_request_cap": Decimal("80.00"), "daily_cap": Decimal("8000")},
        {
            "shipped_max_days": 7,
            "received_max_days": 3,
            "per_request_cap": Decimal("150.00"),
            "daily_cap": Decimal("6000.00"),
        },
        {"window_start": dt.time(22), "window_end": dt.time(8), "risk_control": True},
        {"per_request_cap": Decimal("20.00"), "daily_cap": Decimal("2000.00")},
        {"daily_cap": Decimal("100000.00")},
    ]
    fields = {**base, **variants[k]}
    if scenario == "tagged_refund_no_return" or scenario == "pre_shipment_refund":
        fields.pop("shipped_max_days", None)
        fields.pop("received_max_days", None)
    return fields


# --- generation ---------------------------------------------------------------------------


def _r(expr: str, salt: str) -> str:
    """A deterministic pseudo-random number in [0, 1) from ``expr`` (per order, per request)."""
    return f"((abs(hashtext(({expr})::text || '{salt}')) % 1000003) / 1000003.0)"


def generate(*, requests: int, days: int) -> dict[str, float]:
    from django.contrib.auth import get_user_model
    from django.db import connection

    from strategies.models import (
        AfterSaleRequest,
        Decision,
        Membership,
        Order,
        Product,
        Shop,
        Strategy,
    )

    timings: dict[str, float] = {}
    zone = ZoneInfo(ZONE)
    today = dt.datetime.now(zone).date()
    first_day = today - dt.timedelta(days=days)
    start = dt.datetime.combine(first_day, dt.time.min, tzinfo=zone)
    per_day = requests // days
    started = time.perf_counter()
    with connection.cursor() as cur:
        cur.execute(f"TRUNCATE {Shop._meta.db_table} RESTART IDENTITY CASCADE")
        get_user_model().objects.filter(username="bench-backtest").delete()
        shop = Shop.objects.create(code=SHOP_CODE, name="Bench", timezone=ZONE, api_secret="x" * 32)
        user = get_user_model().objects.create_user(
            username="bench-backtest", password="bench-pass-1", is_staff=True
        )
        Membership.objects.create(user=user, shop=shop, role="owner")
        products = [
            Product.objects.create(shop=shop, product_id=p, title=p) for p, _ in CATALOG[:5]
        ]
        for scenario in SCENARIOS:
            for k in range(10):
                strategy = Strategy.objects.create(
                    shop=shop,
                    scenario=scenario,
                    position=k + 1,
                    **strategy_rows(k, scenario, start),
                )
                if k == 8 and scenario not in ("tagged_refund_no_return",):
                    strategy.products.set(products)
        timings["setup_s"] = time.perf_counter() - started

        started = time.perf_counter()
        cur.execute("SET synchronous_commit = off")
        cur.execute("DROP TABLE IF EXISTS bench_catalog, bench_orders, bench_requests")
        cur.execute("CREATE UNLOGGED TABLE bench_catalog (idx int, product_id text, price numeric)")
        cur.execute(
            "INSERT INTO bench_catalog VALUES "
            + ", ".join(f"({i}, '{p}', {price})" for i, (p, price) in enumerate(CATALOG))
        )
        # Cheap items sell far more often: index from a skewed draw (x^3 favours low indexes,
        # the catalogue's first items are the cheap ones but for 7..11).
        pick = "least(11, floor(power({r}, 2.5) * 12))::int"
        # Every 10th request is a follow-up on the previous request's order.
        cur.execute(
            f"""CREATE UNLOGGED TABLE bench_orders AS
            SELECT o.idx,
                   s.status,
                   {_r("o.idx", "tag")} < 0.2 AND s.status IN ('shipped', 'received') AS tagged,
                   {pick.format(r=_r("o.idx", "p1"))} AS p1,
                   CASE WHEN {_r("o.idx", "two")} < 0.3
                        THEN {pick.format(r=_r("o.idx", "p2"))} END AS p2,
                   CASE WHEN {_r("o.idx", "q")} < 0.15 THEN 2 ELSE 1 END AS q1,
                   {_r("o.idx", "h1")} AS h1, {_r("o.idx", "h2")} AS h2,
                   {_r("o.idx", "h3")} AS h3,
                   'B' || CASE WHEN {_r("o.idx", "b")} < 0.2
                               THEN floor({_r("o.idx", "b1")} * 10)::int
                               ELSE 10 + floor({_r("o.idx", "b2")} * 60000)::int END AS buyer
            FROM generate_series(1, {requests}) AS o(idx)
            CROSS JOIN LATERAL (SELECT CASE
                WHEN {_r("o.idx", "st")} < 0.25 THEN 'pending_shipment'
                WHEN {_r("o.idx", "st")} < 0.60 THEN 'shipped'
                WHEN {_r("o.idx", "st")} < 0.90 THEN 'received'
                ELSE 'completed' END AS status) s
            WHERE o.idx % 10 <> 0"""
        )
        cur.execute(
            f"""CREATE UNLOGGED TABLE bench_requests AS
            SELECT i, CASE WHEN i % 10 = 0 THEN i - 1 ELSE i END AS order_idx,
                   timestamptz '{start.isoformat()}'
                     + ((i - 1) / {per_day}) * interval '1 day'
                     + {_r("i", "t")} * interval '1 day' AS received_at,
                   {_r("i", "kind")} AS r_kind, {_r("i", "reason")} AS r_reason,
                   {_r("i", "amount")} AS r_amount, {_r("i", "risk")} < 0.05 AS risky,
                   {_r("i", "applied")} AS r_applied
            FROM generate_series(1, {requests}) AS i"""
        )
        timings["draw_s"] = time.perf_counter() - started

        started = time.perf_counter()
        order_table = Order._meta.db_table
        cur.execute(
            f"""INSERT INTO {order_table}
                (id, shop_id, order_id, status, paid_at, shipped_at, received_at, tags, updated_at)
            SELECT o.idx, {shop.pk}, 'OD' || lpad(o.idx::text, 10, '0'), o.status,
                   timestamptz '{start.isoformat()}', NULL, NULL, '[]'::jsonb, now()
            FROM bench_orders o"""
        )
        cur.execute(
            f"SELECT setval(pg_get_serial_sequence('{order_table}', 'id'), "
            f"(SELECT max(id) FROM {order_table}))"
        )
        # The request's payload: API.md's body with the order as it was at arrival.
        reasons_pending = "ARRAY['no_longer_needed', 'not_shipped_on_time', 'other']"
        reasons_shipped = (
            "ARRAY['not_received', 'no_longer_needed', 'quality_issue', "
            "'wrong_or_missing_item', 'seven_day_no_reason', 'other']"
        )
        reasons_received = (
            "ARRAY['quality_issue', 'not_as_described', 'wrong_or_missing_item', "
            "'seven_day_no_reason', 'no_longer_needed', 'other']"
        )
        cur.execute(
            f"""INSERT INTO {AfterSaleRequest._meta.db_table}
                (id, shop_id, aftersale_id, order_id, buyer_id, type, reason, amount,
                 applied_at, risk_flag, payload, payload_digest, status, received_at, updated_at)
            SELECT r.i, {shop.pk}, x.aftersale_id, r.order_idx, o.buyer, x.type, x.reason,
                   x.amount, x.applied_at, r.risky,
                   jsonb_build_object(
                     'aftersale_id', x.aftersale_id, 'buyer_id', o.buyer, 'type', x.type,
                     'reason', x.reason, 'amount', x.amount::text,
                     'applied_at', to_char(x.applied_at AT TIME ZONE 'UTC',
                                           'YYYY-MM-DD"T"HH24:MI:SS"+00:00"'),
                     'risk_flag', r.risky,
                     'order', jsonb_build_object(
                       'order_id', 'OD' || lpad(o.idx::text, 10, '0'),
                       'status', o.status,
                       'paid_at', to_char(t.paid_at AT TIME ZONE 'UTC',
                                          'YYYY-MM-DD"T"HH24:MI:SS"+00:00"'),
                       'shipped_at', to_char(t.shipped_at AT TIME ZONE 'UTC',
                                             'YYYY-MM-DD"T"HH24:MI:SS"+00:00"'),
                       'received_at', to_char(t.received_at AT TIME ZONE 'UTC',
                                              'YYYY-MM-DD"T"HH24:MI:SS"+00:00"'),
                       'tags', CASE WHEN o.tagged THEN '["refund_no_return"]'::jsonb
                                    ELSE '[]'::jsonb END,
                       'items', it.items)),
                   repeat('0', 64), 'manual_review', r.received_at, r.received_at
            FROM bench_requests r
            JOIN bench_orders o ON o.idx = r.order_idx
            JOIN bench_catalog c1 ON c1.idx = o.p1
            LEFT JOIN bench_catalog c2 ON c2.idx = o.p2
            CROSS JOIN LATERAL (SELECT
                CASE WHEN c2.idx IS NULL
                  THEN jsonb_build_array(jsonb_build_object('product_id', c1.product_id,
                         'title', c1.product_id, 'quantity', o.q1, 'price', c1.price::text))
                  ELSE jsonb_build_array(
                         jsonb_build_object('product_id', c1.product_id, 'title', c1.product_id,
                           'quantity', o.q1, 'price', c1.price::text),
                         jsonb_build_object('product_id', c2.product_id, 'title', c2.product_id,
                           'quantity', 1, 'price', c2.price::text)) END AS items,
                c1.price * o.q1 + coalesce(c2.price, 0) AS total) it
            CROSS JOIN LATERAL (SELECT
                r.received_at - r.r_applied * interval '1 hour' AS applied_at) a
            CROSS JOIN LATERAL (SELECT
                CASE o.status
                  WHEN 'pending_shipment' THEN a.applied_at - (0.2 + o.h1 * 60) * interval '1 hour'
                  ELSE a.applied_at - (2 + o.h1 * 190 + 1 + o.h2 * 48) * interval '1 hour' END
                  AS paid_at,
                CASE WHEN o.status = 'pending_shipment' THEN NULL
                  ELSE a.applied_at - (2 + o.h1 * 190) * interval '1 hour' END AS shipped_at,
                CASE WHEN o.status IN ('received', 'completed')
                  THEN a.applied_at - (1 + o.h3 * 120) * interval '1 hour' END AS received_at) t
            CROSS JOIN LATERAL (SELECT
                'AS' || lpad(r.i::text, 12, '0') AS aftersale_id,
                a.applied_at,
                CASE WHEN o.status = 'pending_shipment' THEN 'refund_only'
                     WHEN o.tagged AND r.r_kind < 0.6 THEN 'refund_no_return'
                     WHEN r.r_kind < 0.8 THEN 'refund_only' ELSE 'return_refund' END AS type,
                CASE WHEN o.status = 'pending_shipment'
                       THEN ({reasons_pending})[1 + floor(r.r_reason * 3)::int]
                     WHEN o.status = 'shipped'
                       THEN ({reasons_shipped})[1 + floor(r.r_reason * 6)::int]
                     ELSE ({reasons_received})[1 + floor(r.r_reason * 6)::int] END AS reason,
                greatest(0.01, CASE WHEN r.r_amount < 0.6 THEN c1.price * o.q1
                     WHEN r.r_amount < 0.85 THEN it.total
                     ELSE round(it.total * (0.1 + r.r_amount * 0.8), 2) END) AS amount) x"""
        )
        cur.execute(
            f"SELECT setval(pg_get_serial_sequence('{AfterSaleRequest._meta.db_table}', 'id'), "
            f"(SELECT max(id) FROM {AfterSaleRequest._meta.db_table}))"
        )
        timings["requests_s"] = time.perf_counter() - started

        started = time.perf_counter()
        decision = Decision._meta.db_table
        cur.execute(
            f"""INSERT INTO {decision}
                (id, request_id, shop_id, aftersale_id, order_id, reason, outcome, scenario,
                 strategy_id, strategy_name, strategy_version, action, amount, explanations,
                 buyer_id, ledger_id, decided_at, idempotency_key, execution_attempts,
                 execution_lease_until, executed_at, failed_at, failure_reason, released_at)
            SELECT r.id, r.id, r.shop_id, r.aftersale_id, 'OD' || lpad(r.order_id::text, 10, '0'),
                   r.reason, 'manual_review', '', NULL, '', NULL, '', r.amount, '[]'::jsonb,
                   r.buyer_id, NULL, r.received_at + interval '1 second', gen_random_uuid(), 0,
                   NULL, NULL, NULL, '', NULL
            FROM {AfterSaleRequest._meta.db_table} r"""
        )
        cur.execute(
            f"SELECT setval(pg_get_serial_sequence('{decision}', 'id'), "
            f"(SELECT max(id) FROM {decision}))"
        )
        cur.execute("DROP TABLE bench_catalog, bench_orders, bench_requests")
        timings["decisions_s"] = time.perf_counter() - started
        for table in (order_table, AfterSaleRequest._meta.db_table, decision):
            cur.execute(f"VACUUM (ANALYZE) {table}")

    started = time.perf_counter()
    baseline_from_replay(shop)
    timings["baseline_s"] = time.perf_counter() - started
    return timings


def baseline_from_replay(shop: Any) -> None:
    """Makes the stored decisions what the set decides (one replay, one UPDATE): the measured
    run then compares a one-strategy change with a consistent baseline."""
    from django.db import connection

    from strategies.backtest.loaders import strategy_set
    from strategies.backtest.replay import Period, Replay
    from strategies.models import AfterSaleRequest, Decision

    members = strategy_set(shop=shop)
    first, last = period_days(shop)
    replay = Replay(
        shop_id=shop.pk,
        strategies=[m.snapshot for m in members],
        period=Period(first, last, shop.zone),
        shadows=False,
    )
    rows = [
        (item.stored.decision_id, item.hit.id, item.hit.name, item.verdict.action)
        for item in replay
        if item.hit is not None
    ]
    with connection.cursor() as cur:
        cur.execute(
            "CREATE TEMP TABLE bench_hits (decision_id bigint, strategy_id bigint, "
            "name text, action text)"
        )
        with cur.cursor.copy("COPY bench_hits FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        cur.execute(
            f"""UPDATE {Decision._meta.db_table} d SET outcome = 'approved',
                strategy_id = h.strategy_id, strategy_name = h.name, action = h.action,
                executed_at = d.decided_at + interval '2 seconds'
            FROM bench_hits h WHERE d.id = h.decision_id"""
        )
        cur.execute(
            f"""UPDATE {AfterSaleRequest._meta.db_table} r SET status = 'executed'
            FROM bench_hits h JOIN {Decision._meta.db_table} d ON d.id = h.decision_id
            WHERE r.id = d.request_id"""
        )
        cur.execute("DROP TABLE bench_hits")
        cur.execute(f"VACUUM (ANALYZE) {Decision._meta.db_table}")


def period_days(shop: Any) -> tuple[dt.date, dt.date]:
    from strategies.models import Decision

    times = Decision.objects.filter(shop=shop).order_by("decided_at")
    first = times.values_list("decided_at", flat=True).first()
    last = times.reverse().values_list("decided_at", flat=True).first()
    assert first is not None and last is not None, "no data: run without --reuse"
    return first.astimezone(shop.zone).date(), last.astimezone(shop.zone).date()


# --- measuring (a fresh process) ----------------------------------------------------------


def maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def measure() -> dict[str, Any]:
    from django.utils import timezone

    from strategies import matching
    from strategies.backtest import matcher as compiled_matcher
    from strategies.backtest.loaders import strategy_set
    from strategies.backtest.replay import Period, Replay
    from strategies.backtest.services import (
        backtest_execute,
        backtest_start,
        set_with,
        shadow_scenarios,
    )
    from strategies.models import BacktestRun, Shop

    shop = Shop.objects.get(code=SHOP_CODE)
    first, last = period_days(shop)
    days = (last - first).days + 1
    now = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(9), tzinfo=shop.zone)
    members = strategy_set(shop=shop)
    # The change tried: the broad strategy of post_shipment_refund with half its cap.
    broad = next(
        m.snapshot
        for m in members
        if m.snapshot.scenario == "post_shipment_refund" and m.snapshot.position == 10
    )
    candidate = set_with(members, dataclasses.replace(broad, daily_cap=broad.daily_cap / 2))
    period_choice = 30 if days == 30 else 7 if days <= 7 else 90
    run = backtest_start(
        shop=shop,
        members=candidate,
        kind="edit",
        title="bench",
        days=period_choice,
        strategy=None,
        scenario=str(broad.scenario),
        now=now,
    )
    if (run.first_day, run.last_day) != (first, last):
        BacktestRun.objects.filter(pk=run.pk).update(first_day=first, last_day=last)
    rss_before = maxrss_mb()  # Django, the models and the set loaded: the process's floor
    cpu = time.process_time()
    started = time.perf_counter()
    backtest_execute(run_id=run.pk, now=timezone.now())
    seconds = time.perf_counter() - started
    cpu_seconds = time.process_time() - cpu
    rss_after = maxrss_mb()
    run.refresh_from_db()
    assert run.status == "done", run.error
    report = run.report

    # The matcher alone: a second pass timing every CompiledSet.decide call (as the run
    # calls it: shadows counted for the changed scenario).
    replay = Replay(
        shop_id=shop.pk,
        strategies=[m.snapshot for m in candidate],
        period=Period(first, last, shop.zone),
        shadows=shadow_scenarios(run),
    )
    decide = replay.compiled.decide
    spent = 0.0
    probes = 0.0
    clock = time.perf_counter

    def timed(probe: Any, scenarios: Any, *, shadows: bool = False) -> Any:
        nonlocal spent
        t = clock()
        verdict = decide(probe, scenarios, shadows=shadows)
        spent += clock() - t
        return verdict

    replay.compiled.decide = timed  # type: ignore[method-assign]
    make_probe = replay.compiled.probe

    def timed_probe(*args: Any, **kwargs: Any) -> Any:
        nonlocal probes
        t = clock()
        probe = make_probe(*args, **kwargs)
        probes += clock() - t
        return probe

    replay.compiled.probe = timed_probe  # type: ignore[method-assign]
    loop_started = clock()
    count = sum(1 for _ in replay)
    loop_seconds = clock() - loop_started

    # The compiled matcher beside evaluate (messages rendered) on a sample of requests.
    sample = []
    for item in Replay(
        shop_id=shop.pk,
        strategies=[m.snapshot for m in candidate],
        period=Period(first, first, shop.zone),
    ):
        if item.stored.snapshot is not None:
            sample.append((item.stored.snapshot, item.moment()))
        if len(sample) >= 3000:
            break
    snapshots = [m.snapshot for m in candidate]
    compiled = compiled_matcher.CompiledSet(snapshots, zone=shop.zone)
    t = clock()
    for request, moment in sample:
        matching.evaluate(
            request,
            snapshots,
            zone=shop.zone,
            consumed_today=moment.consumed,
            buyer_approvals_30d=moment.buyer_approvals,
            order_refunded=moment.order_refunded,
        )
    evaluate_us = (clock() - t) / max(len(sample), 1) * 1e6
    t = clock()
    for request, moment in sample:
        count_ = moment.buyer_approvals
        probe = compiled.probe(
            request,
            consumed=moment.consumed,
            order_refunded=moment.order_refunded,
            buyer_approvals=lambda c=count_: c,
        )
        compiled.decide(probe, compiled.scenarios(request))
    compiled_us = (clock() - t) / max(len(sample), 1) * 1e6

    return {
        "requests": report["requests"],
        "days": days,
        "strategies": len(candidate),
        "seconds": round(seconds, 2),
        "cpu_seconds": round(cpu_seconds, 2),
        "requests_per_second": round(report["requests"] / seconds) if seconds else None,
        "changes": {k: v["count"] for k, v in report["changes"].items()},
        "stored_changes": report["stored_changes"],
        "baseline_approved": report["baseline"]["count"],
        "candidate_approved": report["candidate"]["count"],
        "matcher_us_per_request": round(spent / max(count, 1) * 1e6, 2),
        "probe_us_per_request": round(probes / max(count, 1) * 1e6, 2),
        "engine_loop_seconds": round(loop_seconds, 2),
        "sample_evaluate_us": round(evaluate_us, 1),
        "sample_compiled_us": round(compiled_us, 1),
        "maxrss_mb_before": round(rss_before, 1),
        "maxrss_mb": round(rss_after, 1),
        "loadavg": os.getloadavg(),
    }


def main() -> None:
    args = parse_args()
    setup_django(database_url=args.database_url, broker_url=args.broker_url)
    if args.measure:
        print(json.dumps(measure()))
        return
    timings: dict[str, float] = {}
    if not args.reuse:
        print(f"Generating {args.requests:,} requests over {args.days} days ...", flush=True)
        started = time.perf_counter()
        timings = generate(requests=args.requests, days=args.days)
        timings["total_s"] = time.perf_counter() - started
        print("  " + ", ".join(f"{k} {v:.1f}" for k, v in timings.items()), flush=True)
    # Earlier runs are removed here, not in the measuring process (whose peak memory counts).
    from strategies.models import BacktestChange, BacktestRun

    BacktestChange.objects.all()._raw_delete(BacktestChange.objects.db)
    BacktestRun.objects.all().delete()
    env = {**os.environ, "BENCH_DATABASE_URL": args.database_url}
    out = subprocess.run(
        [sys.executable, __file__, "--measure", "--database-url", args.database_url],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    seconds = result["seconds"]
    print(
        f"\nBacktest of {result['requests']:,} requests ({result['days']} days, "
        f"{result['strategies']} strategies), one strategy's cap halved:"
    )
    print(
        f"  run (backtest_execute): {seconds:.2f} s wall, {result['cpu_seconds']:.2f} s CPU, "
        f"{result['requests_per_second']:,} requests/s"
    )
    print(
        f"  changes: {result['changes']} (stored {result['stored_changes']}); approved "
        f"{result['baseline_approved']:,} -> {result['candidate_approved']:,}"
    )
    matcher_met = result["matcher_us_per_request"] <= TARGET_MATCHER_US
    print(
        f"  matcher: {result['matcher_us_per_request']:.2f} us/request (target <= "
        f"{TARGET_MATCHER_US:.0f}): {verdict(matcher_met)}"
        f"; probe {result['probe_us_per_request']:.2f} us; engine loop alone "
        f"{result['engine_loop_seconds']:.2f} s (timed)"
    )
    print(
        f"  on a sample: matching.evaluate {result['sample_evaluate_us']:.1f} us, compiled "
        f"{result['sample_compiled_us']:.1f} us per request"
    )
    memory_met = result["maxrss_mb"] <= TARGET_MB
    print(
        f"  peak memory (maxrss): {result['maxrss_mb']:.0f} MB (before the run "
        f"{result['maxrss_mb_before']:.0f} MB; target <= {TARGET_MB:.0f}): {verdict(memory_met)}"
    )
    print(f"  load average: {result['loadavg']}")
    path = write_json(
        "backtest",
        {
            "target": {
                "seconds": TARGET_SECONDS,
                "memory_mb": TARGET_MB,
                "matcher_us": TARGET_MATCHER_US,
            },
            "generation_seconds": timings,
            **result,
        },
        args.json,
    )
    print(f"  JSON: {path}")
    met = seconds <= TARGET_SECONDS
    print(f"backtest_seconds_300k: {seconds:.2f} (target <= {TARGET_SECONDS:.0f}): {verdict(met)}")


if __name__ == "__main__":
    main()
