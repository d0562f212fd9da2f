"""The API pool alone (issue 16, lever 6): gunicorn settings from measurement, not habit.

For each ``--configs`` entry (``WORKERSxTHREADS`` for gthread, ``WORKERS`` alone for the sync
worker), gunicorn serves ``atomsite.wsgi`` against the bench's own database with NO Celery
worker running (the decision tasks wait in the broker, which is emptied after each run), and
wrk sends pre-signed requests closed-loop for ``--duration`` seconds. Reported per config:
intake/s, wrk's p50/p99, and the CPU per request of the API processes and of the PostgreSQL
backends. What the pool costs per request and what it takes in on this machine's two cores,
with nothing else competing: the configuration bench/pipeline and deploy/ start with is the
one that takes in the most for the least CPU.

    python bench/pipeline/api_pool.py
    python bench/pipeline/api_pool.py --configs 1x8,2x4,4x2,2 --duration 15
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.common import (
    DEFAULT_BROKER,
    RESULTS,
    Server,
    bench_environ,
    bin_path,
    database_url,
    flush_redis,
    free_port,
    print_table,
    setup_django,
    wait_for_port,
    write_json,
)
from bench.pipeline import cpu, wrk


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=database_url("atom_bench_pipeline"))
    parser.add_argument("--broker-url", default=DEFAULT_BROKER)
    parser.add_argument("--configs", default="1x8,2x4,2x8,3x4,4x2,4")
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument("--wrk-threads", type=int, default=2)
    parser.add_argument("--wrk-connections", type=int, default=16)
    parser.add_argument("--shops", type=int, default=4)
    parser.add_argument("--json", default=None)
    return parser.parse_args()


def gunicorn_argv(config: str, port: int) -> list[str]:
    workers, _, threads = config.partition("x")
    argv = [
        bin_path("gunicorn"),
        "atomsite.wsgi:application",
        f"--bind=127.0.0.1:{port}",
        f"--workers={int(workers)}",
        "--keep-alive=30",
        "--backlog=2048",
    ]
    if threads:
        argv += ["--worker-class=gthread", f"--threads={int(threads)}"]
    else:
        argv += ["--worker-class=sync"]
    return argv


def run_config(args: argparse.Namespace, config: str, shops, env: dict[str, str]) -> dict[str, Any]:
    from strategies.models import AfterSaleRequest

    port = free_port()
    web = Server("gunicorn", gunicorn_argv(config, port), env, RESULTS / "logs" / "api-pool.log")
    prefix = f"AP{time.time_ns() % 10**7}"
    requests_file = RESULTS / "api-pool-requests.tsv"
    count = int(600 * args.duration)
    wrk.write_requests(
        requests_file,
        shops=shops,
        prefix=prefix,
        count=count,
        start_at=time.time() + 1.0,
        duration=args.duration,
    )
    web.start()
    try:
        wait_for_port(port)
        # Warm every process (imports, the first connection) before the measure.
        wrk.run_wrk(
            url=f"http://127.0.0.1:{port}/api/v1/aftersales",
            requests_file=RESULTS / "api-pool-warm.tsv",
            duration=2,
            threads=args.wrk_threads,
            connections=args.wrk_connections,
            log=RESULTS / "logs" / "api-pool-wrk-warm.log",
        )

        def groups() -> dict[str, list[int]]:
            backends, _ = cpu.postgres_pids(args.database_url)
            return {"api": [p.pid for p in cpu.tree(web.pid)], "postgres": backends}

        sampler = cpu.Sampler(groups).start()
        sent = wrk.run_wrk(
            url=f"http://127.0.0.1:{port}/api/v1/aftersales",
            requests_file=requests_file,
            duration=args.duration,
            threads=args.wrk_threads,
            connections=args.wrk_connections,
            log=RESULTS / "logs" / "api-pool-wrk.log",
        )
        by_group = sampler.stop()
    finally:
        web.stop()
        flush_redis(args.broker_url)
    stored = AfterSaleRequest.objects.filter(aftersale_id__startswith=f"AS{prefix}").count()
    window = sent["ended"] - sent["started"]
    return {
        "config": config,
        "stored": stored,
        "statuses": sent["statuses"],
        "intake_per_s": stored / window if window else 0.0,
        "intake_p50_ms": sent["intake_p50_ms"],
        "intake_p99_ms": sent["intake_p99_ms"],
        "api_cpu_ms": 1000 * by_group.get("api", 0.0) / max(stored, 1),
        "postgres_cpu_ms": 1000 * by_group.get("postgres", 0.0) / max(stored, 1),
    }


def main() -> int:
    args = parse_args()
    setup_django(database_url=args.database_url, broker_url=args.broker_url)
    from bench.pipeline.run import reset_and_seed

    shops = reset_and_seed(args.shops)
    from django.db import connections

    connections.close_all()
    RESULTS.mkdir(parents=True, exist_ok=True)
    wrk.write_requests(
        RESULTS / "api-pool-warm.tsv",
        shops=shops,
        prefix=f"APW{time.time_ns() % 10**7}",
        count=2000,
        start_at=time.time() + 1.0,
        duration=60,
    )
    env = bench_environ(
        database_url=args.database_url, broker_url=args.broker_url, CONN_MAX_AGE="60"
    )
    rows = []
    for config in [c.strip() for c in args.configs.split(",") if c.strip()]:
        print(f"gunicorn {config}: wrk {args.wrk_threads}x{args.wrk_connections} ...", flush=True)
        rows.append(run_config(args, config, shops, env))
        connections.close_all()
    print_table(
        ["gunicorn", "intake/s", "p50 ms", "p99 ms", "API CPU ms/req", "PG CPU ms/req", "non-2xx"],
        [
            (
                r["config"] + ("" if "x" in r["config"] else " (sync)"),
                f"{r['intake_per_s']:.1f}",
                f"{r['intake_p50_ms']:.1f}",
                f"{r['intake_p99_ms']:.1f}",
                f"{r['api_cpu_ms']:.2f}",
                f"{r['postgres_cpu_ms']:.2f}",
                sum(v for k, v in r["statuses"].items() if not k.startswith("2")),
            )
            for r in rows
        ],
    )
    path = write_json("api-pool", {"settings": vars(args), "configs": rows}, args.json)
    print(f"\nwritten to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
