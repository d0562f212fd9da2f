"""bench/pipeline's CPU budget per request: CPU time by process group over a phase, and inside
the API and worker processes the CPU of each stage (intake, publish, decide, execute).

Process groups are read with psutil (``cpu_times`` of each process, user + system), sampled
every 0.5 s from the start of a phase to the end of its drain (``Sampler``): the API pool
(gunicorn master and workers), the Celery worker's main process (receiving, QoS, handing to the
pool, acks) and its pool children, the PostgreSQL backends of the bench's database
(``pg_stat_activity``) and the server's background processes (WAL writer, checkpointer: shared
with every other database on the server), the broker server (the process listening on the
broker's port), and the load generator (wrk, or the Python senders: reaped children of the
bench, ``RUSAGE_CHILDREN``). Whatever else the machine's cores did in that time
(``psutil.cpu_times``) is reported as "rest of the machine".

The stages inside a process come from probes installed in the servers the bench starts (never in
production): wrappers that add the calling thread's CPU (``time.thread_time``, so the other
threads of a gthread worker do not count) to a per-process total, exclusive of nested probed
calls (a publish made inside a decision counts as publish), flushed to a JSON file a process.

    python -m bench.pipeline.cpu celery -A atomsite worker ...   # a worker with probes
    gunicorn -c bench/pipeline/gunicorn_probe.py atomsite.wsgi ... # an API pool with probes
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import resource
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psutil

# Where each probed process writes its totals (set by the bench for the servers it starts).
PROBE_DIR_ENV = "BENCH_CPU_PROBE_DIR"

# --- probes (inside the API and worker processes) -------------------------------------------

_totals: dict[str, list[float]] = {}  # stage -> [cpu seconds, calls]
_lock = threading.Lock()
_local = threading.local()


def _probe(stage: str, func: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        stack = getattr(_local, "stack", None)
        if stack is None:
            stack = _local.stack = []
        stack.append(0.0)  # CPU of the nested probed calls, excluded from this stage
        t0 = time.thread_time()
        try:
            return func(*args, **kwargs)
        finally:
            spent = time.thread_time() - t0
            nested = stack.pop()
            if stack:
                stack[-1] += spent
            with _lock:
                entry = _totals.setdefault(stage, [0.0, 0])
                entry[0] += spent - nested
                entry[1] += 1

    return wrapper


def _flusher(path: Path) -> None:
    while True:
        time.sleep(0.25)
        with _lock:
            data = {k: {"cpu_s": v[0], "calls": v[1]} for k, v in _totals.items()}
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"pid": os.getpid(), "stages": data}))
        tmp.replace(path)


def install(role: str) -> None:
    """Wraps the pipeline's stages in this process (after Django is set up)."""
    directory = os.environ.get(PROBE_DIR_ENV)
    if not directory:
        return
    from strategies.pipeline import decide, execute, publish

    publish.publish_now = _probe("publish", publish.publish_now)
    if role == "worker":
        decide.request_decide = _probe("decide", decide.request_decide)
        decide.request_claim_and_decide = _probe("decide", decide.request_claim_and_decide)
        execute.decision_execute = _probe("execute", execute.decision_execute)
    path = Path(directory) / f"{role}-{os.getpid()}.json"
    threading.Thread(target=_flusher, args=(path,), daemon=True).start()


def read_probes(directory: Path) -> dict[str, dict[str, float]]:
    """{role: {stage: cpu seconds}} summed over the processes' files, plus ``calls``."""
    out: dict[str, dict[str, float]] = {}
    for f in directory.glob("*.json"):
        with contextlib.suppress(OSError, ValueError):
            data = json.loads(f.read_text())
            role = f.name.split("-", 1)[0]
            for stage, v in data["stages"].items():
                bucket = out.setdefault(role, {})
                bucket[stage] = bucket.get(stage, 0.0) + v["cpu_s"]
                bucket[f"{stage}_calls"] = bucket.get(f"{stage}_calls", 0.0) + v["calls"]
    return out


def _worker_main() -> None:  # pragma: no cover - runs as the bench's Celery worker
    if sys.argv[1:2] == ["deciders"]:
        _deciders_main()
        return
    from celery.signals import worker_process_init

    worker_process_init.connect(lambda **_: install("worker"), weak=False)
    from celery.__main__ import main

    sys.argv = sys.argv[1:]
    main()


def _deciders_main() -> None:  # pragma: no cover - runs as the bench's deciders
    """``manage.py run_deciders`` with the probes installed in each decider process."""
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "atomsite.settings")
    django.setup()
    from django.core.management import call_command

    from strategies.pipeline import dispatch

    dispatch.decider_started.connect(lambda **_: install("worker"), weak=False)
    processes = next(a for a in sys.argv if a.startswith("--processes="))
    call_command("run_deciders", processes=int(processes.split("=", 1)[1]))


# --- process groups (in the bench) ----------------------------------------------------------


def _cpu(proc: psutil.Process) -> float:
    try:
        t = proc.cpu_times()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return 0.0
    return t.user + t.system


def tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def listener_pids(port: int) -> list[int]:
    """The processes listening on ``port`` (the broker server)."""
    pids = set()
    for conn in psutil.net_connections(kind="tcp"):
        listening = conn.status == psutil.CONN_LISTEN and conn.laddr
        if listening and conn.laddr.port == port and conn.pid:
            pids.add(conn.pid)
    return sorted(pids)


def broker_port(url: str) -> int:
    parts = urlsplit(url)
    if parts.port:
        return parts.port
    return 5672 if parts.scheme in ("amqp", "pyamqp") else 6379


def postgres_pids(database_url: str) -> tuple[list[int], list[int]]:
    """(backends of the bench's database, the server's background processes)."""
    import psycopg

    parts = urlsplit(database_url)
    admin = parts._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        me = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
        rows = conn.execute(
            "SELECT pid, datname, backend_type FROM pg_stat_activity WHERE pid <> %s", [me]
        ).fetchall()
    name = parts.path.lstrip("/")
    ours = [pid for pid, db, kind in rows if db == name and kind == "client backend"]
    background = [pid for pid, db, kind in rows if db is None and kind != "client backend"]
    return ours, background


class Snapshot:
    """CPU seconds of each tracked process at one moment, by group."""

    def __init__(self, groups: dict[str, Iterable[int]]) -> None:
        self.at = time.time()
        self.by_pid: dict[str, dict[int, float]] = {}
        for group, pids in groups.items():
            self.by_pid[group] = {}
            for pid in pids:
                with contextlib.suppress(psutil.NoSuchProcess):
                    self.by_pid[group][pid] = _cpu(psutil.Process(pid))
        t = psutil.cpu_times()
        self.machine = t.user + t.system + t.nice + getattr(t, "irq", 0) + getattr(t, "softirq", 0)
        ru = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.children = ru.ru_utime + ru.ru_stime


def groups_now(
    *, web_pid: int, worker_pid: int, database_url: str, broker_url: str
) -> dict[str, list[int]]:
    worker = tree(worker_pid)
    backends, background = postgres_pids(database_url)
    return {
        "api": [p.pid for p in tree(web_pid)],
        "worker_main": [worker[0].pid] if worker else [],
        "worker_children": [p.pid for p in worker[1:]],
        "postgres": backends,
        "postgres_background": background,
        "broker": listener_pids(broker_port(broker_url)),
    }


class Sampler:
    """Samples every group's processes every ``interval`` seconds from ``start()`` to
    ``stop()``: a process that ends in between (a database connection closed after
    ``CONN_MAX_AGE``, a recycled worker) still counts up to its last sample, and one that starts
    in between counts from zero."""

    def __init__(self, groups: Callable[[], dict[str, list[int]]], interval: float = 0.5):
        self.groups = groups
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.before: Snapshot | None = None
        self.after: Snapshot | None = None
        self.last: dict[str, dict[int, float]] = {}

    def _sample(self) -> Snapshot:
        snap = Snapshot(self.groups())
        for group, by_pid in snap.by_pid.items():
            self.last.setdefault(group, {}).update(by_pid)
        return snap

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            with contextlib.suppress(Exception):  # a sample lost is a sample lost, no more
                self._sample()

    def start(self) -> Sampler:
        self.before = self._sample()
        self._thread.start()
        return self

    def stop(self) -> dict[str, float]:
        self._stop.set()
        self._thread.join()
        self.after = self._sample()
        assert self.before is not None
        out = {}
        for group, last in self.last.items():
            then = self.before.by_pid.get(group, {})
            out[group] = sum(cpu - then.get(pid, 0.0) for pid, cpu in last.items())
        out["reaped_children"] = self.after.children - self.before.children
        out["machine"] = self.after.machine - self.before.machine
        out["seconds"] = self.after.at - self.before.at
        return out


def delta(before: Snapshot, after: Snapshot) -> dict[str, float]:
    """CPU seconds by group between two snapshots: a process that appeared in between counts
    from zero, one that ended in between is lost (the bench keeps its servers' processes and
    connections for the whole phase)."""
    out = {}
    for group, now in after.by_pid.items():
        then = before.by_pid.get(group, {})
        out[group] = sum(cpu - then.get(pid, 0.0) for pid, cpu in now.items())
    out["reaped_children"] = after.children - before.children
    out["machine"] = after.machine - before.machine
    out["seconds"] = after.at - before.at
    return out


def budget(
    groups: dict[str, float],
    probes_before: dict[str, dict[str, float]],
    probes_after: dict[str, dict[str, float]],
    *,
    requests: int,
) -> list[tuple[str, float]]:
    """[(row, CPU ms per request)]: the issue's budget rows, then the totals."""

    def stage(role: str, name: str) -> float:
        return probes_after.get(role, {}).get(name, 0.0) - probes_before.get(role, {}).get(
            name, 0.0
        )

    n = max(requests, 1)
    api_publish = stage("api", "publish")
    decide = stage("worker", "decide")
    execute = stage("worker", "execute")
    worker_publish = stage("worker", "publish")
    children = groups["worker_children"]
    rows = [
        ("intake (API pool, less its publish)", groups["api"] - api_publish),
        ("publish at intake", api_publish),
        ("broker server", groups["broker"]),
        ("worker main process (receive, QoS, ack)", groups["worker_main"]),
        (
            "worker children outside the stages",
            children - decide - execute - worker_publish,
        ),
        ("decide", decide),
        ("execute (gateway call, recording)", execute),
        ("publish in the worker", worker_publish),
        ("PostgreSQL backends of the bench database", groups["postgres"]),
        ("PostgreSQL background (WAL, checkpoints; shared)", groups["postgres_background"]),
        ("load generator", groups["load_generator"]),
    ]
    if "celery_beside_deciders" in groups:  # ATOM_DISPATCH=postgres: retries only
        rows.insert(5, ("Celery worker beside the deciders", groups["celery_beside_deciders"]))
    ours = sum(v for _, v in rows)
    rows.append(("= all of the above", ours))
    rows.append(("rest of the machine (other work)", groups["machine"] - ours))
    return [(name, value / n * 1000) for name, value in rows]


if __name__ == "__main__":  # pragma: no cover
    _worker_main()
