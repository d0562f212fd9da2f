"""CPU per request of a real Celery worker running the decision task (decide + inline execute),
by pool: the worker's processes' CPU (its process group, from /proc) before and after N tasks
published to the bench's Redis db, and its PostgreSQL backends' CPU is left to run.py.

    python bench/worker/celery_cpu.py --requests 600 --pool prefork --concurrency 3
    python bench/worker/celery_cpu.py --requests 600 --pool solo --concurrency 1
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.common import (
    bench_environ,
    celery_worker,
    database_url,
    flush_redis,
    setup_django,
    wait_worker_ready,
)
from bench.decide.run import create_requests, seed_shops


def group_cpu_seconds(pgid: int) -> float:
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # fields[2] is pgrp (after state, ppid)
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=database_url("atom_bench_worker"))
    parser.add_argument("--broker-url", default="redis://127.0.0.1:6379/12")
    parser.add_argument("--requests", type=int, default=600)
    parser.add_argument("--pool", default="prefork")
    parser.add_argument("--concurrency", type=int, default=3)
    args = parser.parse_args()
    setup_django(database_url=args.database_url, broker_url=args.broker_url)
    from strategies.models import AfterSaleRequest
    from strategies.pipeline.publish import DECIDE_TASK, publish_now

    flush_redis(args.broker_url)
    targets = seed_shops("worker", 50)
    env = bench_environ(database_url=args.database_url, broker_url=args.broker_url)
    worker = celery_worker(
        env=env, concurrency=args.concurrency, pool=args.pool, log=Path("/tmp/lw_worker.log")
    ).start()
    try:
        wait_worker_ready()

        def run(n: int, tag: str) -> None:
            ids = create_requests(targets, n, tag)
            for request_id in ids:
                publish_now(DECIDE_TASK, [request_id])
            while AfterSaleRequest.objects.filter(pk__in=ids, status="received").exists() or (
                AfterSaleRequest.objects.filter(pk__in=ids, status="approved").exists()
            ):
                time.sleep(0.2)

        run(60, f"cw{time.time_ns()}")  # warm-up
        cpu0 = group_cpu_seconds(worker.pid)
        run(args.requests, f"c{time.time_ns()}")
        cpu = group_cpu_seconds(worker.pid) - cpu0
    finally:
        worker.stop()
    print(
        f"pool {args.pool} x{args.concurrency}: worker CPU {cpu * 1000 / args.requests:.3f} ms/req"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
