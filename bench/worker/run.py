"""CPU per request of the worker's side of the pipeline (issue 16), in-process, on PostgreSQL.

Runs the decision task's body (``decide_request``: decide, then execute inline through the
simulated gateway) for N ``received`` requests spread over the many-shops workload of
bench/decide, and prints per request: Python CPU (``time.process_time``), the PostgreSQL
backend's CPU (/proc/<pg_backend_pid()>/stat), statements and transactions. CPU, not wall
time: the machine is shared. ``--profile`` prints the cProfile top entries instead.

    python bench/worker/run.py --requests 500
    python bench/worker/run.py --requests 300 --profile
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.common import analyze, database_url, setup_django
from bench.decide.run import create_requests, seed_shops
from bench.decide.statements import backend_cpu_seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=database_url("atom_bench_worker"))
    parser.add_argument(
        "--broker-url", default=os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/12")
    )
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--shops", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds; the best is kept")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    setup_django(database_url=args.database_url, broker_url=args.broker_url)

    from django.db import connection

    from strategies.tasks import decide_request

    targets = seed_shops("worker", args.shops)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]

    counts = {"statements": 0, "commits": 0}

    def counting(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        counts["statements"] += 1
        return execute(sql, params, many, context)

    # Warm-up: imports, prepared statements, caches.
    for request_id in create_requests(targets, 50, f"warm{time.time_ns()}"):
        decide_request(request_id)

    results = []
    for _ in range(args.rounds):
        ids = create_requests(targets, args.requests, f"w{time.time_ns()}")
        analyze(args.database_url)  # statistics, as autovacuum would keep them
        counts["statements"] = 0
        states: dict[str, int] = {}
        profiler = cProfile.Profile(time.process_time) if args.profile else None
        db0, py0 = backend_cpu_seconds(pid), time.process_time()
        with connection.execute_wrapper(counting):
            if profiler:
                profiler.enable()
            for request_id in ids:
                state = decide_request(request_id)
                states[state] = states.get(state, 0) + 1
            if profiler:
                profiler.disable()
        py, db = time.process_time() - py0, backend_cpu_seconds(pid) - db0
        n = len(ids)
        results.append((py * 1000 / n, db * 1000 / n, counts["statements"] / n, states))
        if profiler:
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(45)
            pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
            break
    for py_ms, db_ms, stmts, states in results:
        print(
            f"python {py_ms:.3f} ms/req  postgres {db_ms:.3f} ms/req  "
            f"statements {stmts:.2f}/req  states {states}"
        )
    best = min(results, key=lambda r: r[0] + r[1])
    print(
        f"BEST python {best[0]:.3f} ms/req postgres {best[1]:.3f} ms/req",
        f"statements {best[2]:.2f}/req",
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
