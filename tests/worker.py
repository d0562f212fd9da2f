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
import select
import signal
import socket
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
from urllib.parse import quote, unquote

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
    method: str = "POST"
    # time.monotonic() when the request arrived, and when its connection ended (the answer
    # written, or the client hung up): 0 while it is still open.
    opened_at: float = 0.0
    closed_at: float = 0.0


@dataclass
class GatewayServer:
    """A platform gateway on 127.0.0.1 that records every call.

    ``script`` is consumed one entry per approval (POST):

    - an int: the status to answer;
    - ``"timeout"``: sleeps ``timeout_sleep`` s, THEN approves (the client gives up first);
    - ``"pay-stall"``: approves at once, then stalls ``timeout_sleep`` s before answering 200
      (the platform paid; the client gave up before it heard so);
    - ``"drip"``: approves at once and writes its whole answer (status line, headers, body) one
      byte every ``drip_interval`` s; ``"drip-body"``: headers at once, then the body so;
    - ``"pay-drop"``: approves, then closes the connection without a word; ``"drop"``: closes it
      without approving;
    - ``"hold"``: blocks until ``release()``.

    When the script is empty, the answer is 200, or 409 for an idempotency key already approved
    (as a real platform would). ``status_script`` is consumed one entry per status check
    (``GET /aftersales/{id}``): True/False answer ``{"approved": ...}``, a dict is answered as
    JSON, an int is the status to answer, ``"garbage"`` a 200 that is not JSON, ``"stall"``
    sleeps ``timeout_sleep`` s first; when empty, ``{"approved": ...}`` says whether that id was
    approved. ``calls`` are recorded on arrival (``status`` 0 until answered, ``closed_at`` 0
    while open); ``approvals`` counts, per key, the calls that approved (2xx/409 or paid).
    """

    script: list[int | str] = field(default_factory=list)
    status_script: list[Any] = field(default_factory=list)
    timeout_sleep: float = 3.0
    drip_interval: float = 0.05
    calls: list[GatewayCall] = field(default_factory=list)
    approvals: dict[str, int] = field(default_factory=dict)
    approved_ids: set[str] = field(default_factory=set)
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

    def approvals_of(self, method: str = "POST") -> list[GatewayCall]:
        with self._lock:
            return [c for c in self.calls if c.method == method]

    def _approve(self, key: str, aftersale_id: str) -> None:
        with self._lock:
            self.approvals[key] = self.approvals.get(key, 0) + 1
            self.approved_ids.add(aftersale_id)

    def start(self) -> GatewayServer:
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _record(self, call: GatewayCall) -> GatewayCall:
                call.opened_at = time.monotonic()
                with gateway._lock:
                    gateway.calls.append(call)  # recorded on arrival, answered below
                return call

            def _hung_up(self, seconds: float) -> bool:
                """Waits up to ``seconds``; True as soon as the client closes its end."""
                readable, _, _ = select.select([self.connection], [], [], max(seconds, 0))
                if not readable:
                    return False
                try:
                    return self.connection.recv(1, socket.MSG_PEEK) == b""
                except OSError:
                    return True

            def _stall(self, call: GatewayCall, seconds: float) -> None:
                """Sleeps ``seconds`` like a slow platform, noting when the client hangs up."""
                until = time.monotonic() + seconds
                while (left := until - time.monotonic()) > 0:
                    if call.closed_at:
                        time.sleep(left)
                    elif self._hung_up(left):
                        call.closed_at = time.monotonic()
                    else:  # more bytes from the client, or the time is up
                        time.sleep(min(left, 0.05))

            def _closed(self, call: GatewayCall) -> None:
                if not call.closed_at:
                    call.closed_at = time.monotonic()

            def _answer(self, call: GatewayCall, status: int, payload: bytes) -> None:
                call.status = status
                try:
                    self.send_response(status)
                    if 300 <= status < 400:
                        self.send_header("Location", "/login")  # a GET there would answer 200
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    self.wfile.flush()
                except OSError:  # the client gave up (timeout): nothing to answer
                    pass
                self._closed(call)

            def _drip(self, call: GatewayCall, payload: bytes, *, headers_too: bool) -> None:
                call.status = 200
                head = (
                    "HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(payload)}\r\n\r\n"
                ).encode()
                try:
                    if not headers_too:
                        self.connection.sendall(head)
                    for byte in (head + payload) if headers_too else payload:
                        self.connection.sendall(bytes([byte]))
                        if self._hung_up(gateway.drip_interval):
                            break
                except OSError:
                    pass
                self.close_connection = True
                self._closed(call)

            def do_GET(self) -> None:
                call = self._record(
                    GatewayCall(
                        path=self.path,
                        idempotency_key="",
                        authorization=self.headers.get("Authorization", ""),
                        body={},
                        status=0,
                        method="GET",
                    )
                )
                prefix = "/aftersales/"
                if not self.path.startswith(prefix) or "/" in self.path[len(prefix) :]:
                    self._answer(call, 404, b'{"error": "not found"}')
                    return
                aftersale_id = unquote(self.path[len(prefix) :])
                with gateway._lock:
                    step = gateway.status_script.pop(0) if gateway.status_script else None
                if step == "stall":
                    self._stall(call, gateway.timeout_sleep)
                    step = None
                if step is None:
                    with gateway._lock:
                        step = aftersale_id in gateway.approved_ids
                if step == "garbage":
                    self._answer(call, 200, b"<html>approved, probably</html>")
                elif isinstance(step, bool):
                    self._answer(call, 200, json.dumps({"approved": step}).encode())
                elif isinstance(step, dict):
                    self._answer(call, 200, json.dumps(step).encode())
                else:
                    self._answer(call, int(step), json.dumps({"error": "scripted"}).encode())

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                key = self.headers.get("Idempotency-Key", "")
                call = self._record(
                    GatewayCall(
                        path=self.path,
                        idempotency_key=key,
                        authorization=self.headers.get("Authorization", ""),
                        body=body,
                        status=0,
                    )
                )
                aftersale_id = str(body.get("aftersale_id", ""))
                with gateway._lock:
                    step = gateway.script.pop(0) if gateway.script else None
                if step in ("pay-stall", "drip", "drip-body", "pay-drop"):
                    gateway._approve(key, aftersale_id)  # the platform pays at once
                if step == "pay-stall":
                    self._stall(call, gateway.timeout_sleep)
                    self._answer(call, 200, json.dumps({"status": 200}).encode())
                    return
                if step in ("drip", "drip-body"):
                    payload = json.dumps({"status": 200, "padding": "." * 40}).encode()
                    self._drip(call, payload, headers_too=step == "drip")
                    return
                if step in ("pay-drop", "drop"):
                    self.close_connection = True
                    with contextlib.suppress(OSError):
                        self.connection.shutdown(socket.SHUT_RDWR)
                    self._closed(call)
                    return
                if step == "hold":
                    gateway.held.set()
                    gateway._release.wait(30)
                    step = None
                elif step == "timeout":
                    self._stall(call, gateway.timeout_sleep)  # a slow platform: it approves late
                    step = None
                with gateway._lock:
                    if step is None:
                        step = 409 if key in gateway.approvals else 200
                status = int(step)
                if 200 <= status < 300 or status == 409:
                    gateway._approve(key, aftersale_id)
                self._answer(call, status, json.dumps({"status": status}).encode())

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


class ProcessGroup:
    """A server of the tests as a subprocess in its own process group (so a kill takes its
    children too), ready once its output shows ``ready_line``."""

    ready_line = ""
    name = "the process"

    def __init__(self) -> None:
        self.env: dict[str, str] = {}
        self.process: subprocess.Popen[str] | None = None
        self.output: list[str] = []
        self._ready = threading.Event()
        self._seen_ready = False

    def _start(self, argv: list[str], *, timeout: float) -> None:
        self.process = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        threading.Thread(target=self._read, daemon=True).start()
        if not self._ready.wait(timeout) or not self._seen_ready:
            self.kill()
            pytest.fail(f"{self.name} did not start:\n" + self.log())

    def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:
            self.output.append(line)
            if self.ready_line in line:
                self._seen_ready = True
                self._ready.set()
        self._ready.set()  # it ended: start() fails at once with its output

    def log(self) -> str:
        return "".join(self.output[-200:])

    def pool_pids(self) -> list[int]:
        assert self.process is not None
        return child_pids(self.process.pid)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Kills the whole group (the main process and its children) at once."""
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, sig)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def stop(self, *, timeout: float = 5.0) -> None:
        """SIGTERM (a warm shutdown) if it is quick, else SIGKILL."""
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()


class CeleryWorker(ProcessGroup):
    """``celery -A atomsite worker`` as a subprocess in its own process group."""

    ready_line = " ready."
    name = "the Celery worker"

    def __init__(
        self,
        *,
        pool: str = "solo",
        concurrency: int = 1,
        env: dict[str, str] | None = None,
        gateway: GatewayServer | None = None,
    ) -> None:
        super().__init__()
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
            }
        )
        if gateway is not None:
            self.env.update(
                {
                    "ATOM_GATEWAY": "http",
                    "ATOM_GATEWAY_URL": gateway.url,
                    "ATOM_GATEWAY_TOKEN": "gw-token",
                    "ATOM_GATEWAY_TIMEOUT": "1",
                    # Longer than the derived 4 s: the tests that kill a worker mid-call start
                    # a new one (seconds on a loaded machine) while the dead one's lease runs.
                    "ATOM_EXECUTION_LEASE_SECONDS": "10",
                }
            )
        self.env.update(env or {})

    def start(self, *, timeout: float = 30.0) -> CeleryWorker:
        self._start(
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
            timeout=timeout,
        )
        return self


class DeciderProcesses(ProcessGroup):
    """``manage.py run_deciders`` (``ATOM_DISPATCH=postgres``) on the test database, as its own
    process group: the supervisor and its deciders. With ``gateway``, approvals go to it."""

    ready_line = "deciders running"
    name = "run_deciders"

    def __init__(
        self,
        *,
        processes: int,
        env: dict[str, str] | None = None,
        gateway: GatewayServer | None = None,
        poll: float = 30.0,
    ) -> None:
        """``poll``: long by default, so that what a test sees decided was decided because it
        was notified, not because an idle decider looked (pass a short one to test that)."""
        super().__init__()
        # The same environment as a Celery worker of the tests, plus the dispatch.
        self.env = CeleryWorker(gateway=gateway).env
        self.env.update({"ATOM_DISPATCH": "postgres", **(env or {})})
        self.argv = [
            sys.executable,
            str(ROOT / "manage.py"),
            "run_deciders",
            f"--processes={processes}",
            f"--poll={poll}",
        ]

    def start(self, *, timeout: float = 30.0) -> DeciderProcesses:
        self._start(self.argv, timeout=timeout)
        return self

    def children(self) -> list[int]:
        return self.pool_pids()

    def stop(self, *, timeout: float = 10.0) -> None:
        """Each decider finishes the request in hand."""
        super().stop(timeout=timeout)


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
