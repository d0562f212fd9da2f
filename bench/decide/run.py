"""Benchmark of the decision service (``request_decide``) on PostgreSQL, beside pgbench.

Deciders are PROCESSES (multiprocessing, fork), each with its own Django connection: with the
GIL, threads would measure the interpreter lock as much as the database, and a real deployment
runs deciders as prefork Celery children anyway. Requests are created in bulk before each timed
run; only ``request_decide`` calls are timed (including the post-commit publish of the execution
task, as in production; ``--no-publish`` leaves it out). ``--dispatch postgres`` times the
deciders' claim by id instead (``request_claim_and_decide``, ATOM_DISPATCH=postgres: no publish,
the execution runs in the decider after it).

Two workloads, each with 1, 4 and 8 deciders:
- hot: one shop, one strategy: every approval reserves on the SAME ledger row;
- many: 50 shops with one strategy each, requests spread over them.

pgbench TPC-B (``-i -s 10``, ``-c N -j 2 -T``) runs on a scratch database on the same server in
the same run. Goal: many at 8 deciders >= 0.3x pgbench at 8 clients (0.4x the stretch, both
printed); hot >= 50% of many. The publish goes to Redis, RabbitMQ or each in turn (``--broker
both``, the default: every run on each).
Each run also reports the CPU time per decision of the deciders and of their PostgreSQL
backends (read from /proc when the server is local): on a machine other processes load, wall
times swing with the load, CPU per decision much less.

    python bench/decide/run.py                        # about 2 minutes
    python bench/decide/run.py --requests 2000 --pgbench-seconds 10
    python bench/decide/run.py --binding client       # parameters bound in the client
    python bench/decide/run.py --without-indexes strategies_decision_shop_id_ff9a50f9
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import multiprocessing as mp
import os
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.common import (
    BIG_CAP,
    DEFAULT_BROKER,
    DEFAULT_RABBITMQ,
    database_url,
    ensure_rabbitmq_vhost,
    flush_redis,
    percentile,
    pgbench_tps,
    print_table,
    setup_django,
    verdict,
    write_json,
)
from bench.decide.statements import BINDINGS, backend_cpu_seconds, binding_apply, binding_environ

# The goal (>= 0.3x pgbench at 8 deciders, publish included) and its stretch (0.4x).
GOAL_RATIO = 0.3
TARGET_RATIO = 0.4
TARGET_HOT_SHARE = 0.5
MANY_SHOPS = 50


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=database_url("atom_bench_decide"))
    parser.add_argument(
        "--broker",
        choices=("redis", "rabbitmq", "both"),
        default="both",
        help="where the post-commit publish goes; both: every run on Redis, then on RabbitMQ",
    )
    parser.add_argument(
        "--broker-url",
        default=os.environ.get("BENCH_BROKER_URL", DEFAULT_BROKER),
        help="the Redis broker (a db of its own)",
    )
    parser.add_argument(
        "--rabbitmq-url",
        default=os.environ.get("BENCH_RABBITMQ_URL", DEFAULT_RABBITMQ),
        help="the RabbitMQ broker (a vhost of its own, created with rabbitmqctl if missing)",
    )
    parser.add_argument("--requests", type=int, default=4000, help="timed decisions per run")
    parser.add_argument("--clients", default="1,4,8", help="decider process counts")
    parser.add_argument("--pgbench-seconds", type=int, default=20)
    parser.add_argument("--no-pgbench", action="store_true")
    parser.add_argument("--no-publish", action="store_true", help="do not publish to Redis")
    parser.add_argument(
        "--dispatch",
        choices=("celery", "postgres"),
        default="celery",
        help="celery: request_decide with the execution task's publish; postgres: the deciders' "
        "claim by id (request_claim_and_decide), no publish (ATOM_DISPATCH=postgres)",
    )
    parser.add_argument(
        "--binding",
        choices=BINDINGS,
        default="prepared",
        help="how parameters are bound: client, server, prepared (server + prepared statements, "
        "the settings' default)",
    )
    parser.add_argument(
        "--without-indexes",
        default="",
        help="comma-separated indexes of strategies_decision to drop for the runs (recreated "
        "after): what each costs a decision, weighed against what it serves",
    )
    parser.add_argument("--json", default=None)
    return parser.parse_args()


@contextlib.contextmanager
def without_indexes(names: list[str]) -> Iterator[None]:
    """Drops the named indexes of the decision table for the block, then recreates them exactly
    (their definitions read from pg_indexes first)."""
    from django.db import connection

    if not names:
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'strategies_decision' "
            "AND indexname = ANY(%s)",
            [names],
        )
        defs = dict(cursor.fetchall())
        unknown = sorted(set(names) - set(defs))
        if unknown:
            raise SystemExit(f"no such index on strategies_decision: {', '.join(unknown)}")
        for name in names:
            cursor.execute(f'DROP INDEX "{name}"')
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            for definition in defs.values():
                cursor.execute(definition)


# --- data -----------------------------------------------------------------------------------


def seed_shops(prefix: str, count: int) -> list[tuple[int, int]]:
    """``count`` shops with one active strategy each (a cap never reached) and one shipped
    order: [(shop id, order id)]."""
    from strategies.models import Order, OrderItem, Shop, Strategy

    now = dt.datetime.now(dt.UTC)
    out = []
    for i in range(count):
        shop, _ = Shop.objects.get_or_create(
            code=f"{prefix}-{i:03d}", defaults={"name": f"Bench {prefix} {i}", "api_secret": "s"}
        )
        Strategy.objects.get_or_create(
            shop=shop,
            scenario="post_shipment_refund",
            name="Bench: approve everything",
            defaults={"status": "active", "position": 1, "daily_cap": BIG_CAP},
        )
        order, created = Order.objects.get_or_create(
            shop=shop,
            order_id=f"OD-{prefix}-{i}",
            defaults={
                "status": "shipped",
                "paid_at": now - dt.timedelta(days=2),
                "shipped_at": now - dt.timedelta(days=1),
            },
        )
        if created:
            OrderItem.objects.create(
                order=order, product_id="P1001", quantity=1, price=Decimal("1000.00")
            )
        out.append((shop.pk, order.pk))
    return out


def create_requests(targets: list[tuple[int, int]], count: int, tag: str) -> list[int]:
    """``count`` requests in state ``received``, round-robin over the targets' shops, each on an
    order of its own (requests on one order are decided in turn, and together never pass its
    total: one order for all would measure that lock, not the ledger's), in bulk."""
    from strategies.models import AfterSaleRequest, Order, OrderItem

    now = dt.datetime.now(dt.UTC)
    orders = Order.objects.bulk_create(
        [
            Order(
                shop_id=targets[i % len(targets)][0],
                order_id=f"OD-{tag}-{i:07d}",
                status="shipped",
                paid_at=now - dt.timedelta(days=2),
                shipped_at=now - dt.timedelta(days=1),
            )
            for i in range(count)
        ],
        batch_size=2000,
    )
    OrderItem.objects.bulk_create(
        [
            OrderItem(order_id=o.pk, product_id="P1001", quantity=1, price=Decimal("10.00"))
            for o in orders
        ],
        batch_size=2000,
    )
    rows = [
        AfterSaleRequest(
            shop_id=targets[i % len(targets)][0],
            order_id=orders[i].pk,
            aftersale_id=f"AS-{tag}-{i:07d}",
            buyer_id=f"B{i % 997:05d}",
            type="refund_only",
            reason="no_longer_needed",
            amount=Decimal("1.00"),
            applied_at=now,
            payload={},
            payload_digest="0" * 64,
        )
        for i in range(count)
    ]
    created = AfterSaleRequest.objects.bulk_create(rows, batch_size=2000)
    return [r.pk for r in created]


# --- deciders -------------------------------------------------------------------------------


def decider(
    ids: list[int], warmup: int, barrier: Any, results: Any, no_publish: bool, dispatch: str
) -> None:  # pragma: no cover - runs in a child process
    from django.db import connection

    from strategies.pipeline import decide as decisions
    from strategies.pipeline import publish

    if no_publish:
        publish.publish_now = lambda name, args: True  # type: ignore[assignment]
    decide_one = (
        (lambda rid: decisions.request_claim_and_decide(request_id=rid))
        if dispatch == "postgres"
        else (lambda rid: decisions.request_decide(request_id=rid))
    )
    for rid in ids[:warmup]:  # imports, connection, prepared plans: not timed
        decide_one(rid)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    latencies = []
    barrier.wait()
    started = time.time()
    cpu0, server0 = time.process_time(), backend_cpu_seconds(backend)
    for rid in ids[warmup:]:
        t0 = time.perf_counter()
        decide_one(rid)
        latencies.append(time.perf_counter() - t0)
    cpu, server = time.process_time() - cpu0, backend_cpu_seconds(backend) - server0
    ended = time.time()
    connection.close()
    results.put((started, ended, latencies, cpu, server))


def run_one(workload: str, targets: list[tuple[int, int]], clients: int, args) -> dict[str, Any]:
    from django.db import connections

    from strategies.models import Decision

    warmup = 5
    tag = f"{workload}-{clients}-{time.time_ns()}"
    ids = create_requests(targets, args.requests + warmup * clients, tag)
    # Fresh statistics, as autovacuum would keep them (it is off on this machine's PostgreSQL):
    # with the stats of an empty table the planner read an order's approvals through the
    # per-buyer index, scanning the shop's whole log.
    with connections["default"].cursor() as cursor:
        cursor.execute("ANALYZE")
    warm, timed = ids[: warmup * clients], ids[warmup * clients :]
    slices = [warm[i::clients] + timed[i::clients] for i in range(clients)]
    connections.close_all()  # never share a connection with the forked children
    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(clients)
    results = ctx.Queue()
    procs = [
        ctx.Process(
            target=decider, args=(s, warmup, barrier, results, args.no_publish, args.dispatch)
        )
        for s in slices
    ]
    for p in procs:
        p.start()
    outs = [results.get(timeout=600) for _ in procs]
    for p in procs:
        p.join()
    started = min(o[0] for o in outs)
    ended = max(o[1] for o in outs)
    latencies = [v for o in outs for v in o[2]]
    client_cpu, server_cpu = sum(o[3] for o in outs), sum(o[4] for o in outs)
    approved = Decision.objects.filter(request_id__in=timed, outcome="approved").count()
    elapsed = ended - started
    return {
        "workload": workload,
        "clients": clients,
        "decisions": len(latencies),
        "approved": approved,
        "seconds": round(elapsed, 3),
        "per_second": len(latencies) / elapsed,
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
        # CPU per decision, of the deciders (Django, psycopg) and of their PostgreSQL backends:
        # steadier than wall times when other processes load the machine.
        "client_cpu_ms": client_cpu / len(latencies) * 1000,
        "server_cpu_ms": server_cpu / len(latencies) * 1000,
    }


def main() -> int:
    args = parse_args()
    brokers = {"redis": args.broker_url, "rabbitmq": args.rabbitmq_url}
    chosen = ["redis", "rabbitmq"] if args.broker == "both" else [args.broker]
    if args.no_publish:
        chosen = chosen[:1]  # nothing is published: one pass says it all
    if "rabbitmq" in chosen and not args.no_publish:
        ensure_rabbitmq_vhost(args.rabbitmq_url)
    setup_django(
        database_url=args.database_url,
        broker_url=brokers[chosen[0]],
        **binding_environ(args.binding),
    )
    binding_apply(args.binding)
    from bench.chaos.core import broker as pointing_at

    clients = [int(c) for c in args.clients.split(",")]
    workloads = {"hot": seed_shops("hot", 1), "many": seed_shops("many", MANY_SHOPS)}

    runs = []
    dropped = [n.strip() for n in args.without_indexes.split(",") if n.strip()]
    if dropped:
        print(f"without the indexes {', '.join(dropped)} (recreated after the runs)")
    with without_indexes(dropped):
        for broker in chosen:
            url = brokers[broker]
            if not args.no_publish:
                flush_redis(url)
            # The deciders are forked inside the block: they publish to this broker.
            with pointing_at(url):
                for name, targets in workloads.items():
                    for n in clients:
                        run = run_one(name, targets, n, args)
                        run["broker"] = broker
                        runs.append(run)
                        print(
                            f"  [{broker}] {name:4} x{n}: {run['per_second']:.0f}/s  "
                            f"p50 {run['p50_ms']:.1f} ms  p99 {run['p99_ms']:.1f} ms  "
                            f"cpu {run['client_cpu_ms']:.2f} + {run['server_cpu_ms']:.2f} ms  "
                            f"({run['approved']}/{run['decisions']} approved)",
                            flush=True,
                        )
            if not args.no_publish:
                flush_redis(url)

    pgbench: dict[int, float] = {}
    if not args.no_pgbench:
        print(f"pgbench TPC-B -s 10, {args.pgbench_seconds} s per client count ...", flush=True)
        pgbench = pgbench_tps(
            database_url=args.database_url, clients=clients, seconds=args.pgbench_seconds
        )

    rows = []
    for run in runs:
        tps = pgbench.get(run["clients"], float("nan"))
        run["pgbench_tps"] = tps
        run["ratio"] = run["per_second"] / tps if tps == tps else float("nan")
        rows.append(
            [
                "none" if args.no_publish else run["broker"],
                run["workload"],
                run["clients"],
                run["decisions"],
                run["per_second"],
                run["p50_ms"],
                run["p99_ms"],
                run["client_cpu_ms"],
                run["server_cpu_ms"],
                tps,
                f"{run['ratio']:.2f}",
            ]
        )
    print()
    print_table(
        [
            "publish to",
            "workload",
            "deciders",
            "decisions",
            "per s",
            "p50 ms",
            "p99 ms",
            "cpu ms",
            "db cpu ms",
            "pgbench tps",
            "ratio",
        ],
        rows,
    )

    top = max(clients)
    targets_by_broker: dict[str, dict[str, dict[str, Any]]] = {}
    for broker in chosen:
        by = {(r["workload"], r["clients"]): r for r in runs if r["broker"] == broker}
        many, hot = by[("many", top)], by[("hot", top)]
        targets: dict[str, dict[str, Any]] = {}
        if pgbench:
            ratio = many["ratio"]
            targets["many_vs_pgbench"] = {
                "value": round(ratio, 3),
                "target": f">= {TARGET_RATIO}",
                "met": ratio >= TARGET_RATIO,
            }
            targets["many_vs_pgbench_goal"] = {
                "value": round(ratio, 3),
                "target": f">= {GOAL_RATIO}",
                "met": ratio >= GOAL_RATIO,
            }
        share = hot["per_second"] / many["per_second"]
        targets["hot_vs_many"] = {
            "value": round(share, 3),
            "target": f">= {TARGET_HOT_SHARE}",
            "met": share >= TARGET_HOT_SHARE,
        }
        targets_by_broker[broker] = targets
        tps = pgbench.get(top)
        beside = f"pgbench TPC-B x{top}: {tps:,.0f} tps" if tps else "pgbench: not run"
        where = "no publish" if args.no_publish else f"publish to {broker}"
        if args.dispatch == "postgres":
            where = f"the deciders' claim by id (ATOM_DISPATCH=postgres), alerts to {broker}"
        print(f"\ngoal rows, {where} (same run's {beside}):")
        for name, t in targets.items():
            label = "many_vs_pgbench" if name == "many_vs_pgbench_goal" else name
            print(
                f"{label} at {top} deciders: {t['value']:.2f} (target {t['target']}): "
                f"{verdict(t['met'])}"
            )
    path = write_json(
        "decide",
        {
            "requests_per_run": args.requests,
            "binding": args.binding,
            "without_indexes": dropped,
            "publish": not args.no_publish,
            "brokers": chosen,
            "runs": runs,
            "pgbench_tps": pgbench,
            "targets": targets_by_broker,
        },
        args.json,
    )
    print(f"\nwritten to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
