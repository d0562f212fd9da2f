"""Benchmark of the strategy monitor (策略监控) on a big decision log, and of the review queue
(人工审核) on the same rows.

Generates N decision rows (default 10 million) in SQL with ``generate_series`` in its OWN
PostgreSQL database, ANALYZEs, then measures p95 page time and query count of the admin
changelist (Django test client, logged in as shop staff) unfiltered, with each filter, each
search, and the first rows of the CSV export; then the review queue's page (the quarter of the
rows left for manual review, half of them with a platform deadline, and some ``failed`` and
``unknown``): its tabs, a later page and the exact-id search, against its pinned query count
(``TARGET_QUEUE_QUERIES``, as tests/monitoring/test_review_queue.py pins it). Prints a table
with the targets (p95 <= 300 ms, <= 12 queries; the queue at most its pinned count) and whether
each case met them, and writes JSON. It never asserts times.

    python bench/monitor/run.py                    # 10M rows (generation takes a while)
    python bench/monitor/run.py --rows 200000      # try it small
    python bench/monitor/run.py --reuse            # measure again without regenerating

The database (``--database-url``, default postgres://postgres@127.0.0.1:5432/atom_bench_monitor)
is created if missing, migrated, and its shop data replaced on each generation.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/atom_bench_monitor"
TARGET_P95_MS = 300.0
TARGET_QUERIES = 12
# The review queue's page: pinned in tests/monitoring/test_review_queue.py (docs/review.md).
TARGET_QUEUE_QUERIES = 10

SCENARIOS = [
    ("tagged_refund_no_return", 5),
    ("pre_shipment_refund", 30),
    ("post_shipment_no_return", 15),
    ("post_shipment_refund", 35),
    ("post_shipment_return_refund", 15),
]
REASONS = [
    ("no_longer_needed", 35),
    ("seven_day_no_reason", 20),
    ("not_shipped_on_time", 10),
    ("not_received", 8),
    ("quality_issue", 12),
    ("wrong_or_missing_item", 5),
    ("not_as_described", 5),
    ("other", 5),
]
STRATEGIES_PER_SCENARIO = 3
SHOPS = [
    ("bench-a", "Bench shop A", "Asia/Shanghai", 70),
    ("bench-b", "Bench shop B", "America/Los_Angeles", 30),
]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000, help="decision rows to generate")
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--reuse", action="store_true", help="measure the existing data")
    parser.add_argument("--generate-only", action="store_true")
    parser.add_argument("--samples", type=int, default=20, help="timed requests per case")
    parser.add_argument("--json", default=str(ROOT / "bench" / "results" / "monitor.json"))
    return parser.parse_args()


def setup_django(database_url: str) -> None:
    os.environ["DATABASE_URL"] = database_url
    for key, value in {
        "SECRET_KEY": "bench-only-secret",
        "DEBUG": "false",
        "ALLOWED_HOSTS": "*",
        "SECURE_SSL_REDIRECT": "false",
        "SESSION_COOKIE_SECURE": "false",
        "CSRF_COOKIE_SECURE": "false",
        "CELERY_BROKER_URL": "memory://",
    }.items():
        os.environ.setdefault(key, value)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "atomsite.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def ensure_database(database_url: str) -> None:
    import psycopg

    parts = urlsplit(database_url)
    name = parts.path.lstrip("/")
    admin_url = parts._replace(path="/postgres").geturl()
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')


def weighted_case(column: str, choices: list[tuple[str, int]]) -> str:
    """SQL CASE that maps a uniform random ``column`` in [0, 1) to a weighted choice index."""
    total = sum(w for _, w in choices)
    parts, acc = [], 0
    for index, (_, weight) in enumerate(choices[:-1]):
        acc += weight
        parts.append(f"WHEN {column} < {acc / total:.6f} THEN {index}")
    return f"CASE {' '.join(parts)} ELSE {len(choices) - 1} END"


def generate(rows: int) -> dict[str, float]:
    from django.contrib.auth import get_user_model
    from django.db import connection

    from strategies.models import AfterSaleRequest, Decision, Membership, Order, Shop, Strategy

    timings: dict[str, float] = {}
    big = [Order._meta.db_table, AfterSaleRequest._meta.db_table, Decision._meta.db_table]
    with connection.cursor() as cur:
        started = time.perf_counter()
        cur.execute(f"TRUNCATE {Shop._meta.db_table} RESTART IDENTITY CASCADE")
        get_user_model().objects.filter(username__startswith="bench-").delete()
        shops = []
        for code, name, zone, _ in SHOPS:
            shop = Shop.objects.create(code=code, name=name, timezone=zone, api_secret="x" * 32)
            shops.append(shop)
            user = get_user_model().objects.create_user(
                username=f"bench-{code}", password="bench-pass-1", is_staff=True
            )
            Membership.objects.create(user=user, shop=shop, role="viewer")
            for scenario, _ in SCENARIOS:
                for k in range(STRATEGIES_PER_SCENARIO):
                    Strategy.objects.create(
                        shop=shop,
                        scenario=scenario,
                        name=f"{scenario[:20]} #{k + 1}",
                        position=k + 1,
                        status="active",
                    )
        # A lookup table (shop index, scenario index, k) -> strategy for the generator.
        cur.execute("DROP TABLE IF EXISTS bench_strategy")
        cur.execute(
            f"""CREATE UNLOGGED TABLE bench_strategy AS
            SELECT s.id, s.name, s.scenario, sh.rn - 1 AS shop_idx,
                   (row_number() OVER (PARTITION BY s.shop_id, s.scenario ORDER BY s.id)) - 1 AS k
            FROM {Strategy._meta.db_table} s
            JOIN (SELECT id, row_number() OVER (ORDER BY id) AS rn
                  FROM {Shop._meta.db_table}) sh ON sh.id = s.shop_id"""
        )
        scenario_values = ", ".join(f"({i}, '{s}')" for i, (s, _) in enumerate(SCENARIOS))
        reason_values = ", ".join(f"({i}, '{r}')" for i, (r, _) in enumerate(REASONS))
        cur.execute("DROP TABLE IF EXISTS bench_scenario; DROP TABLE IF EXISTS bench_reason")
        for table, values in (("bench_scenario", scenario_values), ("bench_reason", reason_values)):
            cur.execute(f"CREATE UNLOGGED TABLE {table} (idx int, name text)")
            cur.execute(f"INSERT INTO {table} VALUES {values}")
        shop_ids = [s.id for s in shops]
        timings["setup_s"] = time.perf_counter() - started

        # Drop secondary indexes and unique constraints of the big tables; rebuild them after
        # the load (a sorted build is many times faster than 10M index insertions).
        started = time.perf_counter()
        cur.execute(
            """SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)
               FROM pg_constraint WHERE contype = 'u' AND conrelid::regclass::text = ANY(%s)""",
            [big],
        )
        constraints = cur.fetchall()
        cur.execute(
            """SELECT i.indexname, i.indexdef FROM pg_indexes i
               WHERE i.tablename = ANY(%s) AND i.indexname NOT IN
                 (SELECT conname FROM pg_constraint WHERE contype IN ('p', 'u'))""",
            [big],
        )
        indexes = cur.fetchall()
        for table, name, _ in constraints:
            cur.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
        for name, _ in indexes:
            cur.execute(f'DROP INDEX "{name}"')
        cur.execute("SET session_replication_role = replica")  # no FK trigger per row
        cur.execute("SET synchronous_commit = off")
        cur.execute("SELECT setseed(0.42)")

        orders = max(10, (rows // 4) // 10 * 10)
        share_a = SHOPS[0][3] / 100
        # Shop of row i: (i % 10) < 7 -> A. Orders are picked with the same residue mod 10.
        shop_expr = (
            f"CASE WHEN (i % 10) < {int(share_a * 10)} THEN {shop_ids[0]} ELSE {shop_ids[1]} END"
        )
        cur.execute(
            f"""INSERT INTO {Order._meta.db_table}
                (id, shop_id, order_id, status, paid_at, shipped_at, received_at, tags, updated_at)
            SELECT i, {shop_expr}, 'OD' || lpad(i::text, 12, '0'), 'shipped',
                   now() - interval '95 days', now() - interval '94 days', NULL, '[]'::jsonb, now()
            FROM generate_series(1, {orders}) AS i"""
        )
        timings["orders_s"] = time.perf_counter() - started

        started = time.perf_counter()
        cur.execute("DROP TABLE IF EXISTS bench_rows")
        cur.execute(
            f"""CREATE UNLOGGED TABLE bench_rows AS
            SELECT i,
                   {shop_expr} AS shop_id,
                   CASE WHEN (i % 10) < {int(share_a * 10)} THEN 0 ELSE 1 END AS shop_idx,
                   ((i - 1) % {orders}) + 1 AS order_pk,
                   'AS' || lpad(i::text, 14, '0') AS aftersale_id,
                   'B' || (1 + floor(random() * 200000))::int AS buyer_id,
                   {weighted_case("r_reason", REASONS)} AS reason_idx,
                   {weighted_case("r_scenario", SCENARIOS)} AS scenario_idx,
                   floor(r_k * {STRATEGIES_PER_SCENARIO})::int AS k,
                   r_outcome < 0.75 AS approved,
                   round((1 + r_amount * 499)::numeric, 2) AS amount,
                   now() - r_age * interval '90 days' AS decided_at
            FROM (SELECT i, random() AS r_reason, random() AS r_scenario, random() AS r_k,
                         random() AS r_outcome, random() AS r_amount, random() AS r_age
                  FROM generate_series(1, {rows}) AS i) g"""
        )
        timings["draw_s"] = time.perf_counter() - started

        started = time.perf_counter()
        cur.execute(
            f"""INSERT INTO {AfterSaleRequest._meta.db_table}
                (id, shop_id, aftersale_id, order_id, buyer_id, type, reason, amount, applied_at,
                 risk_flag, payload, payload_digest, status, received_at, updated_at,
                 platform_deadline)
            SELECT b.i, b.shop_id, b.aftersale_id, b.order_pk, b.buyer_id, 'refund_only', r.name,
                   b.amount, b.decided_at - interval '1 second', false,
                   jsonb_build_object('aftersale_id', b.aftersale_id), repeat('0', 64),
                   CASE WHEN b.approved THEN 'executed'
                        WHEN b.i % 100 = 1 THEN 'failed'
                        WHEN b.i % 100 = 2 THEN 'unknown'
                        ELSE 'manual_review' END,
                   b.decided_at, b.decided_at,
                   -- The review queue's order: half the requests have a platform deadline.
                   CASE WHEN b.i % 2 = 0 THEN b.decided_at + interval '48 hours' END
            FROM bench_rows b JOIN bench_reason r ON r.idx = b.reason_idx"""
        )
        timings["requests_s"] = time.perf_counter() - started

        started = time.perf_counter()
        cur.execute(
            f"""INSERT INTO {Decision._meta.db_table}
                (id, request_id, shop_id, aftersale_id, order_id, reason, outcome, scenario,
                 strategy_id, strategy_name, strategy_version, action, amount, explanations,
                 buyer_id, ledger_id, decided_at, idempotency_key, execution_attempts,
                 execution_lease_until, executed_at, failed_at, failure_reason, released_at)
            SELECT b.i, b.i, b.shop_id, b.aftersale_id, 'OD' || lpad(b.order_pk::text, 12, '0'),
                   r.name,
                   CASE WHEN b.approved THEN 'approved' ELSE 'manual_review' END,
                   CASE WHEN b.approved THEN sc.name ELSE '' END,
                   CASE WHEN b.approved THEN st.id END,
                   CASE WHEN b.approved THEN st.name ELSE '' END,
                   NULL,
                   CASE WHEN NOT b.approved THEN ''
                        WHEN sc.name = 'post_shipment_return_refund' THEN 'approve_return'
                        ELSE 'approve_refund' END,
                   b.amount,
                   CASE WHEN b.approved AND b.k = 0 THEN '[]'::jsonb
                        ELSE jsonb_build_array(jsonb_build_object(
                          'scenario', sc.name,
                          'strategy', jsonb_build_object('id', st.id, 'name', st.name),
                          'code', 'over_per_request_cap',
                          'message', 'The amount is above the per-request cap.')) END,
                   b.buyer_id, NULL, b.decided_at, gen_random_uuid(),
                   CASE WHEN b.approved THEN 1 ELSE 0 END, NULL,
                   CASE WHEN b.approved THEN b.decided_at + interval '2 seconds' END,
                   NULL, '', NULL
            FROM bench_rows b
            JOIN bench_reason r ON r.idx = b.reason_idx
            JOIN bench_scenario sc ON sc.idx = b.scenario_idx
            JOIN bench_strategy st
              ON st.shop_idx = b.shop_idx AND st.scenario = sc.name AND st.k = b.k"""
        )
        timings["decisions_s"] = time.perf_counter() - started
        cur.execute("SET session_replication_role = DEFAULT")
        for table in big:
            cur.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT coalesce(max(id), 1) FROM {table}))"
            )
        cur.execute("DROP TABLE bench_rows, bench_strategy, bench_scenario, bench_reason")

        started = time.perf_counter()
        cur.execute("SET maintenance_work_mem = '1GB'")
        cur.execute("SET max_parallel_maintenance_workers = 2")
        for table, name, definition in constraints:
            cur.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
        for _, definition in indexes:
            cur.execute(definition)
        timings["indexes_s"] = time.perf_counter() - started

    started = time.perf_counter()
    with connection.cursor() as cur:
        for table in big:
            cur.execute(f"VACUUM (ANALYZE) {table}")
    timings["vacuum_analyze_s"] = time.perf_counter() - started
    return timings


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def measure(samples: int) -> list[dict[str, Any]]:
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.urls import reverse

    from strategies.models import AfterSaleRequest, Decision, Shop, Strategy

    shop = Shop.objects.get(code=SHOPS[0][0])
    client = Client()
    # A forced session: the lockout backend (django-axes) refuses logins made without a request.
    client.force_login(get_user_model().objects.get(username=f"bench-{shop.code}"))
    changelist = reverse("admin:monitoring_decisionlogentry_changelist")
    export = reverse("monitoring:decisions_export")
    sample = Decision.objects.filter(shop=shop).order_by("-decided_at", "-id")[500]
    strategy = Strategy.objects.filter(shop=shop).order_by("id")[1]
    local_today = sample.decided_at.astimezone(shop.zone).date()
    cases: list[tuple[str, str, dict[str, str]]] = [
        ("list, unfiltered", changelist, {}),
        ("list, page 5", changelist, {"p": "5"}),
        ("filter scenario", changelist, {"scenario__exact": "post_shipment_refund"}),
        ("filter reason", changelist, {"reason__exact": "quality_issue"}),
        ("filter outcome", changelist, {"outcome__exact": "manual_review"}),
        ("filter strategy", changelist, {"strategy": str(strategy.id)}),
        (
            "filter date range (1 day)",
            changelist,
            {"decided_from": local_today.isoformat(), "decided_until": local_today.isoformat()},
        ),
        ("search after-sales id", changelist, {"q": sample.aftersale_id}),
        ("search order id", changelist, {"q": sample.order_id}),
        ("search, no match", changelist, {"q": "NO-SUCH-ID"}),
        (
            "combined: reason+outcome+dates",
            changelist,
            {
                "reason__exact": "no_longer_needed",
                "outcome__exact": "approved",
                "decided_from": local_today.isoformat(),
                "decided_until": local_today.isoformat(),
            },
        ),
        ("CSV export, first 1000 rows", export, {}),
        ("CSV export filtered, first 1000 rows", export, {"reason__exact": "quality_issue"}),
    ]
    queue = reverse("admin:monitoring_reviewqueueentry_changelist")
    waiting = (
        AfterSaleRequest.objects.filter(shop=shop, status="manual_review")
        .order_by("-id")
        .values_list("aftersale_id", flat=True)[500]
    )
    queue_cases: list[tuple[str, str, dict[str, str]]] = [
        ("queue, unfiltered (deadline order)", queue, {}),
        ("queue, page 5", queue, {"p": "5"}),
        ("queue tab: no scenario", queue, {"tab": "none"}),
        ("queue tab: failed", queue, {"tab": "failed"}),
        ("queue tab: unknown", queue, {"tab": "unknown"}),
        ("queue tab + reason", queue, {"tab": "none", "reason__exact": "quality_issue"}),
        ("queue search after-sales id", queue, {"q": waiting}),
        ("queue search, no match", queue, {"q": "NO-SUCH-ID"}),
    ]
    results = []
    for label, path, params in [*cases, *queue_cases]:
        url = f"{path}?{urlencode(params)}" if params else path
        times: list[float] = []
        queries = 0
        for attempt in range(samples + 2):
            with CaptureQueriesContext(connection) as ctx:
                started = time.perf_counter()
                response = client.get(url)
                if getattr(response, "streaming", False):
                    lines = 0
                    for chunk in response.streaming_content:
                        lines += chunk.count(b"\n")
                        if lines > 1000:
                            break
                    response.close()
                else:
                    _ = response.content
                elapsed = (time.perf_counter() - started) * 1000
            if response.status_code != 200:
                raise SystemExit(f"{label}: HTTP {response.status_code} for {url}")
            if attempt >= 2:  # two warm-up requests
                times.append(elapsed)
                queries = max(queries, len(ctx.captured_queries))
        p95 = percentile(times, 95)
        # The queue's pinned count (one fewer on an empty page: no reviews to prefetch).
        queries_met = queries <= (TARGET_QUEUE_QUERIES if path == queue else TARGET_QUERIES)
        results.append(
            {
                "case": label,
                "url": url,
                "p50_ms": round(statistics.median(times), 1),
                "p95_ms": round(p95, 1),
                "queries": queries,
                "met": p95 <= TARGET_P95_MS and queries_met,
            }
        )
    return results


def main() -> None:
    args = parse_args()
    ensure_database(args.database_url)
    setup_django(args.database_url)
    from django.core.management import call_command
    from django.db import connection

    from strategies.models import Decision

    call_command("migrate", verbosity=0, interactive=False)
    timings: dict[str, float] = {}
    if not args.reuse:
        print(f"Generating {args.rows:,} decisions in {args.database_url} ...", flush=True)
        started = time.perf_counter()
        timings = generate(args.rows)
        timings["total_s"] = time.perf_counter() - started
        print("  " + ", ".join(f"{k} {v:.1f}" for k, v in timings.items()), flush=True)
    with connection.cursor() as cur:
        cur.execute(
            "SELECT reltuples::bigint FROM pg_class WHERE relname = %s", [Decision._meta.db_table]
        )
        estimated_rows = int(cur.fetchone()[0])
    if args.generate_only:
        return
    results = measure(args.samples)
    width = max(len(r["case"]) for r in results)
    print(f"\nDecision log: ~{estimated_rows:,} rows; {args.samples} samples per case")
    print(
        f"Target: p95 <= {TARGET_P95_MS:.0f} ms and <= {TARGET_QUERIES} queries "
        f"(the review queue: <= {TARGET_QUEUE_QUERIES}, its pinned count)\n"
    )
    print(f"{'case':<{width}}  {'p50 ms':>8}  {'p95 ms':>8}  {'queries':>7}  met")
    for r in results:
        mark = "yes" if r["met"] else "NO"
        print(
            f"{r['case']:<{width}}  {r['p50_ms']:>8.1f}  {r['p95_ms']:>8.1f}  "
            f"{r['queries']:>7}  {mark}"
        )
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "benchmark": "monitor",
        "rows": estimated_rows,
        "samples": args.samples,
        "target": {
            "p95_ms": TARGET_P95_MS,
            "queries": TARGET_QUERIES,
            "queue_queries": TARGET_QUEUE_QUERIES,
        },
        "generation_seconds": timings,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "results": results,
        "all_met": all(r["met"] for r in results),
    }
    out.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"\nAll targets met: {'yes' if payload['all_met'] else 'NO'}; JSON: {out}")


if __name__ == "__main__":
    main()
