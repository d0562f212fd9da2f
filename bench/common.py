"""Helpers shared by the decision, pipeline and chaos benches.

Each bench runs on its OWN PostgreSQL database (created and migrated at start) and its own Redis
db, so it never disturbs the tests or the demo. Benches report; they never assert times.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
import os
import platform
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
DEFAULT_BROKER = "redis://127.0.0.1:6379/8"
# RabbitMQ: a vhost of the benches' own, so a purge never touches another user's queues.
DEFAULT_RABBITMQ = "amqp://guest:guest@127.0.0.1:5672/atom_bench"
BIG_CAP = Decimal("999999999999.99")  # the largest daily cap MONEY holds: never reached


def database_url(name: str) -> str:
    return os.environ.get("BENCH_DATABASE_URL") or f"postgres://postgres@127.0.0.1:5432/{name}"


def bench_environ(*, database_url: str, broker_url: str, **extra: str) -> dict[str, str]:
    """The environment of a bench process and of the servers it starts."""
    env = {
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": broker_url,
        "SECRET_KEY": "bench-only-secret",
        "DEBUG": "false",
        "ALLOWED_HOSTS": "*",
        "SECURE_SSL_REDIRECT": "false",
        "SESSION_COOKIE_SECURE": "false",
        "CSRF_COOKIE_SECURE": "false",
        "DJANGO_SETTINGS_MODULE": "atomsite.settings",
        "LOG_LEVEL": "WARNING",
        "ATOM_GATEWAY": "simulated",
    }
    env.update(extra)
    return env


def setup_django(*, database_url: str, broker_url: str, **extra: str) -> None:
    """Points this process at the bench database and broker, creates and migrates the database."""
    os.environ.update(bench_environ(database_url=database_url, broker_url=broker_url, **extra))
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    ensure_database(database_url)
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0, interactive=False)


def ensure_database(url: str, *, recreate: bool = False) -> None:
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin_url = parts._replace(path="/postgres").geturl()
    with psycopg.connect(admin_url, autocommit=True) as conn:
        if recreate:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')


def analyze(url: str) -> bool:
    """ANALYZEs the database at ``url`` if its server runs without autovacuum (the test
    machines' configuration does), as autovacuum would: without statistics for tables a bench
    fills from empty the planner picks plans no production server would (one read scanned a
    shop's every approval, 558 buffers instead of 7). False if autovacuum is on."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SHOW autovacuum").fetchone()
        if row is not None and row[0] == "on":
            return False
        conn.execute("ANALYZE")
    return True


@contextlib.contextmanager
def autoanalyze(url: str, *, every: float = 15.0) -> Iterator[None]:
    """``analyze`` now and every ``every`` seconds until the block ends (a bench whose tables
    grow while it measures); nothing if the server runs autovacuum itself."""
    if not analyze(url):
        yield
        return
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(every):
            analyze(url)

    thread = threading.Thread(target=loop, name="autoanalyze", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def flush_redis(url: str) -> None:
    """Empties the bench's broker: its Redis db, or on RabbitMQ (amqp://, give the bench a vhost
    of its own) the Celery queue."""
    if url.startswith(("amqp://", "pyamqp://")):
        from kombu import Connection

        with Connection(url) as conn, conn.channel() as channel:
            # As Celery declares it (a fresh vhost gets the same queue the worker expects).
            channel.queue_declare("celery", durable=True, auto_delete=False)
            channel.queue_purge("celery")
        return
    import redis

    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
    finally:
        client.close()


def ensure_rabbitmq_vhost(url: str) -> None:
    """Creates the URL's vhost (and the user's permissions on it) with ``rabbitmqctl`` when it
    does not exist yet; a broker that cannot be reached is reported at once."""
    from kombu import Connection

    try:
        with Connection(url, connect_timeout=3) as conn:
            conn.ensure_connection(max_retries=1)
            return
    except Exception as exc:  # access refused on a missing vhost, or nothing listening
        first = exc
    parts = urlsplit(url)
    vhost = parts.path[1:] or "/"
    user = parts.username or "guest"
    try:
        subprocess.run(["rabbitmqctl", "add_vhost", vhost], capture_output=True, check=False)
        subprocess.run(
            ["rabbitmqctl", "set_permissions", "-p", vhost, user, ".*", ".*", ".*"],
            capture_output=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError) as exc:
        raise SystemExit(
            f"RabbitMQ at {parts.hostname}:{parts.port or 5672} refused {url!r} ({first}) and "
            f"rabbitmqctl could not create vhost {vhost!r} ({exc}): start RabbitMQ "
            "(rabbitmq-server -detached) or pass --rabbitmq-url"
        ) from exc


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, *, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


# --- statistics and output ------------------------------------------------------------------


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for row in cells:
        print("  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)))


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return "-" if math.isnan(value) else f"{value:,.1f}"
    return str(value)


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        # Other processes on the machine skew the figures: the load when the bench ended.
        "loadavg": os.getloadavg(),
    }
    with contextlib.suppress(OSError):
        info["postgres"] = subprocess.run(
            ["psql", "--version"], capture_output=True, text=True, check=False
        ).stdout.strip()
    return info


def write_json(name: str, data: dict[str, Any], path: str | None = None) -> Path:
    target = Path(path) if path else RESULTS / f"{name}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "bench": name,
        "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        **data,
    }
    target.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    return target


def verdict(met: bool) -> str:
    return "MET" if met else "MISSED"


# --- pgbench --------------------------------------------------------------------------------


def pgbench_tps(
    *, database_url: str, clients: Sequence[int], seconds: int, scale: int = 10, jobs: int = 2
) -> dict[int, float]:
    """TPC-B (pgbench's default script) on a scratch database next to the bench's: tps by
    client count (``-c N -j min(jobs, N) -T seconds``, excluding connection time)."""
    parts = urlsplit(database_url)
    name = parts.path.lstrip("/") + "_pgbench"
    scratch = parts._replace(path=f"/{name}").geturl()
    ensure_database(scratch, recreate=True)
    conn_args = [
        "-h",
        parts.hostname or "127.0.0.1",
        "-p",
        str(parts.port or 5432),
        "-U",
        parts.username or "postgres",
    ]
    env = dict(os.environ)
    if parts.password:
        env["PGPASSWORD"] = parts.password
    subprocess.run(
        ["pgbench", *conn_args, "-i", "-q", "-s", str(scale), name],
        check=True,
        capture_output=True,
        env=env,
    )
    results: dict[int, float] = {}
    for n in clients:
        out = subprocess.run(
            [
                "pgbench",
                *conn_args,
                "-c",
                str(n),
                "-j",
                str(min(jobs, n)),
                "-T",
                str(seconds),
                name,
            ],
            check=True,
            capture_output=True,
            text=True,
            env=env,
        ).stdout
        results[n] = _parse_tps(out)
    ensure_database(scratch, recreate=True)  # leave it empty rather than 160 MB behind
    return results


def _parse_tps(output: str) -> float:
    for line in output.splitlines():
        line = line.strip()
        if line.startswith("tps =") and "without initial connection" in line:
            return float(line.split()[2])
    for line in output.splitlines():
        if line.strip().startswith("tps ="):
            return float(line.split()[2])
    raise ValueError(f"no tps in pgbench output:\n{output}")


# --- servers --------------------------------------------------------------------------------


class Server:
    """A subprocess in its own process group (so a kill takes its children too), its output in
    a log file."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log: Path) -> None:
        self.name = name
        self.argv = argv
        self.env = {**os.environ, **env}
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Server:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                self.argv,
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self, sig: int = 9) -> None:
        if not self.alive():
            return
        assert self.process is not None
        try:
            os.killpg(self.process.pid, sig)
        except ProcessLookupError:
            return
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, 9)
            self.process.wait(10)

    def stop(self) -> None:
        """SIGTERM (warm shutdown), SIGKILL if it takes more than 10 s."""
        self.kill(15)


def bin_path(name: str) -> str:
    return str(Path(sys.executable).with_name(name))


def celery_worker(
    *, env: dict[str, str], concurrency: int, log: Path, pool: str = "prefork"
) -> Server:
    hostname = f"bench-{os.getpid()}-{time.time_ns() % 10**6}@%h"
    return Server(
        "celery",
        [
            bin_path("celery"),
            "-A",
            "atomsite",
            "worker",
            f"--pool={pool}",
            f"--concurrency={concurrency}",
            f"--hostname={hostname}",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--loglevel=WARNING",
        ],
        env,
        log,
    )


def wait_worker_ready(*, timeout: float = 30.0) -> None:
    """Until some worker answers a control ping over the broker."""
    from celery import current_app

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if current_app.control.ping(timeout=0.5):
            return
    raise RuntimeError(f"no Celery worker answered within {timeout}s")
