"""python manage.py create_shop CODE --name NAME [--timezone ...] [--phone ...] [--email ...]
[--secret ...]: creates a shop and prints its API secret (stored encrypted, never shown again)."""

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.translation import gettext as _

from strategies.services.shops import shop_create


class Command(BaseCommand):
    help = "Creates a shop and prints its API secret (generated when not given)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("code")
        parser.add_argument("--name", required=True)
        parser.add_argument("--timezone", default="Asia/Shanghai")
        parser.add_argument("--phone", default="")
        parser.add_argument("--email", default="")
        parser.add_argument(
            "--secret", default=None, help="at least 32 characters (default: 43 random ones)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            shop, secret = shop_create(
                code=options["code"],
                name=options["name"],
                timezone=options["timezone"],
                phone=options["phone"],
                email=options["email"],
                secret=options["secret"],
            )
        except ValidationError as exc:
            lines = [f"{field}: {' '.join(msgs)}" for field, msgs in exc.message_dict.items()]
            raise CommandError("\n".join(lines)) from exc
        self.stderr.write(
            _("Created shop %(code)s (%(name)s). API secret:")
            % {"code": shop.code, "name": shop.name}
        )
        self.stdout.write(secret)
