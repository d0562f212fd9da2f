"""CPU per publish of the decision task, Celery's way against ATOM's (issue 16).

Each mode runs in a fresh process so it gets its own kombu transport:
- ``send_task``: Celery's ``send_task`` through kombu's stock Redis channel (before issue 16);
- ``send_task+channel``: ``send_task`` through ATOM's Redis channel (one client per pool);
- ``lean``: ``publish_now`` as the pipeline publishes (the template, ATOM's channel).

    .venv/bin/python bench/publish/run.py [--publishes 5000] [--broker redis|rabbitmq|both]

Prints the process CPU per publish (µs) and the wall time; the queue is purged before and
after. No database is touched (nothing here commits).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.common import (  # noqa: E402
    DEFAULT_BROKER,
    DEFAULT_RABBITMQ,
    bench_environ,
    ensure_rabbitmq_vhost,
    flush_redis,
    print_table,
)

MODES = ("send_task", "send_task+channel", "lean")


def child(mode: str, publishes: int) -> None:
    import django

    django.setup()
    from celery import current_app
    from kombu import pools
    from kombu.transport import TRANSPORT_ALIASES

    from strategies.pipeline import publish

    if mode == "send_task":  # kombu's own Redis channel, as before issue 16
        TRANSPORT_ALIASES["redis"] = "kombu.transport.redis:Transport"

    def send(request_id: int) -> None:
        if mode == "lean":
            assert publish.publish_now(publish.DECIDE_TASK, [request_id])
            return
        with pools.producers[publish._write_connection()].acquire(block=True) as producer:
            current_app.send_task(
                publish.DECIDE_TASK,
                args=[request_id],
                producer=producer,
                retry=True,
                retry_policy=publish.RETRY_POLICY,
            )

    for request_id in range(200):  # connect, declare, warm caches
        send(request_id)
    cpu, wall = time.process_time(), time.perf_counter()
    for request_id in range(publishes):
        send(request_id)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    print(json.dumps({"cpu_us": cpu / publishes * 1e6, "wall_us": wall / publishes * 1e6}))


def purge(url: str) -> None:
    if url.startswith("redis"):
        flush_redis(url)
        return
    from kombu import Connection

    ensure_rabbitmq_vhost(url)
    with Connection(url) as conn, conn.channel() as channel:
        channel.queue_declare("celery", durable=True, auto_delete=False)
        channel.queue_purge("celery")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--publishes", type=int, default=5000)
    parser.add_argument("--broker", choices=("redis", "rabbitmq", "both"), default="both")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.publishes)
        return
    redis_url = os.environ.get("BENCH_BROKER_URL", DEFAULT_BROKER)
    rabbitmq_url = os.environ.get("BENCH_RABBITMQ_URL", DEFAULT_RABBITMQ)
    brokers = {"redis": redis_url, "rabbitmq": rabbitmq_url}
    chosen = list(brokers) if args.broker == "both" else [args.broker]
    rows = []
    for broker in chosen:
        url = brokers[broker]
        # The stock and ATOM channels differ on Redis only: RabbitMQ has one send_task row.
        modes = MODES if broker == "redis" else ("send_task", "lean")
        for mode in modes:
            purge(url)
            env = {
                **os.environ,
                **bench_environ(
                    database_url="postgres://postgres@127.0.0.1:5432/postgres", broker_url=url
                ),
            }
            out = subprocess.run(
                [sys.executable, __file__, "--child", mode, "--publishes", str(args.publishes)],
                env=env,
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            figures = json.loads(out.strip().splitlines()[-1])
            rows.append([broker, mode, f"{figures['cpu_us']:.0f}", f"{figures['wall_us']:.0f}"])
            purge(url)
    print(f"{args.publishes} publishes of {MODES[-1]!r} vs Celery's send_task, one process each")
    print_table(["broker", "mode", "CPU µs/publish", "wall µs/publish"], rows)


if __name__ == "__main__":
    main()
