"""python manage.py demo: the whole system on one machine with nothing installed.

Migrates the embedded database, seeds the demo shop, schedules the periodic tasks, then starts
and watches four child processes: the web server, a Celery worker, Celery beat and the traffic
simulator. Ctrl-C (SIGINT) or SIGTERM stops every one of them: each child leads its own process
group, which is signalled as a whole (the worker's pool processes included), killed if it does
not stop in time, and checked empty before the command returns.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.core.management import call_command, get_commands
from django.core.management.base import BaseCommand, CommandError, CommandParser

from strategies.demo.seed import DEMO_SHOP_CODE, demo_seed

STOP_TIMEOUT = 15.0
# The console SMS and e-mail of the 95% alert, and anything going wrong.
WORKER_HIGHLIGHT = re.compile(r"SMS to |E-mail to |ERROR|CRITICAL|Traceback")
READY_TIMEOUT = 90.0

_libc: Any = None
with contextlib.suppress(OSError, TypeError):
    _libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
PR_SET_PDEATHSIG = 1


def _child_setup(parent_pid: int) -> Callable[[], None]:
    """Runs in the child before exec: SIGTERM it if the demo dies (even by SIGKILL)."""

    def setup() -> None:
        if _libc is not None:
            _libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent_pid:  # the parent died before prctl took effect
            os._exit(1)

    return setup


@dataclass
class Child:
    name: str
    argv: list[str]
    log_path: Path
    echo: Callable[[str], None] | None
    say: Callable[[str], None]
    ready_marker: str | None = None
    # Lines echoed even when the rest only goes to the log (the worker's alerts and errors).
    highlight: re.Pattern[str] | None = None
    proc: subprocess.Popen | None = None
    ready: threading.Event = field(default_factory=threading.Event)
    tail: list[str] = field(default_factory=list)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, *, cwd: Path, parent_pid: int) -> None:
        self.proc = subprocess.Popen(
            self.argv,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: signalled as a whole
            preexec_fn=_child_setup(parent_pid),
        )
        threading.Thread(target=self._pump, name=f"demo-{self.name}", daemon=True).start()

    def _pump(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        stream: IO[bytes] = self.proc.stdout
        with self.log_path.open("a", encoding="utf-8") as log:
            for raw in iter(stream.readline, b""):
                line = raw.decode("utf-8", "replace").rstrip("\n")
                log.write(line + "\n")
                log.flush()
                self.tail = [*self.tail[-19:], line]
                if self.ready_marker and self.ready_marker in line:
                    self.ready.set()
                if self.echo is not None:
                    self.echo(f"{self.name:>9} | {line}")
                elif self.highlight is not None and self.highlight.search(line):
                    self.say(f"{self.name:>9} | {line}")

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


def group_alive(pgid: int) -> bool:
    """Whether any live (non-zombie) process is still in process group ``pgid``."""
    proc = Path("/proc")
    if not proc.is_dir():
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


class Command(BaseCommand):
    help = (
        "Runs the demo: migrates and seeds the embedded database, then starts the web server, "
        "a Celery worker, Celery beat and the traffic simulator until Ctrl-C."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--rate", type=float, default=5.0, help="simulated requests/s")
        parser.add_argument(
            "--duration",
            type=float,
            default=0.0,
            help="seconds of simulated traffic; 0 (the default) sends until Ctrl-C",
        )
        parser.add_argument("--shop", default=DEMO_SHOP_CODE)
        parser.add_argument("--concurrency", type=int, default=2, help="worker processes")
        parser.add_argument(
            "--check",
            action="store_true",
            help="start web, worker and beat, wait until all answer, stop them and exit",
        )
        parser.add_argument(
            "--verbose-children",
            action="store_true",
            help="echo every line of every process (they always go to var/log/<name>.log)",
        )

    # --- main -------------------------------------------------------------------------------
    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEBUG:
            raise CommandError("The demo runs with DEBUG=true (make demo sets it).")
        host, port = options["host"], options["port"]
        if not port_free(host, port):
            raise CommandError(
                f"Port {port} on {host} is in use: stop what runs there, or choose another "
                f"(make demo DEMO_PORT=8001, or --port)."
            )
        self.stop = threading.Event()
        self.children: list[Child] = []
        self.out_lock = threading.Lock()
        previous = {
            sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            self._prepare(options)
            ok = self._run(options)
        finally:
            self._stop_all()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        if not ok:
            raise CommandError("The demo stopped because a process failed (see above).")

    def _on_signal(self, signum: int, frame: object) -> None:
        self.stop.set()

    def say(self, line: str) -> None:
        with self.out_lock:
            self.stdout.write(line)
            self.stdout.flush()

    def _prepare(self, options: dict[str, Any]) -> None:
        db = settings.DATABASES["default"]
        self.say(f"demo: database {db['ENGINE'].rsplit('.', 1)[-1]} {db['NAME']}")
        self.say(f"demo: broker {settings.CELERY_BROKER_URL}")
        self.log_dir = Path(settings.VAR_DIR) / "log"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        call_command("migrate", interactive=False, verbosity=0)
        self.say("demo: database migrated")
        self.seed = demo_seed(code=options["shop"])
        self.say(f"demo: shop {self.seed.shop.code} seeded")
        if "setup_periodic_tasks" in get_commands():
            call_command("setup_periodic_tasks", verbosity=0)
            self.say("demo: periodic tasks scheduled")
        else:
            self.say("demo: no setup_periodic_tasks command: beat has no schedule")

    def _child(
        self,
        name: str,
        argv: list[str],
        *,
        echo: bool,
        ready: str | None,
        highlight: re.Pattern[str] | None = None,
    ) -> Child:
        verbose = echo or self.verbose_children
        child = Child(
            name=name,
            argv=argv,
            log_path=self.log_dir / f"{name}.log",
            echo=self.say if verbose else None,
            say=self.say,
            ready_marker=ready,
            highlight=highlight,
        )
        child.start(cwd=Path(settings.BASE_DIR), parent_pid=os.getpid())
        self.children.append(child)
        self.say(f"demo: started {name} (pid {child.pid}), log {child.log_path}")
        return child

    def _run(self, options: dict[str, Any]) -> bool:
        self.verbose_children = options["verbose_children"]
        python = [sys.executable, "-u"]
        manage = [*python, str(Path(settings.BASE_DIR) / "manage.py")]
        celery = [*python, "-m", "celery", "-A", "atomsite"]
        base_url = f"http://{options['host']}:{options['port']}"

        web = self._child(
            "web",
            [*manage, "runserver", f"{options['host']}:{options['port']}", "--noreload"],
            echo=False,
            ready=None,
        )
        worker = self._child(
            "worker",
            [
                *celery,
                "worker",
                "--loglevel",
                "INFO",
                "--concurrency",
                str(options["concurrency"]),
                "--hostname",
                f"demo-{os.getpid()}@%h",
                # No other workers to gossip with; fewer files polled on the folder broker.
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ],
            echo=False,
            ready=" ready.",
            highlight=WORKER_HIGHLIGHT,
        )
        beat = self._child(
            "beat",
            [
                *celery,
                "beat",
                "--loglevel",
                "INFO",
                "--scheduler",
                "django_celery_beat.schedulers:DatabaseScheduler",
            ],
            echo=False,
            ready="beat: Starting",
        )

        if not self._wait_ready(base_url, [worker, beat]):
            return False
        if options["check"]:
            self.say("demo: check passed: web answers /healthz, the worker and beat are up")
            return True

        simulator = self._child(
            "simulator",
            [
                *manage,
                "simulate_traffic",
                "--shop",
                options["shop"],
                "--rate",
                f"{options['rate']:g}",
                "--duration",
                f"{options['duration']:g}",
                "--url",
                base_url,
            ],
            echo=True,
            ready=None,
        )
        self._banner(base_url)
        essential = [web, worker, beat]
        while not self.stop.wait(0.5):
            for child in essential:
                if not child.running():
                    self._report_death(child)
                    return False
            if simulator.proc is not None and simulator.proc.poll() not in (None, 0):
                self._report_death(simulator)
                return False
        self.say("\ndemo: stopping…")
        return True

    def _wait_ready(self, base_url: str, children: list[Child]) -> bool:
        deadline = time.monotonic() + READY_TIMEOUT
        healthy = False
        while time.monotonic() < deadline and not self.stop.is_set():
            for child in self.children:
                if not child.running():
                    self._report_death(child)
                    return False
            if not healthy:
                healthy = self._healthy(base_url)
            if healthy and all(c.ready.is_set() for c in children):
                return True
            self.stop.wait(0.3)
        if not self.stop.is_set():
            waiting = [c.name for c in children if not c.ready.is_set()]
            self.say(f"demo: not ready in {READY_TIMEOUT:g} s (web healthy: {healthy}, "
                     f"waiting for: {', '.join(waiting) or '-'})")  # fmt: skip
            return False
        return True

    @staticmethod
    def _healthy(base_url: str) -> bool:
        try:
            with urllib.request.urlopen(f"{base_url}/healthz", timeout=3) as response:  # noqa: S310
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def _report_death(self, child: Child) -> None:
        code = child.proc.returncode if child.proc is not None else None
        self.say(f"demo: {child.name} exited with status {code}; its last lines:")
        for line in child.tail:
            self.say(f"{child.name:>9} | {line}")

    def _banner(self, base_url: str) -> None:
        lines = [
            "",
            "=" * 72,
            f"  ATOM demo is running: {base_url}/admin/",
            "  Logins:",
        ]
        for username, password, role in self.seed.logins:
            who = f"{role} of shop {self.seed.shop.code}" if role else "platform operator"
            lines.append(f"    {username:<8} {password:<18} {who}")
        lines += [
            f"  Logs: {self.log_dir}/<web|worker|beat|simulator>.log (alerts print in worker.log)",
            "  Ctrl-C stops everything.",
            "=" * 72,
            "",
        ]
        self.say("\n".join(lines))

    # --- shutdown ---------------------------------------------------------------------------
    def _stop_all(self) -> None:
        started = [c for c in self.children if c.proc is not None]
        if not started:
            return
        # Traffic first, then the web, then beat; the worker last so in-flight tasks finish.
        # The leader alone is asked to stop: a Celery worker shuts its pool down itself (a TERM
        # sent to its pool processes too would make it wait for them in vain).
        order = {"simulator": 0, "web": 1, "beat": 2, "worker": 3}
        for child in started:
            if child.name == "simulator" and child.running():
                # Its requests in flight get their answers before the web server goes.
                assert child.proc is not None
                os.kill(child.pid, signal.SIGTERM)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    child.proc.wait(timeout=5)
        for child in sorted(started, key=lambda c: order.get(c.name, 9)):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(child.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        termed: set[int] = set()
        while time.monotonic() < deadline:
            for child in started:
                assert child.proc is not None
                if child.proc.poll() is not None and child.pid not in termed:
                    # The leader is gone: whatever it left in its group is told to stop too.
                    termed.add(child.pid)
                    waited = STOP_TIMEOUT - (deadline - time.monotonic())
                    self.say(f"demo: {child.name} stopped ({waited:.1f} s)")
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.killpg(child.pid, signal.SIGTERM)
            if not any(group_alive(c.pid) for c in started):
                break
            time.sleep(0.1)
        for child in started:
            if group_alive(child.pid):
                self.say(f"demo: {child.name} did not stop in {STOP_TIMEOUT:g} s: killing it")
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(child.pid, signal.SIGKILL)
        for child in started:
            assert child.proc is not None
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.proc.wait(timeout=5)
        left = [c.name for c in started if group_alive(c.pid)]
        if left:
            self.say(f"demo: still running: {', '.join(left)}")
        else:
            names = ", ".join(f"{c.name} ({c.pid})" for c in started)
            self.say(f"demo: stopped {names}; no process left")
