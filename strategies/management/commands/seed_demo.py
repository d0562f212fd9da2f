"""python manage.py seed_demo [--shop demo]: the demo shop, its staff, products and strategies."""

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from strategies.demo.seed import DEMO_SHOP_CODE, demo_seed


class Command(BaseCommand):
    help = (
        "Creates or completes the demo shop (staff logins, 12 products, strategies in every "
        "scenario). Safe to run again: nothing that exists is duplicated."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--shop", default=DEMO_SHOP_CODE, help="the demo shop's code")

    def handle(self, *args: Any, **options: Any) -> None:
        seed = demo_seed(code=options["shop"])
        new = ", ".join(f"{n} {what}" for what, n in seed.created.items() if n) or "nothing new"
        self.stdout.write(f"Demo shop {seed.shop.code} ready ({new}).")
        for username, password, role in seed.logins:
            who = f"{role} of {seed.shop.code}" if role else "platform operator (superuser)"
            self.stdout.write(f"  login {username} / {password}  ({who})")
