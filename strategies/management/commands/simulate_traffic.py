"""Plays the platform: pushes signed after-sales requests to a running ATOM at a steady rate."""

from __future__ import annotations

import datetime as dt
import secrets
import signal
import threading
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.translation import gettext as _

from strategies.demo.traffic import TrafficGenerator, TrafficReport, catalog_for, send_traffic
from strategies.models import Product, Shop


class Command(BaseCommand):
    help = (
        "Sends realistic after-sales requests, signed as API.md says, to a running server at "
        "RATE per second for DURATION seconds, then prints the responses by status code."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--shop", required=True, help="the shop's code")
        parser.add_argument("--rate", type=float, default=5.0, help="requests per second")
        parser.add_argument(
            "--duration", type=float, default=60.0, help="seconds to run; 0 runs until stopped"
        )
        parser.add_argument("--url", default="http://127.0.0.1:8000", help="the server's base URL")
        parser.add_argument(
            "--secret", default=None, help="the shop's API secret (default: read from the shop)"
        )
        parser.add_argument("--seed", type=int, default=None, help="random seed (repeatable)")
        parser.add_argument("--concurrency", type=int, default=4, help="requests in flight")
        parser.add_argument(
            "--progress-every", type=float, default=10.0, help="seconds between progress lines"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        code: str = options["shop"]
        shop = Shop.objects.filter(code=code).first()
        secret = options["secret"] or (shop.api_secret if shop else None)
        if not secret:
            raise CommandError(
                _("Unknown shop %(code)r: give --secret or create the shop first.") % {"code": code}
            )
        if options["rate"] <= 0:
            raise CommandError(_("--rate must be above zero."))
        products = (
            list(Product.objects.filter(shop=shop).values_list("product_id", "title"))
            if shop
            else []
        )
        seed = options["seed"] if options["seed"] is not None else secrets.randbelow(2**31)
        stamp = dt.datetime.now(dt.UTC).strftime("%y%m%d%H%M%S")
        generator_kwargs: dict[str, Any] = {"seed": seed, "id_prefix": f"{stamp}{seed % 1000:03d}"}
        if products:
            generator_kwargs["catalog"] = catalog_for(products)
        if shop:
            generator_kwargs["zone"] = shop.zone
        generator = TrafficGenerator(**generator_kwargs)

        stop = threading.Event()

        def request_stop(signum: int, frame: object) -> None:
            stop.set()

        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, request_stop)

        duration = options["duration"] or None
        period = (
            _("for %(seconds)g s") % {"seconds": duration}
            if duration
            else _("until stopped (Ctrl-C)")
        )
        self.stdout.write(
            _("simulate_traffic: shop %(code)s -> %(url)s at %(rate)g/s %(period)s, seed %(seed)s")
            % {
                "code": code,
                "url": options["url"],
                "rate": options["rate"],
                "period": period,
                "seed": seed,
            }
        )
        self.stdout.flush()

        def progress(report: TrafficReport) -> None:
            self.stdout.write(f"simulate_traffic: {report.summary()}")
            self.stdout.flush()

        report = send_traffic(
            generator=generator,
            base_url=options["url"],
            shop_code=code,
            secret=secret,
            rate=options["rate"],
            duration=duration,
            concurrency=options["concurrency"],
            stop=stop,
            on_progress=progress,
            progress_every=options["progress_every"],
        )
        self.stdout.write(_("simulate_traffic: done, %(summary)s") % {"summary": report.summary()})
        if report.all_unauthorized():
            raise CommandError(
                _(
                    "Every answer was 401 (unauthorized): the shop code or its API secret is "
                    "wrong, so nothing was stored. Check --shop and --secret (the secret "
                    "create_shop or rotate_shop_secret printed)."
                )
            )
