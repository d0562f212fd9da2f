"""``manage.py run_deciders``: the decider processes of ``ATOM_DISPATCH=postgres``
(``strategies.pipeline.deciders``)."""

from __future__ import annotations

import os
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from strategies.pipeline import dispatch
from strategies.pipeline.deciders import Supervisor


class Command(BaseCommand):
    help = (
        "Runs the deciders of ATOM_DISPATCH=postgres: each claims received requests from the "
        "database itself, woken by intake's NOTIFY."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--processes", type=int, default=os.cpu_count() or 2, help="deciders (default: cores)"
        )
        parser.add_argument(
            "--poll",
            type=float,
            default=1.0,
            help="seconds after which an idle decider looks for work even if nothing woke it",
        )

    def handle(self, *args: Any, processes: int, poll: float, **options: Any) -> None:
        if not dispatch.dispatching_through_postgres():
            raise CommandError("run_deciders needs ATOM_DISPATCH=postgres (intake sends NOTIFY)")
        if processes < 1 or poll <= 0:
            raise CommandError("--processes must be at least 1 and --poll above 0")
        Supervisor(processes=processes, poll=poll, out=self.stdout).run()
