"""python manage.py rotate_shop_secret CODE [--grace-seconds 86400]: prints a new API secret for
the shop; the old one still signs for the grace period, then never again (API.md 1.1)."""

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from strategies.models import Shop
from strategies.services.shops import shop_secret_rotate


class Command(BaseCommand):
    help = (
        "Gives a shop a new API secret and prints it; the old one is still accepted for "
        "--grace-seconds (default 86400; 0: at once never again)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("code")
        parser.add_argument("--grace-seconds", type=int, default=86400)

    def handle(self, *args: Any, **options: Any) -> None:
        shop = Shop.objects.filter(code=options["code"]).first()
        if shop is None:
            raise CommandError(f"Unknown shop {options['code']!r}.")
        grace = options["grace_seconds"]
        try:
            secret = shop_secret_rotate(shop=shop, grace_seconds=grace)
        except ValidationError as exc:
            lines = [f"{field}: {' '.join(msgs)}" for field, msgs in exc.message_dict.items()]
            raise CommandError("\n".join(lines)) from exc
        until = shop.api_secret_previous_until
        self.stderr.write(
            f"New API secret for shop {shop.code}; the old one is accepted until "
            f"{until.isoformat(timespec='seconds')}."
            if until is not None
            else f"New API secret for shop {shop.code}; the old one is no longer accepted."
        )
        # Only the secret on stdout, so a script can capture it.
        self.stdout.write(secret)
