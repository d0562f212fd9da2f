"""Shared helpers for tests that need the real pipeline: a real Celery worker subprocess over
Redis on the pytest test database, and a real local HTTP gateway.

Its fixtures are a plugin of the suite (``pytest_plugins`` in ``tests/conftest.py``)::

    from tests.worker import wait_until

    @pytest.mark.worker
    @pytest.mark.django_db(transaction=True)
    def test_it_...(celery_worker, gateway_server):
        worker = celery_worker(gateway=gateway_server)  # started and ready
        ...

The worker runs ``celery -A atomsite worker`` with ``DATABASE_URL`` pointing at the test database
(``settings.DATABASES['default']['NAME']`` inside a test) and the test's ``CELERY_BROKER_URL``
(a Redis db of its own, flushed before and after). Teardown always kills the subprocess.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connections

ROOT = Path(__file__).resolve().parent.parent
CELERY = str(Path(sys.executable).with_name("celery"))


def wait_until(predicate: Callable[[], Any], *, timeout: float = 15.0, interval: float = 0.05):
    """Polls ``predicate`` until it returns something truthy; fails the test on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {predicate}")
        time.sleep(interval)


def worker_database_url() -> str:
    db = settings.DATABASES["default"]
    user = quote(db.get("USER") or "postgres")
    password = f":{quote(db['PASSWORD'])}" if db.get("PASSWORD") else ""
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or 5432
    return f"postgres://{user}{password}@{host}:{port}/{db['NAME']}"


# --- A real local gateway -------------------------------------------------------------------


@dataclass
class GatewayCall:
    path: str
    idempotency_key: str
    authorization: str
    body: dict
    status: int


@dataclass
class GatewayServer:
    """A platform gateway on 127.0.0.1 that records every call.

    ``script`` is consumed one entry per call: an int is the status to answer, ``"timeout"``
    sleeps ``timeout_sleep`` seconds before approving (the client gives up first), ``"hold"``
    blocks until ``release()``. When the script is empty, the answer is 200, or 409 for an
    idempotency key already approved (as a real platform would). ``calls`` are recorded on
    arrival (``status`` 0 until answered); ``approvals`` counts, per key, the calls that
    approved (2xx/409).
    """

    script: list[int | str] = field(default_factory=list)
    timeout_sleep: float = 3.0
    calls: list[GatewayCall] = field(default_factory=list)
    approvals: dict[str, int] = field(default_factory=dict)
    held: threading.Event = field(default_factory=threading.Event)
    _release: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def release(self) -> None:
        self._release.set()

    def approved_keys(self) -> set[str]:
        with self._lock:
            return set(self.approvals)

    def start(self) -> GatewayServer:
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                gateway.calls.append(
                    GatewayCall(
                        path=self.path, idempotency_key="", authorization="", body={}, status=200
                    )
                )
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                key = self.headers.get("Idempotency-Key", "")
                call = GatewayCall(
                    path=self.path,
                    idempotency_key=key,
                    authorization=self.headers.get("Authorization", ""),
                    body=body,
                    status=0,
                )
                with gateway._lock:
                    gateway.calls.append(call)  # recorded on arrival, answered below
                    step = gateway.script.pop(0) if gateway.script else None
                if step == "hold":
                    gateway.held.set()
                    gateway._release.wait(30)
                    step = None
                elif step == "timeout":
                    time.sleep(gateway.timeout_sleep)  # a slow platform: it approves late
                    step = None
                with gateway._lock:
                    if step is None:
                        step = 409 if key in gateway.approvals else 200
                    if 200 <= int(step) < 300 or step == 409:
                        gateway.approvals[key] = gateway.approvals.get(key, 0) + 1
                    call.status = int(step)
                payload = json.dumps({"status": int(step)}).encode()
                try:
                    self.send_response(int(step))
                    if 300 <= int(step) < 400:
                        self.send_header("Location", "/login")  # a GET there would answer 200
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:  # the client gave up (timeout): nothing to answer
                    pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def stop(self) -> None:
        self._release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


@pytest.fixture
def gateway_server(settings) -> Iterator[GatewayServer]:
    """A started local gateway; the in-process settings point ``ATOM_GATEWAY=http`` at it."""
    server = GatewayServer().start()
    settings.ATOM_GATEWAY = "http"
    settings.ATOM_GATEWAY_URL = server.url
    settings.ATOM_GATEWAY_TOKEN = "gw-token"
    settings.ATOM_GATEWAY_TIMEOUT = 1.0
    yield server
    server.stop()


# --- A real Celery worker -------------------------------------------------------------------


def child_pids(pid: int) -> list[int]:
    """Direct children of ``pid`` (the prefork pool processes of a worker)."""
    children = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name may hold spaces: the parent pid is the 2nd field after the ")".
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            children.append(int(entry.name))
    return children


class CeleryWorker:
    """``celery -A atomsite worker`` as a subprocess in its own process group."""

    def __init__(
        self,
        *,
        pool: str = "solo",
        concurrency: int = 1,
        env: dict[str, str] | None = None,
        gateway: GatewayServer | None = None,
    ) -> None:
        self.pool = pool
        self.concurrency = concurrency
        self.env = dict(os.environ)
        self.env.update(
            {
                "DATABASE_URL": worker_database_url(),
                "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
                "DJANGO_SETTINGS_MODULE": "atomsite.settings",
                # The checkout under test, not whatever tree the venv's editable install maps.
                "PYTHONPATH": str(ROOT),
                "CONN_MAX_AGE": "0",
                "PYTHONUNBUFFERED": "1",
                "LOG_LEVEL": "INFO",
                # Fast retries for tests; everything still under the visibility timeout.
                "ATOM_RETRY_BASE_DELAY_SECONDS": "0.2",
                "ATOM_RETRY_MAX_DELAY_SECONDS": "1",
                "ATOM_EXECUTION_LEASE_SECONDS": "2",
            }
        )
        if gateway is not None:
            self.env.update(
                {
                    "ATOM_GATEWAY": "http",
                    "ATOM_GATEWAY_URL": gateway.url,
                    "ATOM_GATEWAY_TOKEN": "gw-token",
                    "ATOM_GATEWAY_TIMEOUT": "1",
                }
            )
        self.env.update(env or {})
        self.process: subprocess.Popen[str] | None = None
        self.output: list[str] = []
        self._ready = threading.Event()

    def start(self, *, timeout: float = 30.0) -> CeleryWorker:
        self.process = subprocess.Popen(
            [
                CELERY,
                "-A",
                "atomsite",
                "worker",
                f"--pool={self.pool}",
                f"--concurrency={self.concurrency}",
                f"--hostname=test-{uuid.uuid4().hex[:8]}@%h",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "--loglevel=INFO",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        threading.Thread(target=self._read, daemon=True).start()
        if not self._ready.wait(timeout):
            self.kill()
            pytest.fail("the Celery worker did not start:\n" + self.log())
        return self

    def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:
            self.output.append(line)
            if " ready." in line:
                self._ready.set()

    def log(self) -> str:
        return "".join(self.output[-200:])

    def pool_pids(self) -> list[int]:
        assert self.process is not None
        return child_pids(self.process.pid)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Kills the whole worker (main process and pool children) at once."""
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, sig)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        """Warm shutdown if it is quick, else SIGKILL."""
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.kill()


@pytest.fixture
def redis_broker() -> Iterator[str]:
    """The test's own Redis db, flushed before and after."""
    import redis

    url = settings.CELERY_BROKER_URL
    if not url.startswith("redis://"):
        pytest.fail(f"worker tests need a Redis CELERY_BROKER_URL, not {url!r}")
    client = redis.Redis.from_url(url)
    client.flushdb()
    yield url
    client.flushdb()
    client.close()


@pytest.fixture
def celery_worker(transactional_db, redis_broker) -> Iterator[Callable[..., CeleryWorker]]:
    """A factory: ``celery_worker(pool=..., concurrency=..., env=..., gateway=...)`` returns a
    started, ready worker. Every worker started is killed at teardown, before the test database
    is flushed."""
    workers: list[CeleryWorker] = []

    def start(**kwargs: Any) -> CeleryWorker:
        worker = CeleryWorker(**kwargs)
        workers.append(worker)
        return worker.start()

    yield start
    for worker in workers:
        worker.kill()
    connections.close_all()
