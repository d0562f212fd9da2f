"""python manage.py rotate_shop_secret CODE [--grace-seconds 86400]: prints a new API secret for
the shop; the old one still signs for the grace period, then never again (API.md 1.1)."""

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.translation import gettext as _

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
            raise CommandError(_("No shop with code %(code)r.") % {"code": options["code"]})
        grace = options["grace_seconds"]
        try:
            secret = shop_secret_rotate(shop=shop, grace_seconds=grace)
        except ValidationError as exc:
            lines = [f"{field}: {' '.join(msgs)}" for field, msgs in exc.message_dict.items()]
            raise CommandError("\n".join(lines)) from exc
        until = shop.api_secret_previous_until
        self.stderr.write(
            _("New API secret for shop %(code)s; the old one is accepted until %(until)s.")
            % {"code": shop.code, "until": until.isoformat(timespec="seconds")}
            if until is not None
            else _("New API secret for shop %(code)s; the old one is no longer accepted.")
            % {"code": shop.code}
        )
        # Only the secret on stdout, so a script can capture it.
        self.stdout.write(secret)
