"""The chaos run, shared by ``bench/chaos/run.py`` (5,000 requests) and ``tests/test_chaos.py``
(a few hundred, in CI).

Requests go in through the intake service (``aftersale_receive``: stored in one transaction, the
decision task published after COMMIT) from a few feeder threads, into a real Celery worker pool
over a Redis server of the run's OWN (never the machine's shared one), and out through a real
local HTTP gateway that records every call. While they flow, the whole worker (main process and
pool children) is SIGKILLed and replaced, and the Redis server is SIGKILLed (nothing saved: every
queued and unacked message is lost) and started again. A sweeper thread calls the sweeper service
every second with a short threshold and heals what was lost.

At the end, from the database and the gateway's own records: every request decided exactly once,
every approval executed exactly once (exactly one approving call per idempotency key), no ledger
over its cap, each ledger equal to the sum of its approvals, and the approvals' total equal to the
ledgers' total. ``ChaosReport.violations`` lists every broken invariant (empty when all hold).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

# Worker settings for the run: short visibility timeout, quick retries, and the shortest lease
# a worker accepts with the test gateway's 1 s timeout (2 x 1 s + 2 s: strategies/checks.py).
CHAOS_WORKER_ENV = {
    "CELERY_VISIBILITY_TIMEOUT": "15",
    "CELERY_TASK_TIME_LIMIT": "10",
    "CELERY_TASK_SOFT_TIME_LIMIT": "8",
    "ATOM_RETRY_BASE_DELAY_SECONDS": "0.2",
    "ATOM_RETRY_MAX_DELAY_SECONDS": "1",
    "ATOM_EXECUTION_LEASE_SECONDS": "4",
    "ATOM_SWEEP_AFTER_SECONDS": "10",
}
FINAL = ("executed", "manual_review", "failed")


class Worker(Protocol):
    def kill(self) -> None: ...

    def stop(self) -> None: ...


class WorkerAndDeciders:
    """ATOM_DISPATCH=postgres: the deciders and the Celery worker beside them (retries), killed
    and stopped together as one "worker"."""

    def __init__(self, deciders: Worker, celery: Worker) -> None:
        self.deciders = deciders
        self.celery = celery

    def kill(self) -> None:
        self.deciders.kill()
        self.celery.kill()

    def stop(self) -> None:
        self.deciders.stop()
        self.celery.stop()


class Gateway(Protocol):
    calls: list[Any]  # .idempotency_key, .status (0 until answered)
    _lock: threading.Lock


@dataclass
class ChaosConfig:
    count: int = 5000
    kills: int = 4  # SIGKILLs of the whole worker (each replaced by a fresh one)
    redis_restarts: int = 2
    shops: int = 3
    feeders: int = 3
    rate: float | None = None  # requests/s offered by the feeders together; None: flat out
    sweep_every: float = 1.0
    sweep_after: float = 10.0  # above the normal queueing delay, or it floods the queue
    redis_down: float = 1.0  # seconds the broker stays down
    timeout: float = 600.0  # for everything to become final after the last request
    seed: int = 2026


@dataclass
class ChaosReport:
    config: ChaosConfig
    seconds: float = 0.0
    stored: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    decisions: int = 0
    approved: int = 0
    manual_review: int = 0
    executed: int = 0
    gateway_calls: int = 0
    gateway_approving_calls: int = 0  # 2xx: the platform moved money
    gateway_repeat_calls: int = 0  # 409: a retry the platform recognised
    keys_approved_twice: int = 0
    approvals_never_paid: int = 0
    ledgers: int = 0
    turned_away_at_cap: int = 0  # decisions that met a full cap on the way
    approved_total: str = "0.00"
    ledgers_total: str = "0.00"
    worker_kills: int = 0
    redis_restarts: int = 0
    sweeps: int = 0
    swept_decide: int = 0
    swept_execute: int = 0
    publish_errors: int = 0
    violations: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        data["config"] = dict(self.config.__dict__)
        return data

    def lines(self) -> list[str]:
        c = self.config
        return [
            f"{self.stored} requests stored (of {c.count}) in {self.seconds:.1f} s; "
            f"by status {self.by_status}",
            f"{self.decisions} decisions: {self.approved} approved, {self.manual_review} "
            f"manual review; {self.executed} executed",
            f"gateway: {self.gateway_calls} calls, {self.gateway_approving_calls} approving (2xx),"
            f" {self.gateway_repeat_calls} repeats answered 409; keys approved twice: "
            f"{self.keys_approved_twice}; approvals never paid: {self.approvals_never_paid}",
            f"ledgers: {self.ledgers}; {self.turned_away_at_cap} decisions met a full cap; "
            f"approved total {self.approved_total} = ledgers total {self.ledgers_total}",
            f"chaos: {self.worker_kills} worker SIGKILLs, {self.redis_restarts} Redis restarts; "
            f"sweeper: {self.sweeps} runs re-enqueued {self.swept_decide} to decide and "
            f"{self.swept_execute} to execute; {self.publish_errors} publish errors",
            "violations: " + ("none" if not self.violations else "; ".join(self.violations)),
        ]


# --- a Redis server of our own --------------------------------------------------------------


class RedisServer:
    """``redis-server`` on its own port, no persistence: a SIGKILL loses everything queued."""

    def __init__(self, port: int, log: Path | None = None) -> None:
        self.port = port
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, *, timeout: float = 10.0) -> RedisServer:
        import redis

        if self.log:
            self.log.parent.mkdir(parents=True, exist_ok=True)
        out = self.log.open("ab") if self.log else subprocess.DEVNULL
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        if not isinstance(out, int):
            out.close()
        client = redis.Redis(host="127.0.0.1", port=self.port)
        deadline = time.monotonic() + timeout
        try:
            while True:
                try:
                    if client.ping():
                        return self
                except redis.ConnectionError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
        finally:
            client.close()

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


@contextlib.contextmanager
def broker(url: str) -> Iterator[None]:
    """Points this process's Celery app (the intake's and the sweeper's publishes) at ``url``
    for the block, then back."""
    from celery import current_app
    from kombu import pools

    conf = current_app.conf

    def reset() -> None:
        current_app._pool = None
        current_app.amqp._producer_pool = None
        pools.reset()

    saved = conf.broker_url, conf.broker_write_url, conf.broker_read_url
    # Celery reads CELERY_BROKER_URL from the environment before its own configuration.
    saved_env = os.environ.get("CELERY_BROKER_URL")
    os.environ["CELERY_BROKER_URL"] = url
    conf.broker_url = conf.broker_write_url = conf.broker_read_url = url
    reset()
    try:
        yield
    finally:
        conf.broker_url, conf.broker_write_url, conf.broker_read_url = saved
        if saved_env is None:
            os.environ.pop("CELERY_BROKER_URL", None)
        else:
            os.environ["CELERY_BROKER_URL"] = saved_env
        reset()


# --- data -----------------------------------------------------------------------------------


def seed(config: ChaosConfig) -> list[tuple[Any, Any]]:
    """``config.shops`` shops, each with strategies in every scenario whose daily caps are sized
    so they fill during the run (a cap that turns requests away proves it holds), the second of
    post-shipment refund with a per-buyer limit: [(shop, traffic generator)]."""
    from strategies.demo.traffic import TrafficGenerator
    from strategies.models import SCENARIO_ORDER, Shop, Strategy

    per_shop = max(1, config.count // config.shops)
    # Requests average about 40.00, about half would be approved: caps fill part-way through.
    cap = Decimal(per_shop * 4).quantize(Decimal("0.01"))
    out = []
    for i in range(config.shops):
        code = f"chaos-{i}"
        shop = Shop.objects.create(code=code, name=f"Chaos {i}", api_secret=f"chaos-secret-{i}")
        for position, scenario in enumerate(SCENARIO_ORDER, start=1):
            Strategy.objects.create(
                shop=shop,
                scenario=scenario,
                name=f"Chaos {scenario}",
                status="active",
                position=position,
                daily_cap=cap,
            )
        Strategy.objects.create(
            shop=shop,
            scenario="post_shipment_refund",
            name="Chaos second: regulars limited",
            status="active",
            position=10,
            daily_cap=cap,
            max_per_buyer_30d=5,
        )
        out.append(
            (shop, TrafficGenerator(seed=config.seed + i, id_prefix=f"C{i}-", retry_rate=0.0))
        )
    return out


# --- the run --------------------------------------------------------------------------------


def run_chaos(
    *,
    config: ChaosConfig,
    redis: RedisServer,
    gateway: Gateway,
    start_worker: Callable[[], Worker],
    log: Callable[[str], None] = print,
) -> ChaosReport:
    """Runs the whole scenario; the Django database and ``redis`` must be ready, ``start_worker``
    returns a started, ready worker consuming from ``redis``."""
    from django.db import connection

    from strategies.pipeline.sweep import requests_sweep_stuck
    from strategies.platforms.generic.intake import aftersale_receive

    report = ChaosReport(config=config)
    lock = threading.Lock()
    started = time.monotonic()
    shops = seed(config)
    bodies = [None] * config.count  # generated up front: generators are not thread-safe
    now = dt.datetime.now(dt.UTC)
    for i in range(config.count):
        shop, gen = shops[i % len(shops)]
        bodies[i] = (shop, json.loads(gen.next_body(now)))
    fed = [0]
    stop_sweeping = threading.Event()

    def feed(index: int) -> None:
        try:
            for i in range(index, config.count, config.feeders):
                if config.rate:  # request i leaves at i / rate
                    delay = started_feed + i / config.rate - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                shop, payload = bodies[i]
                aftersale_receive(shop=shop, payload=payload)
                with lock:
                    fed[0] += 1
        finally:
            connection.close()

    def sweep() -> None:
        try:
            while not stop_sweeping.wait(config.sweep_every):
                try:
                    result = requests_sweep_stuck(older_than=config.sweep_after)
                except Exception as exc:  # the broker is down: next time
                    log(f"  sweeper: {type(exc).__name__}: {exc}")
                    with lock:
                        report.publish_errors += 1
                    continue
                with lock:
                    report.sweeps += 1
                    report.swept_decide += len(result.decide)
                    report.swept_execute += len(result.execute)
        finally:
            connection.close()

    # The chaos schedule, by progress of the feed: kills and restarts interleaved.
    events: list[tuple[float, str]] = [
        ((k + 1) / (config.kills + 1), "kill") for k in range(config.kills)
    ] + [((k + 0.5) / (config.redis_restarts + 0.5), "redis") for k in range(config.redis_restarts)]
    events.sort()

    worker = start_worker()
    started_feed = time.monotonic()
    feeders = [threading.Thread(target=feed, args=(i,)) for i in range(config.feeders)]
    sweeper = threading.Thread(target=sweep)
    for t in [*feeders, sweeper]:
        t.start()
    try:
        for fraction, kind in events:
            while fed[0] < fraction * config.count and any(t.is_alive() for t in feeders):
                time.sleep(0.02)
            if kind == "kill":
                log(f"  [{fed[0]}/{config.count} fed] SIGKILL the worker and its pool")
                worker.kill()
                report.worker_kills += 1
                worker = start_worker()
            else:
                log(f"  [{fed[0]}/{config.count} fed] SIGKILL Redis (all messages lost)")
                redis.kill()
                time.sleep(config.redis_down)
                redis.start()
                report.redis_restarts += 1
                log("  Redis is back, empty")
        for t in feeders:
            t.join()
        log(f"  all {config.count} fed after {time.monotonic() - started:.1f} s; draining")
        pending = _pending_count()
        deadline = time.monotonic() + config.timeout
        while pending and time.monotonic() < deadline:
            time.sleep(0.5)
            pending = _pending_count()
        if pending:
            log(f"  {pending} requests still in flight after {config.timeout:.0f} s")
    finally:
        stop_sweeping.set()
        sweeper.join()
        worker.stop()
    report.seconds = time.monotonic() - started
    check(report, gateway)
    return report


def _pending_count() -> int:
    from strategies.models import AfterSaleRequest

    return AfterSaleRequest.objects.exclude(status__in=FINAL).count()


def check(report: ChaosReport, gateway: Gateway) -> None:
    """Fills the counts and ``violations`` from the database and the gateway's records."""
    from django.db.models import Count, Sum

    from strategies.models import AfterSaleRequest, DailyLedger, Decision

    v = report.violations
    requests = AfterSaleRequest.objects.all()
    report.stored = requests.count()
    report.by_status = dict(Counter(requests.values_list("status", flat=True)))
    if report.stored != report.config.count:
        v.append(f"{report.stored} requests stored, {report.config.count} sent")
    in_flight = requests.exclude(status__in=FINAL).count()
    if in_flight:
        v.append(f"{in_flight} requests never reached a final state")

    decisions = Decision.objects.all()
    report.decisions = decisions.count()
    undecided = requests.filter(decision__isnull=True).count()
    if undecided:
        v.append(f"{undecided} requests have no decision")
    twice = (
        decisions.values("request_id").annotate(n=Count("id")).filter(n__gt=1).count()
    )  # the one-to-one forbids it; checked anyway
    if twice:
        v.append(f"{twice} requests decided more than once")
    approved = decisions.filter(outcome="approved")
    report.approved = approved.count()
    report.manual_review = decisions.filter(outcome="manual_review").count()
    report.executed = approved.filter(executed_at__isnull=False).count()
    if report.executed != report.approved:
        v.append(f"{report.approved - report.executed} approvals not executed")
    mismatched = (
        decisions.exclude(outcome="approved", request__status__in=["executed", "failed"])
        .exclude(outcome="manual_review", request__status="manual_review")
        .count()
    )
    if mismatched:
        v.append(f"{mismatched} decisions disagree with their request's status")

    with gateway._lock:
        calls = [(c.idempotency_key, c.status) for c in gateway.calls]
    report.gateway_calls = len(calls)
    paid = Counter(key for key, status in calls if 200 <= status < 300)
    report.gateway_approving_calls = sum(paid.values())
    report.gateway_repeat_calls = sum(1 for _, status in calls if status == 409)
    report.keys_approved_twice = sum(1 for n in paid.values() if n > 1)
    if report.keys_approved_twice:
        v.append(f"{report.keys_approved_twice} approvals paid more than once")
    keys = {str(k) for k in approved.values_list("idempotency_key", flat=True)}
    report.approvals_never_paid = len(keys - set(paid))
    if report.approvals_never_paid:
        v.append(f"{report.approvals_never_paid} approvals never reached the gateway")
    strangers = set(paid) - keys
    if strangers:
        v.append(f"{len(strangers)} gateway payments for no approval")

    # No refusal from this gateway: no reservation is ever released, each ledger holds
    # exactly its approvals.
    ledgers = DailyLedger.objects.annotate(
        approvals=Sum("decisions__amount", default=0), n=Count("decisions")
    ).values_list("id", "consumed", "approved_count", "strategy__daily_cap", "approvals", "n")
    report.ledgers = 0
    ledgers_total = Decimal("0.00")
    for ledger_id, consumed, count, cap, approvals, n in ledgers:
        report.ledgers += 1
        ledgers_total += consumed
        if consumed > cap:
            v.append(f"ledger {ledger_id}: {consumed} over its cap {cap}")
        if consumed != approvals or count != n:
            v.append(
                f"ledger {ledger_id}: consumed {consumed} ({count}) but its approvals sum "
                f"{approvals} ({n})"
            )
    report.turned_away_at_cap = decisions.filter(
        explanations__contains=[{"code": "daily_cap_reached"}]
    ).count()
    approved_total = approved.aggregate(total=Sum("amount", default=0))["total"]
    report.approved_total = f"{Decimal(approved_total):.2f}"
    report.ledgers_total = f"{ledgers_total:.2f}"
    if Decimal(approved_total) != ledgers_total:
        v.append(f"approvals total {approved_total} != ledgers total {ledgers_total}")
