"""Benchmark of the whole pipeline: signed HTTP intake -> broker -> Celery workers -> gateway.

gunicorn (sync workers, as the production API pool; ``--web-threads`` for gthread) serves
``atomsite.wsgi`` against the bench's own database; a real ``celery -A atomsite worker`` pool
(prefork) decides and executes through the simulated gateway; the broker is Redis (db 8),
RabbitMQ (a vhost of its own), or each in turn (``--broker both``, the default). Bodies come
from ``strategies.demo.traffic`` (realistic mixes of order states, reasons and amounts), each
signed as API.md says.

- Phase 1 (throughput): Debian's ``wrk`` (``--load-generator wrk``, the default when installed)
  sends ``--rate`` x ``--duration`` requests signed beforehand by Python, closed-loop over
  ``--wrk-connections`` keep-alive connections; ``--load-generator python`` offers ``--rate``
  requests/s (default 400) with the paced Python sender instead. Reported: requests fully
  processed per second (executed, or decided for manual review, within the sending window) and
  end to end including the drain, and the CPU budget per request by process group and stage
  (``bench/pipeline/cpu.py``). Target: >= 300 requests/s executed.
- Phase 2 (latency): the paced Python sender offers 150 requests/s for ``--latency-duration``
  seconds (open loop: a closed-loop generator cannot offer a set rate); p50/p99 from intake
  (``received_at``) to decision (``Decision.decided_at``). Target: p99 <= 100 ms.
- Dispatch (``--dispatch``, default ``both``): each broker's run with a Celery message per
  request (``ATOM_DISPATCH=celery``, the verdict lines named after the broker alone), then with
  the request row as the queue (``postgres``: intake's NOTIFY, ``manage.py run_deciders`` with
  ``--celery-concurrency`` deciders in place of the Celery pool, and a Celery worker x1 beside
  them for retries; named ``<broker>+pg-dispatch``).
- pgbench TPC-B (8 clients) on the same server in the same run, printed beside the goal rows.
- Kuaishou workload (``--workload kuaishou`` or ``both``): the fake Kuaishou open platform
  (``strategies.platforms.kuaishou.fake``, a real local HTTP server in this process, checking
  every signature and token) holds the refunds of a shop connected as a Kuaishou shop; paced
  pushers send each as an encrypted message to ATOM's push endpoint; the workers fetch the
  refund and its order from the fake, decide, re-read the refund and approve it there. Reported
  beside the generic workload: pushes answered per second (intake/s), requests executed per
  second, and p50/p99 from the push leaving to the approval reaching the fake.

    python bench/pipeline/run.py
    python bench/pipeline/run.py --broker redis --duration 20 --latency-duration 20
    python bench/pipeline/run.py --load-generator python --execute-in-decision off
    python bench/pipeline/run.py --workload both --phases 1 --duration 20 --kuaishou-rate 50
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing as mp
import os
import shutil
import signal
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.common import (
    BIG_CAP,
    DEFAULT_BROKER,
    DEFAULT_RABBITMQ,
    RESULTS,
    Server,
    autoanalyze,
    bench_environ,
    bin_path,
    celery_worker,
    database_url,
    ensure_rabbitmq_vhost,
    flush_redis,
    free_port,
    percentile,
    pgbench_tps,
    print_table,
    setup_django,
    verdict,
    wait_for_port,
    wait_worker_ready,
    write_json,
)
from bench.pipeline import cpu, wrk

TARGET_EXECUTED_PER_S = 300.0
TARGET_P99_MS = 100.0
LATENCY_RATE = 150.0
FINAL = ("executed", "manual_review", "failed")
PGBENCH_CLIENTS = 8


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=database_url("atom_bench_pipeline"))
    parser.add_argument(
        "--broker",
        choices=("redis", "rabbitmq", "both"),
        default="both",
        help="the broker of the run; both: the whole bench on Redis, then on RabbitMQ",
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
    parser.add_argument("--duration", type=float, default=60.0, help="phase 1 seconds")
    parser.add_argument(
        "--rate",
        type=float,
        default=400.0,
        help="phase 1: requests/s offered by the Python sender; with wrk, rate x duration "
        "requests are signed beforehand (the most wrk sends)",
    )
    parser.add_argument(
        "--load-generator",
        choices=("wrk", "python"),
        default="wrk" if wrk.wrk_path() else "python",
        help="phase 1's load generator (default: wrk when installed)",
    )
    parser.add_argument("--wrk-threads", type=int, default=2)
    parser.add_argument("--wrk-connections", type=int, default=16)
    parser.add_argument("--latency-duration", type=float, default=30.0, help="phase 2 seconds")
    parser.add_argument("--latency-rate", type=float, default=LATENCY_RATE)
    parser.add_argument("--shops", type=int, default=4)
    # The production API pool's settings (deploy/gunicorn/api.py: sync workers behind nginx,
    # API_CONCURRENCY=3): bench/pipeline/api_pool.py measured them the cheapest per request.
    parser.add_argument("--web-workers", type=int, default=3, help="gunicorn processes")
    parser.add_argument(
        "--web-threads",
        type=int,
        default=0,
        help="threads per gunicorn process (gthread); 0: the sync worker, as in production",
    )
    parser.add_argument("--celery-concurrency", type=int, default=3)
    parser.add_argument(
        "--dispatch",
        choices=("celery", "postgres", "both"),
        default="both",
        help="ATOM_DISPATCH: a Celery message per request, or the request row as the queue "
        "(NOTIFY, manage.py run_deciders x --celery-concurrency, and a Celery worker x1 for "
        "retries); both: each in turn on every broker",
    )
    parser.add_argument("--celery-pool", default="prefork")
    parser.add_argument("--senders", type=int, default=2, help="Python sender processes")
    parser.add_argument("--threads", type=int, default=12, help="connections per Python sender")
    parser.add_argument("--phases", default="1,2")
    parser.add_argument(
        "--execute-in-decision",
        choices=("on", "off"),
        default="on",
        help="ATOM_EXECUTE_IN_DECISION_TASK of the worker (off: two tasks per approval)",
    )
    parser.add_argument(
        "--workload",
        choices=("generic", "kuaishou", "both"),
        default="generic",
        help="generic: signed API intake (phases 1 and 2); kuaishou: encrypted pushes through "
        "the fake Kuaishou; both: the two, one after the other",
    )
    parser.add_argument("--kuaishou-rate", type=float, default=50.0, help="pushes/s offered")
    parser.add_argument(
        "--kuaishou-duration", type=float, default=None, help="seconds (default: --duration)"
    )
    parser.add_argument("--kuaishou-threads", type=int, default=8, help="pushing connections")
    parser.add_argument("--pgbench-seconds", type=int, default=10)
    parser.add_argument("--no-pgbench", action="store_true")
    parser.add_argument("--json", default=None)
    return parser.parse_args()


# --- data -----------------------------------------------------------------------------------


def reset_and_seed(shops: int) -> list[tuple[str, str]]:
    """Empties the bench database's shop data, then ``shops`` shops with one active strategy
    per scenario (no limits, a cap never reached): [(code, secret)]."""
    from django.db import connection

    from strategies.models import SCENARIO_ORDER, Shop, Strategy

    with connection.cursor() as cur:
        cur.execute(
            "TRUNCATE strategies_decision, strategies_aftersalerequest, strategies_orderitem, "
            "strategies_order, strategies_dailyledger, strategies_product, "
            "strategies_pushmessage CASCADE"
        )
    out = []
    for i in range(shops):
        shop, _ = Shop.objects.get_or_create(
            code=f"pipe-{i}", defaults={"name": f"Pipeline {i}", "api_secret": f"pipe-secret-{i}"}
        )
        for position, scenario in enumerate(SCENARIO_ORDER, start=1):
            Strategy.objects.get_or_create(
                shop=shop,
                scenario=scenario,
                name=f"Bench {scenario}",
                defaults={"status": "active", "position": position, "daily_cap": BIG_CAP},
            )
        out.append((shop.code, shop.api_secret))
    return out


def seed_kuaishou(fake: Any) -> Any:
    """The Kuaishou shop: one active strategy per scenario (no limits), connected to ``fake``."""
    from strategies.demo.seed import connect_to_fake_kuaishou
    from strategies.models import SCENARIO_ORDER, Shop, Strategy

    shop, _ = Shop.objects.get_or_create(
        code="pipe-ks", defaults={"name": "Pipeline Kuaishou", "api_secret": "pipe-secret-ks"}
    )
    for position, scenario in enumerate(SCENARIO_ORDER, start=1):
        Strategy.objects.get_or_create(
            shop=shop,
            scenario=scenario,
            name=f"Bench {scenario}",
            defaults={"status": "active", "position": position, "daily_cap": BIG_CAP},
        )
    connect_to_fake_kuaishou(shop, fake)
    return shop


# --- load generator -------------------------------------------------------------------------


def presigned_requests(
    shops: list[tuple[str, str]], prefix: str, count: int
) -> list[tuple[bytes, dict[str, str]]]:
    """``count`` bodies with their API.md headers, built before the phase starts (each signature
    stays valid for the 300 s window): while sending, the sender only sends."""
    from strategies.demo.traffic import TrafficGenerator
    from strategies.platforms.generic.signing import signed_headers

    gens = [
        TrafficGenerator(
            seed=hash((prefix, n)) % 10**6, id_prefix=f"{prefix}T{n:02d}-", retry_rate=0
        )
        for n in range(len(shops))
    ]
    now = dt.datetime.now(dt.UTC)
    out = []
    for i in range(count):
        code, secret = shops[i % len(shops)]
        body = gens[i % len(shops)].next_body(now)
        headers = signed_headers(shop_code=code, secret=secret, body=body)
        headers["Content-Type"] = "application/json"
        out.append((body, headers))
    return out


def sender(
    url: str,
    prepared: list[tuple[bytes, dict[str, str]]],
    rate: float,
    duration: float,
    threads: int,
    start_at: float,
    results: Any,
) -> None:  # pragma: no cover - runs in a child process
    """Paced open loop: request i leaves at ``start_at + i / rate`` (wall clock), on whichever
    of ``threads`` connections is free. Bodies are built and signed beforehand and sent with
    ``http.client`` (about a third of ``requests``' CPU per call): on this 2-core machine the
    sender's CPU is taken from ATOM's."""
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    lock = threading.Lock()
    state = {"next": 0}
    statuses: Counter[str] = Counter()
    latencies: list[float] = []
    late: list[float] = []
    total = min(int(rate * duration), len(prepared))

    def run(t: int) -> None:
        conn: http.client.HTTPConnection | None = None
        while True:
            with lock:
                i = state["next"]
                state["next"] += 1
            due = start_at + i / rate
            # Open loop for ``duration`` seconds: what could not leave in time is not sent (the
            # achieved rate is reported next to the offered one).
            if i >= total or time.time() > start_at + duration:
                if conn is not None:
                    conn.close()
                return
            wait = due - time.time()
            if wait > 0:
                time.sleep(wait)
            body, headers = prepared[i]
            t0 = time.perf_counter()
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
                conn.request("POST", parts.path, body=body, headers=headers)
                response = conn.getresponse()
                response.read()
                key = str(response.status)
                if response.will_close:  # gunicorn's sync worker closes after each answer
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException):
                key = "error"
                if conn is not None:
                    conn.close()
                conn = None
            elapsed = time.perf_counter() - t0
            with lock:
                statuses[key] += 1
                latencies.append(elapsed)
                late.append(max(0.0, time.time() - elapsed - due))

    pool = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
    for th in pool:
        th.start()
    for th in pool:
        th.join()
    results.put((dict(statuses), latencies, late))


def offer(
    *, url: str, shops, prefix: str, rate: float, duration: float, senders: int, threads: int
) -> dict[str, Any]:
    ctx = mp.get_context("fork")
    results = ctx.Queue()
    each = int(rate / senders * duration)
    prepared = [presigned_requests(shops, f"{prefix}{s}", each) for s in range(senders)]
    start_at = time.time() + 1.0
    procs = [
        ctx.Process(
            target=sender,
            args=(url, prepared[s], rate / senders, duration, threads, start_at, results),
        )
        for s in range(senders)
    ]
    for p in procs:
        p.start()
    outs = [results.get(timeout=duration + 600) for _ in procs]
    ended = time.time()
    for p in procs:
        p.join()
    statuses: Counter[str] = Counter()
    for o in outs:
        statuses.update(o[0])
    latencies = [v for o in outs for v in o[1]]
    late = [v for o in outs for v in o[2]]
    return {
        "started": start_at,
        "ended": ended,
        "sent": sum(statuses.values()),
        "statuses": dict(statuses),
        "intake_p50_ms": percentile(latencies, 50) * 1000,
        "intake_p99_ms": percentile(latencies, 99) * 1000,
        "send_late_p99_ms": percentile(late, 99) * 1000,
    }


def wait_final(prefix: str, *, timeout: float) -> float:
    """Until every request of the phase is final; returns the time waited."""
    from strategies.models import AfterSaleRequest

    t0 = time.time()
    pending = AfterSaleRequest.objects.filter(
        aftersale_id__startswith=f"AS{prefix}", status__in=["received", "approved"]
    )
    while pending.exists() and time.time() - t0 < timeout:
        time.sleep(0.5)
    return time.time() - t0


def phase_figures(prefix: str, sent: dict[str, Any]) -> dict[str, Any]:
    from strategies.models import AfterSaleRequest

    rows = list(
        AfterSaleRequest.objects.filter(aftersale_id__startswith=f"AS{prefix}").values_list(
            "status", "received_at", "decision__decided_at", "decision__executed_at"
        )
    )
    window_start = dt.datetime.fromtimestamp(sent["started"], dt.UTC)
    window_end = dt.datetime.fromtimestamp(sent["ended"], dt.UTC)
    window = (window_end - window_start).total_seconds()
    done_at = []
    to_decision = []
    to_executed = []
    for status, received, decided, executed in rows:
        if decided is not None:
            to_decision.append((decided - received).total_seconds())
        if executed is not None:
            to_executed.append((executed - received).total_seconds())
        if status in FINAL:
            done_at.append(executed or decided)
    statuses = Counter(r[0] for r in rows)
    in_window = sum(1 for t in done_at if window_start <= t <= window_end)
    first = min((r[1] for r in rows), default=window_start)
    last = max(done_at, default=window_end)
    return {
        "stored": len(rows),
        "by_status": dict(statuses),
        "window_s": round(window, 2),
        "done_in_window_per_s": in_window / window if window else 0.0,
        "end_to_end_per_s": len(done_at) / max((last - first).total_seconds(), 1e-9),
        "to_decision_p50_ms": percentile(to_decision, 50) * 1000,
        "to_decision_p99_ms": percentile(to_decision, 99) * 1000,
        "to_decision_max_ms": max(to_decision, default=float("nan")) * 1000,
        "to_executed_p50_ms": percentile(to_executed, 50) * 1000,
        "to_executed_p99_ms": percentile(to_executed, 99) * 1000,
    }


# --- the Kuaishou workload ----------------------------------------------------------------


def push_kuaishou(
    *, fake: Any, push_url: str, rate: float, duration: float, threads: int
) -> dict[str, Any]:
    """Paced open loop in this process (the fake's refunds live here): refund i is created on
    the fake and pushed, encrypted, at ``start + i / rate``; (refund id -> push time) kept."""
    import json

    import requests

    from strategies.platforms.kuaishou.messages import encrypt_message

    lock = threading.Lock()
    state = {"next": 0}
    statuses: Counter[str] = Counter()
    answers: list[float] = []
    pushed_at: dict[str, float] = {}
    total = int(rate * duration)
    base = int(time.time()) * 1000
    fees = (590, 990, 1290, 1990, 4990, 12900)
    start_at = time.time() + 1.0

    def run(t: int) -> None:
        session = requests.Session()
        while True:
            with lock:
                i = state["next"]
                state["next"] += 1
            due = start_at + i / rate
            if i >= total or time.time() > start_at + duration:
                return
            wait = due - time.time()
            if wait > 0:
                time.sleep(wait)
            order_id, refund_id = str(base + i), str(base + 10**7 + i)
            fee = fees[i % len(fees)]
            fake.add_order(order_id, status=40, items=[(9001, "T-shirt", 1, fee)])
            fake.add_refund(refund_id, order_id=order_id, fee=fee, buyer_open_id=f"buyer-{i % 500}")
            body = encrypt_message(
                json.dumps(fake.envelope(refund_id), ensure_ascii=False),
                message_key=fake.message_key,
            )
            t0 = time.time()
            try:
                response = session.post(
                    push_url,
                    data=body.encode("ascii"),
                    headers={"Content-Type": "text/plain;charset=utf-8"},
                    timeout=3.0,
                )
                key = str(response.status_code)
            except requests.RequestException:
                key = "error"
            with lock:
                statuses[key] += 1
                answers.append(time.time() - t0)
                pushed_at[refund_id] = t0

    pool = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
    for th in pool:
        th.start()
    for th in pool:
        th.join()
    return {
        "started": start_at,
        "ended": time.time(),
        "sent": sum(statuses.values()),
        "statuses": dict(statuses),
        "push_answer_p50_ms": percentile(answers, 50) * 1000,
        "push_answer_p99_ms": percentile(answers, 99) * 1000,
        "pushed_at": pushed_at,
    }


def kuaishou_figures(*, fake: Any, shop: Any, sent: dict[str, Any]) -> dict[str, Any]:
    from strategies.models import AfterSaleRequest

    pushed_at: dict[str, float] = sent.pop("pushed_at")
    rows = list(
        AfterSaleRequest.objects.filter(shop=shop).values_list(
            "aftersale_id", "status", "decision__executed_at"
        )
    )
    window = sent["ended"] - sent["started"]
    with fake.lock:
        approved_at = dict(fake.approved_at)
        approvals = len(fake.approvals)
    to_approval = [
        approved_at[rid] - pushed for rid, pushed in pushed_at.items() if rid in approved_at
    ]
    executed = [at.timestamp() for _, status, at in rows if status == "executed" and at]
    in_window = sum(1 for t in executed if sent["started"] <= t <= sent["ended"])
    last = max(executed, default=sent["ended"])
    return {
        "stored": len(rows),
        "by_status": dict(Counter(r[1] for r in rows)),
        "approvals_on_platform": approvals,
        "approved_once": approvals == len(approved_at),
        "window_s": round(window, 2),
        "intake_per_s": sent["statuses"].get("200", 0) / window if window else 0.0,
        "executed_in_window_per_s": in_window / window if window else 0.0,
        "executed_end_to_end_per_s": len(executed) / max(last - sent["started"], 1e-9),
        "push_to_approval_p50_ms": percentile(to_approval, 50) * 1000,
        "push_to_approval_p99_ms": percentile(to_approval, 99) * 1000,
        "platform_calls": len(fake.calls),
    }


def wait_kuaishou(*, shop: Any, expected: int, timeout: float) -> float:
    """Until ``expected`` requests of the shop are stored and none is in flight."""
    from strategies.models import AfterSaleRequest

    t0 = time.time()
    rows = AfterSaleRequest.objects.filter(shop=shop)
    while time.time() - t0 < timeout and (
        rows.count() < expected or rows.filter(status__in=["received", "approved"]).exists()
    ):
        time.sleep(0.5)
    return time.time() - t0


def web_pool(args: argparse.Namespace) -> str:
    if args.web_threads:
        return f"{args.web_workers}x{args.web_threads} gthread"
    return f"{args.web_workers} sync"


def run_broker(
    args: argparse.Namespace, broker: str, url: str, shops, dispatch: str = "celery"
) -> dict[str, Any]:
    """Both phases on one broker: its own API pool and worker, started and stopped here."""
    from bench.chaos.core import broker as pointing_at

    extra = {
        "CONN_MAX_AGE": "60",
        "ATOM_EXECUTE_IN_DECISION_TASK": "true" if args.execute_in_decision == "on" else "false",
        "ATOM_DISPATCH": dispatch,
    }
    probes = RESULTS / "cpu-probes" / broker
    shutil.rmtree(probes, ignore_errors=True)
    probes.mkdir(parents=True)
    env = bench_environ(database_url=args.database_url, broker_url=url, **extra)
    env[cpu.PROBE_DIR_ENV] = str(probes)
    port = free_port()
    logs = RESULTS / "logs"
    web = Server(
        "gunicorn",
        [
            bin_path("gunicorn"),
            "atomsite.wsgi:application",
            # Probes of the CPU of each stage (bench only): bench/pipeline/cpu.py.
            "--config=python:bench.pipeline.gunicorn_probe",
            f"--bind=127.0.0.1:{port}",
            f"--workers={args.web_workers}",
            *(
                ["--worker-class=gthread", f"--threads={args.web_threads}"]
                if args.web_threads
                else ["--worker-class=sync"]
            ),
            "--keep-alive=30",
            "--backlog=2048",
        ],
        env,
        logs / f"pipeline-gunicorn-{broker}.log",
    )
    aux = None
    if dispatch == "postgres":
        # The deciders take the place of the Celery pool; one Celery process carries retries.
        worker = Server(
            "deciders",
            [
                sys.executable,
                "-m",
                "bench.pipeline.cpu",
                "deciders",
                f"--processes={args.celery_concurrency}",
            ],
            env,
            logs / f"pipeline-deciders-{broker}.log",
        )
        aux = celery_worker(
            env=env, concurrency=1, pool="prefork", log=logs / f"pipeline-celery-{broker}.log"
        )
    else:
        worker = celery_worker(
            env=env,
            concurrency=args.celery_concurrency,
            pool=args.celery_pool,
            log=logs / f"pipeline-celery-{broker}.log",
        )
        # The same worker, started through the probes' entry point.
        worker.argv = [sys.executable, "-m", "bench.pipeline.cpu", *worker.argv]
    api = f"http://127.0.0.1:{port}/api/v1/aftersales"
    phases = {p.strip() for p in args.phases.split(",")}
    if args.workload == "kuaishou":
        phases = set()
    results: dict[str, Any] = {"broker": broker}
    flush_redis(url)
    fake = ks_shop = None
    if args.workload in ("kuaishou", "both"):
        from strategies.platforms.kuaishou.fake import FakeKuaishou

        # A fake of its own per broker: its approvals count this broker's run only.
        fake = FakeKuaishou().start()
        ks_shop = seed_kuaishou(fake)
        from django.db import connections

        connections.close_all()
    try:
        with pointing_at(url):
            web.start()
            worker.start()
            if aux is not None:
                aux.start()
                worker.aux = aux  # type: ignore[attr-defined]  # its CPU counts too
            wait_for_port(port)
            wait_worker_ready()
            print(
                f"[{broker}] gunicorn {web_pool(args)} on :{port}; "
                f"celery {args.celery_pool} x{args.celery_concurrency}; {args.shops} shops; "
                f"execute in decision {args.execute_in_decision}",
                flush=True,
            )
            if "1" in phases:
                results["throughput"] = throughput_phase(args, broker, url, api, shops, web, worker)
                flush_redis(url)
            if "2" in phases:
                print(
                    f"[{broker}] phase 2: {args.latency_rate:.0f}/s offered for "
                    f"{args.latency_duration:.0f} s (python sender) ...",
                    flush=True,
                )
                run = f"R{time.time_ns() % 10**6}"
                sent = offer(
                    url=api,
                    shops=shops,
                    prefix=f"{run}B",
                    rate=args.latency_rate,
                    duration=args.latency_duration,
                    senders=1,
                    threads=args.threads,
                )
                drained = wait_final(f"{run}B", timeout=300)
                figures = phase_figures(f"{run}B", sent)
                results["latency"] = {**sent, **figures, "drain_s": round(drained, 1)}
                flush_redis(url)
            if fake is not None:
                duration = args.kuaishou_duration or args.duration
                print(
                    f"[{broker}] kuaishou: {args.kuaishou_rate:.0f} pushes/s offered for "
                    f"{duration:.0f} s through the fake Kuaishou on {fake.url} ...",
                    flush=True,
                )
                sent = push_kuaishou(
                    fake=fake,
                    push_url=f"http://127.0.0.1:{port}/platforms/kuaishou/push/{fake.app_key}",
                    rate=args.kuaishou_rate,
                    duration=duration,
                    threads=args.kuaishou_threads,
                )
                drained = wait_kuaishou(
                    shop=ks_shop, expected=sent["statuses"].get("200", 0), timeout=300
                )
                figures = kuaishou_figures(fake=fake, shop=ks_shop, sent=sent)
                results["kuaishou"] = {**sent, **figures, "drain_s": round(drained, 1)}
    finally:
        worker.stop()
        if aux is not None:
            aux.stop()
        web.stop()
        if fake is not None:
            fake.stop()
        flush_redis(url)
    return results


def throughput_phase(args, broker: str, url: str, api: str, shops, web, worker) -> dict[str, Any]:
    """Phase 1 with the CPU of every process group read before it and after its drain."""
    run = f"R{time.time_ns() % 10**6}"
    prefix = f"{run}A"
    presign_cpu = 0.0
    if args.load_generator == "wrk":
        requests_file = RESULTS / f"pipeline-requests-{broker}.tsv"
        count = int(args.rate * args.duration)
        t0 = time.process_time()
        wrk.write_requests(
            requests_file,
            shops=shops,
            prefix=prefix,
            count=count,
            start_at=time.time() + 1.0,
            duration=args.duration,
        )
        presign_cpu = time.process_time() - t0
        print(
            f"[{broker}] phase 1: wrk, {args.wrk_threads} threads x {args.wrk_connections} "
            f"connections, closed loop, up to {count} requests signed beforehand "
            f"({presign_cpu:.1f} s of CPU), for {args.duration:.0f} s ...",
            flush=True,
        )
    else:
        print(
            f"[{broker}] phase 1: python sender, {args.rate:.0f}/s offered for "
            f"{args.duration:.0f} s ...",
            flush=True,
        )
    probe_dir = Path(worker.env[cpu.PROBE_DIR_ENV])

    aux = getattr(worker, "aux", None)

    def groups() -> dict[str, list[int]]:
        found = cpu.groups_now(
            web_pid=web.pid, worker_pid=worker.pid, database_url=args.database_url, broker_url=url
        )
        if aux is not None:  # the Celery worker beside the deciders (retries only)
            found["celery_beside_deciders"] = [p.pid for p in cpu.tree(aux.pid)]
        return found

    sampler, probes_before = cpu.Sampler(groups).start(), cpu.read_probes(probe_dir)
    if args.load_generator == "wrk":
        sent = wrk.run_wrk(
            url=api,
            requests_file=requests_file,
            duration=args.duration,
            threads=args.wrk_threads,
            connections=args.wrk_connections,
            log=RESULTS / "logs" / f"pipeline-wrk-{broker}.log",
        )
    else:
        sent = offer(
            url=api,
            shops=shops,
            prefix=prefix,
            rate=args.rate,
            duration=args.duration,
            senders=args.senders,
            threads=args.threads,
        )
        sent["load_generator"] = "python"
    drained = wait_final(prefix, timeout=300)
    time.sleep(0.6)  # the probes flush every 0.25 s
    by_group, probes_after = sampler.stop(), cpu.read_probes(probe_dir)
    figures = phase_figures(prefix, sent)
    by_group["load_generator"] = by_group.pop("reaped_children")
    final = sum(figures["by_status"].get(s, 0) for s in FINAL)
    table = cpu.budget(by_group, probes_before, probes_after, requests=final)
    return {
        **sent,
        **figures,
        "drain_s": round(drained, 1),
        "cpu_seconds_by_group": by_group,
        "cpu_ms_per_request": dict(table),
        "cpu_requests": final,
        "presign_cpu_s": presign_cpu,
    }


def side_by_side(results: dict[str, Any]) -> None:
    """The workloads side by side: what came in, what was carried out, and how long it took
    (generic: intake to executed on the simulated gateway; Kuaishou: the push leaving to the
    approval reaching the fake, the fetch of the refund and its order included)."""
    side = []
    for name in ("throughput", "latency"):
        if name in results:
            r = results[name]
            side.append(
                [
                    f"generic ({name})",
                    r["sent"],
                    r["sent"] / r["window_s"],
                    r["done_in_window_per_s"],
                    r["to_executed_p50_ms"],
                    r["to_executed_p99_ms"],
                ]
            )
    if "kuaishou" in results:
        r = results["kuaishou"]
        side.append(
            [
                "kuaishou (pushes)",
                r["sent"],
                r["intake_per_s"],
                r["executed_in_window_per_s"],
                r["push_to_approval_p50_ms"],
                r["push_to_approval_p99_ms"],
            ]
        )
        print(
            f"kuaishou: push answers {r['statuses']} (p99 {r['push_answer_p99_ms']:.1f} ms); "
            f"requests {r['by_status']}; {r['approvals_on_platform']} approvals on the fake "
            f"(each refund once: {r['approved_once']}); {r['platform_calls']} platform calls; "
            f"executed end to end {r['executed_end_to_end_per_s']:.1f}/s; drain {r['drain_s']} s"
        )
    if side:
        print()
        print_table(["workload", "sent", "intake/s", "executed/s", "p50 ms", "p99 ms"], side)


def print_broker(results: dict[str, Any], pgbench: dict[int, float]) -> dict[str, Any]:
    broker = results["broker"]
    print(f"\n== broker: {broker} ==")
    rows: list[list[Any]] = []
    for name in ("throughput", "latency"):
        r = results.get(name)
        if not r:
            continue
        rows.append(
            [
                name,
                r.get("load_generator", "python"),
                r["sent"],
                r["sent"] / r["window_s"],
                r["done_in_window_per_s"],
                r["end_to_end_per_s"],
                r["intake_p99_ms"],
                r["to_decision_p50_ms"],
                r["to_decision_p99_ms"],
                r["drain_s"],
            ]
        )
    if rows:
        print_table(
            [
                "phase",
                "load generator",
                "sent",
                "sent/s",
                "done/s in window",
                "done/s end-to-end",
                "intake p99 ms",
                "->decision p50 ms",
                "->decision p99 ms",
                "drain s",
            ],
            rows,
        )
    for name in ("throughput", "latency"):
        if name in results:
            r = results[name]
            print(f"{name}: HTTP {r['statuses']}; requests {r['by_status']}")
    side_by_side(results)
    if "throughput" in results:
        r = results["throughput"]
        g = r["cpu_seconds_by_group"]
        print(
            f"\nCPU budget per request, throughput phase ({r['cpu_requests']} requests final, "
            f"{g['seconds']:.1f} s from its start to the end of its drain, "
            f"{g['machine']:.1f} CPU-s used on the machine; load generator: "
            f"{r['load_generator']}):"
        )
        width = max(len(k) for k in r["cpu_ms_per_request"])
        for where, ms in r["cpu_ms_per_request"].items():
            print(f"  {where.ljust(width)}  {ms:6.2f} ms")
    targets: dict[str, Any] = {}
    if "throughput" in results:
        value = results["throughput"]["done_in_window_per_s"]
        targets["executed_per_s"] = {
            "value": round(value, 1),
            "target": f">= {TARGET_EXECUTED_PER_S:.0f}",
            "met": value >= TARGET_EXECUTED_PER_S,
        }
    if "latency" in results:
        value = results["latency"]["to_decision_p99_ms"]
        targets["p99_to_decision_ms_at_150"] = {
            "value": round(value, 1),
            "target": f"<= {TARGET_P99_MS:.0f}",
            "met": value <= TARGET_P99_MS,
        }
    print()
    tps = pgbench.get(PGBENCH_CLIENTS)
    beside = f"pgbench TPC-B x{PGBENCH_CLIENTS}: {tps:,.0f} tps" if tps else "pgbench: not run"
    print(f"goal rows on {broker} (same run's {beside}):")
    for name, t in targets.items():
        print(f"{name}: {t['value']} (target {t['target']}): {verdict(t['met'])}")
    results["targets"] = targets
    return targets


def main() -> int:
    args = parse_args()
    # SIGTERM unwinds like Ctrl-C, so the servers started below are stopped.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    brokers = {"redis": args.broker_url, "rabbitmq": args.rabbitmq_url}
    chosen = ["redis", "rabbitmq"] if args.broker == "both" else [args.broker]
    if "rabbitmq" in chosen:
        ensure_rabbitmq_vhost(args.rabbitmq_url)
    setup_django(database_url=args.database_url, broker_url=brokers[chosen[0]])
    shops = reset_and_seed(args.shops)
    from django.db import connections

    connections.close_all()
    print(
        f"load generator of phase 1: {args.load_generator}"
        + ("" if wrk.wrk_path() else " (wrk is not installed: apt-get install -y wrk)"),
        flush=True,
    )
    results: dict[str, Any] = {
        "settings": {k: v for k, v in vars(args).items() if k not in ("database_url", "json")},
        "brokers": {},
    }
    dispatches = ["celery", "postgres"] if args.dispatch == "both" else [args.dispatch]
    runs = []
    for broker in chosen:
        for dispatch in dispatches:
            # The run's name: the broker alone for Celery's dispatch (today's verdict lines).
            name = broker if dispatch == "celery" else f"{broker}+pg-dispatch"
            runs.append(name)
            with autoanalyze(args.database_url):  # as autovacuum would, where the server has none
                results["brokers"][name] = run_broker(
                    args, broker, brokers[broker], shops, dispatch
                )
            results["brokers"][name]["broker"] = name
            reset_and_seed(args.shops)  # the next run starts from the same empty tables
            connections.close_all()
    pgbench: dict[int, float] = {}
    if not args.no_pgbench:
        print(f"pgbench TPC-B -s 10, {PGBENCH_CLIENTS} clients, {args.pgbench_seconds} s ...")
        pgbench = pgbench_tps(
            database_url=args.database_url,
            clients=[PGBENCH_CLIENTS],
            seconds=args.pgbench_seconds,
        )
    results["pgbench_tps"] = pgbench
    for name in runs:
        print_broker(results["brokers"][name], pgbench)
    path = write_json("pipeline", results, args.json)
    print(f"\nwritten to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
