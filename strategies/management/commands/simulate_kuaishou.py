"""Plays Kuaishou for the demo: runs the fake Kuaishou open platform (a real local HTTP server),
connects a shop to it as a Kuaishou shop, and pushes encrypted refund messages to a running ATOM.

    python manage.py simulate_kuaishou --url http://127.0.0.1:8000 [--shop demo-ks] [--rate 1]

``make demo`` runs it as its ``kuaishou`` process: the worker fetches each refund from the fake,
decides it against the shop's strategies and approves it there; the shop's page shows its
channel health, and the fake lists every approval it accepted on a read-only page
(``/approvals``, ``/approvals.json``) whose address is printed.
"""

from __future__ import annotations

import itertools
import random
import signal
import threading
import time
from collections import Counter
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from strategies.demo.seed import KUAISHOU_SHOP_CODE, connect_to_fake_kuaishou, kuaishou_shop_seed
from strategies.models import Shop
from strategies.platforms.kuaishou.fake import FakeKuaishou


def kuaishou_demo_shop(*, code: str, fake: FakeKuaishou) -> Shop:
    """The demo's Kuaishou shop, with one active small-refund strategy, connected to ``fake``."""
    shop = kuaishou_shop_seed(code=code, login=False)
    connect_to_fake_kuaishou(shop, fake)
    return shop


class Command(BaseCommand):
    help = "Runs a fake Kuaishou, connects a demo shop to it and pushes refunds to ATOM."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--url", default="http://127.0.0.1:8000", help="ATOM's base URL")
        parser.add_argument("--shop", default=KUAISHOU_SHOP_CODE, help="the Kuaishou shop's code")
        parser.add_argument("--rate", type=float, default=1.0, help="refunds per second")
        parser.add_argument("--count", type=int, default=0, help="refunds to push; 0: no end")
        parser.add_argument("--seed", type=int, default=None)
        parser.add_argument(
            "--port", type=int, default=0, help="the fake's port; 0 (the default): any free one"
        )
        parser.add_argument(
            "--progress-every",
            type=float,
            default=0.0,
            help="seconds between progress lines; 0 (the default): a line per push",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["rate"] <= 0:
            raise CommandError(_("--rate must be above zero."))
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        rng = random.Random(options["seed"])
        fake = FakeKuaishou(port=options["port"]).start()
        every = options["progress_every"]
        next_progress = time.monotonic() + every
        try:
            shop = kuaishou_demo_shop(code=options["shop"], fake=fake)
            url = f"{options['url'].rstrip('/')}/platforms/kuaishou/push/{fake.app_key}"
            self.stdout.write(
                _("fake Kuaishou on %(fake)s; shop %(code)s pushes to %(url)s")
                % {"fake": fake.url, "code": shop.code, "url": url}
            )
            self.stdout.write(_("approvals received: %(url)s") % {"url": fake.approvals_url})
            self.stdout.flush()
            base = int(time.time())
            statuses: Counter[str] = Counter()
            for n in itertools.count(1):
                if stop.is_set() or (options["count"] and n > options["count"]):
                    break
                order_id, refund_id = str(base * 1000 + n), str(base * 1000 + 500000 + n)
                fen = rng.choice([590, 990, 1290, 1990, 4990])
                fake.add_order(order_id, status=40, items=[(9001, "T-shirt", 1, fen)])
                fake.add_refund(refund_id, order_id=order_id, fee=fen, handling_way=10)
                status: int | str
                try:
                    status = fake.push(url, fake.envelope(refund_id)).status_code
                except Exception as exc:  # ATOM not up yet: say so and go on
                    status = type(exc).__name__
                approved = len(fake.approvals)
                statuses[str(status)] += 1
                if not every:
                    self.stdout.write(
                        _("push %(refund)s (%(fen)d fen): %(status)s; approved %(approved)d")
                        % {"refund": refund_id, "fen": fen, "status": status, "approved": approved}
                    )
                elif time.monotonic() >= next_progress:
                    parts = ", ".join(f"{k}: {v}" for k, v in sorted(statuses.items()))
                    self.stdout.write(
                        ngettext(
                            "%(n)d push (answers %(parts)s); approved %(approved)d",
                            "%(n)d pushes (answers %(parts)s); approved %(approved)d",
                            n,
                        )
                        % {"n": n, "parts": parts, "approved": approved}
                    )
                    next_progress += every
                self.stdout.flush()
                stop.wait(1 / options["rate"])
            # Leave time for the last approvals to arrive, then report them.
            stop.wait(0 if options["count"] == 0 else 2)
            done = len(fake.approvals)
            self.stdout.write(
                ngettext(
                    "the fake Kuaishou approved %(n)d refund",
                    "the fake Kuaishou approved %(n)d refunds",
                    done,
                )
                % {"n": done}
            )
        except KeyboardInterrupt:
            pass
        finally:
            fake.stop()
