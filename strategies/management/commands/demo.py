"""python manage.py demo: the whole system on one machine with nothing installed.

Migrates the embedded database, seeds the demo shops, schedules the periodic tasks, then starts
and watches five child processes: the web server, a Celery worker, Celery beat, the traffic
simulator (signed API requests for the generic shop) and ``kuaishou``: a fake Kuaishou open
platform (``simulate_kuaishou``) that the second shop is connected to, pushing encrypted refund
messages to ATOM's push endpoint and listing the approvals it receives on a read-only page.
Ctrl-C (SIGINT) or SIGTERM stops every one of them with what they started (the worker's pool
processes included), killing what does not stop in time, and checks that nothing
is left before the command returns. The supervising is ``strategies.demo.supervisor``'s.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management import call_command, get_commands
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.translation import gettext as _

from strategies.demo.seed import (
    DEMO_SHOP_CODE,
    KUAISHOU_LOGIN,
    KUAISHOU_SHOP_CODE,
    demo_seed,
    kuaishou_shop_seed,
    role_label,
)
from strategies.demo.supervisor import Supervisor, healthy, port_free

# The console SMS and e-mail of the 95% alert, and anything going wrong.
WORKER_HIGHLIGHT = re.compile(r"SMS to |E-mail to |ERROR|CRITICAL|Traceback")
READY_TIMEOUT = 90.0
# Traffic first, then the web, then beat; the worker last so in-flight tasks finish.
STOP_ORDER = ["simulator", "kuaishou", "web", "beat", "worker"]


def free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


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
        parser.add_argument(
            "--kuaishou-rate",
            type=float,
            default=0.5,
            help="refunds/s the fake Kuaishou pushes; 0: no Kuaishou shop",
        )
        parser.add_argument(
            "--kuaishou-port",
            type=int,
            default=0,
            help="the fake Kuaishou's port; 0 (the default): --port + 1 when free, else any",
        )
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
            raise CommandError(_("The demo runs with DEBUG=true (make demo sets it)."))
        host, port = options["host"], options["port"]
        if not port_free(host, port):
            raise CommandError(
                _(
                    "Port %(port)s on %(host)s is in use: stop what runs there, or choose "
                    "another (make demo DEMO_PORT=8001, or --port)."
                )
                % {"port": port, "host": host}
            )
        self.stop = threading.Event()
        self.out_lock = threading.Lock()
        previous = {
            sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            self._prepare(options)
            self.supervisor = Supervisor(
                cwd=Path(settings.BASE_DIR), log_dir=self.log_dir, say=self.say, stop=self.stop
            )
            try:
                ok = self._run(options)
            finally:
                self.supervisor.stop_all(order=STOP_ORDER)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        if not ok:
            raise CommandError(_("The demo stopped because a process failed (see above)."))

    def _on_signal(self, signum: int, frame: object) -> None:
        self.stop.set()

    def say(self, line: str) -> None:
        with self.out_lock:
            self.stdout.write(line)
            self.stdout.flush()

    def _prepare(self, options: dict[str, Any]) -> None:
        db = settings.DATABASES["default"]
        engine = db["ENGINE"].rsplit(".", 1)[-1]
        self.say(_("demo: database %(engine)s %(name)s") % {"engine": engine, "name": db["NAME"]})
        self.say(_("demo: broker %(url)s") % {"url": settings.CELERY_BROKER_URL})
        self.log_dir = Path(settings.VAR_DIR) / "log"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        call_command("migrate", interactive=False, verbosity=0)
        self.say(_("demo: database migrated"))
        self.seed = demo_seed(code=options["shop"])
        self.say(_("demo: shop %(code)s seeded") % {"code": self.seed.shop.code})
        if options["kuaishou_rate"] > 0:
            kuaishou_shop_seed(code=KUAISHOU_SHOP_CODE)
            self.say(_("demo: shop %(code)s seeded") % {"code": KUAISHOU_SHOP_CODE})
        if "setup_periodic_tasks" in get_commands():
            call_command("setup_periodic_tasks", verbosity=0)
            self.say(_("demo: periodic tasks scheduled"))
        else:
            self.say(_("demo: no setup_periodic_tasks command: beat has no schedule"))

    def _run(self, options: dict[str, Any]) -> bool:
        verbose = options["verbose_children"]
        python = [sys.executable, "-u"]
        manage = [*python, str(Path(settings.BASE_DIR) / "manage.py")]
        celery = [*python, "-m", "celery", "-A", "atomsite"]
        base_url = f"http://{options['host']}:{options['port']}"
        start = self.supervisor.start

        web = start(
            "web",
            [*manage, "runserver", f"{options['host']}:{options['port']}", "--noreload"],
            echo=verbose,
        )
        worker = start(
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
            echo=verbose,
            ready=" ready.",
            highlight=WORKER_HIGHLIGHT,
        )
        beat = start(
            "beat",
            [
                *celery,
                "beat",
                "--loglevel",
                "INFO",
                "--scheduler",
                "django_celery_beat.schedulers:DatabaseScheduler",
            ],
            echo=verbose,
            ready="beat: Starting",
        )

        ready = self.supervisor.wait_ready(
            health_url=f"{base_url}/healthz", children=[worker, beat], timeout=READY_TIMEOUT
        )
        if not ready:
            return False
        if options["check"]:
            self.say(_("demo: check passed: web answers /healthz, the worker and beat are up"))
            return True

        simulator = start(
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
        )
        watched = [simulator]
        approvals_url = None
        if options["kuaishou_rate"] > 0:
            fake_port = options["kuaishou_port"]
            if not fake_port:
                fake_port = options["port"] + 1
                if not port_free(options["host"], fake_port):
                    fake_port = free_port(options["host"])
            watched.append(
                start(
                    "kuaishou",
                    [
                        *manage,
                        "simulate_kuaishou",
                        "--shop",
                        KUAISHOU_SHOP_CODE,
                        "--url",
                        base_url,
                        "--rate",
                        f"{options['kuaishou_rate']:g}",
                        "--port",
                        str(fake_port),
                        "--progress-every",
                        "10",
                    ],
                    echo=True,
                )
            )
            # The fake serves on 127.0.0.1 whatever --host is; the banner waits until its page
            # answers, so the address printed works when it is read.
            approvals_url = f"http://127.0.0.1:{fake_port}/approvals"
            deadline = time.monotonic() + READY_TIMEOUT
            while not healthy(f"{approvals_url}.json") and time.monotonic() < deadline:
                if self.stop.wait(0.3) or not watched[-1].running():
                    break
        self._banner(base_url, approvals_url)
        essential = [web, worker, beat]
        while not self.stop.wait(0.5):
            for child in essential:
                if not child.running():
                    self.supervisor.report_death(child)
                    return False
            # The simulator may finish its --duration (0): the site stays up.
            for child in watched:
                if child.proc is not None and child.proc.poll() not in (None, 0):
                    self.supervisor.report_death(child)
                    return False
        self.say("\n" + _("demo: stopping…"))
        return True

    def _banner(self, base_url: str, approvals_url: str | None) -> None:
        lines = [
            "",
            "=" * 72,
            "  " + _("ATOM demo is running: %(url)s") % {"url": f"{base_url}/admin/"},
            "  " + _("Logins:"),
        ]
        for username, password, role in self.seed.logins:
            who = (
                _("%(role)s of shop %(code)s")
                % {"role": role_label(role), "code": self.seed.shop.code}
                if role
                else _("platform operator")
            )
            lines.append(f"    {username:<8} {password:<18} {who}")
        if approvals_url is not None:
            username, password, role = KUAISHOU_LOGIN
            who = _("%(role)s of shop %(code)s") % {
                "role": role_label(role),
                "code": KUAISHOU_SHOP_CODE,
            }
            lines += [
                f"    {username:<8} {password:<18} {who}",
                "  "
                + _(
                    "Shop %(code)s is connected to a fake Kuaishou; its channel health is on "
                    "the shop's page, the approvals it received on %(url)s"
                )
                % {"code": KUAISHOU_SHOP_CODE, "url": approvals_url},
            ]
        lines += [
            "  "
            + _(
                "Logs: %(dir)s/<web|worker|beat|simulator|kuaishou>.log (alerts print in "
                "worker.log)"
            )
            % {"dir": self.log_dir},
            "  " + _("Ctrl-C stops everything."),
            "=" * 72,
            "",
        ]
        self.say("\n".join(lines))
