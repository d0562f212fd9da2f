"""The chaos run: N requests (default 5,000) through a real Celery worker pool while the whole
worker is SIGKILLed and replaced and the broker is SIGKILLed and restarted empty; the sweeper
heals what was lost. Prints the counts and whether every invariant held; writes JSON.

The scenario is ``bench/chaos/core.py`` (``tests/test_chaos.py`` runs the same with 400
requests in CI). It uses its OWN database (atom_bench_chaos, emptied at start) and its OWN
``redis-server`` on a free port (never the machine's shared Redis), and a local HTTP gateway
that records every call by idempotency key.

    python bench/chaos/run.py
    python bench/chaos/run.py --count 1000 --kills 2 --redis-restarts 1
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.common import RESULTS, database_url, free_port, setup_django, verdict, write_json


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=database_url("atom_bench_chaos"))
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--kills", type=int, default=4)
    parser.add_argument("--redis-restarts", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=3, help="prefork pool size")
    parser.add_argument("--shops", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument(
        "--rate", type=float, default=30.0, help="requests/s fed (0: as fast as possible)"
    )
    parser.add_argument(
        "--sweep-after",
        type=float,
        default=30.0,
        help="the sweeper's threshold (s): keep it above the normal queueing delay",
    )
    parser.add_argument(
        "--dispatch",
        choices=("celery", "postgres"),
        default="celery",
        help="ATOM_DISPATCH: postgres kills the deciders (run_deciders x --concurrency) and the "
        "Celery worker beside them (retries) together",
    )
    parser.add_argument("--json", default=None)
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    # SIGTERM unwinds like Ctrl-C, so the servers started below are stopped.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    from bench.chaos.core import (
        CHAOS_WORKER_ENV,
        ChaosConfig,
        RedisServer,
        WorkerAndDeciders,
        broker,
        run_chaos,
    )

    redis = RedisServer(free_port(), log=RESULTS / "logs" / "chaos-redis.log")
    # This process only logs errors: the intake's warnings while Redis is down are expected.
    setup_django(
        database_url=args.database_url,
        broker_url=redis.url,
        LOG_LEVEL="ERROR",
        ATOM_DISPATCH=args.dispatch,
    )
    from django.db import connection

    from tests.worker import CeleryWorker, DeciderProcesses, GatewayServer

    with connection.cursor() as cur:
        cur.execute("TRUNCATE strategies_shop CASCADE")
    connection.close()

    config = ChaosConfig(
        count=args.count,
        kills=args.kills,
        redis_restarts=args.redis_restarts,
        shops=args.shops,
        timeout=args.timeout,
        rate=args.rate or None,
        sweep_after=args.sweep_after,
    )
    gateway = GatewayServer().start()
    workers: list[CeleryWorker | DeciderProcesses] = []
    worker_env = {**CHAOS_WORKER_ENV, "CELERY_BROKER_URL": redis.url, "CONN_MAX_AGE": "60"}

    def start_worker() -> CeleryWorker | WorkerAndDeciders:
        if args.dispatch == "postgres":
            deciders = DeciderProcesses(
                processes=args.concurrency, gateway=gateway, env=worker_env, poll=1.0
            ).start()
            celery = CeleryWorker(
                pool="prefork", concurrency=1, gateway=gateway, env=worker_env
            ).start()
            workers.extend([deciders, celery])
            return WorkerAndDeciders(deciders, celery)
        worker = CeleryWorker(
            pool="prefork", concurrency=args.concurrency, gateway=gateway, env=worker_env
        )
        workers.append(worker)
        return worker.start()

    redis.start()
    print(
        f"chaos: {config.count} requests, {config.kills} worker SIGKILLs, "
        f"{config.redis_restarts} Redis restarts (redis-server on :{redis.port}), "
        f"{args.dispatch} dispatch, "
        + (
            f"run_deciders x{args.concurrency} and celery x1"
            if args.dispatch == "postgres"
            else f"prefork x{args.concurrency}"
        ),
        flush=True,
    )
    try:
        with broker(redis.url):
            report = run_chaos(
                config=config, redis=redis, gateway=gateway, start_worker=start_worker
            )
    finally:
        for worker in workers:
            worker.kill()
        gateway.stop()
        redis.kill()
    print()
    for line in report.lines():
        print(line)
    ok = not report.violations
    print(f"\nevery invariant held: {verdict(ok)}")
    path = write_json("chaos", {"report": report.as_dict(), "met": ok}, args.json)
    print(f"written to {path}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
