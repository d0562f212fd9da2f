"""python manage.py seed_demo [--shop demo]: the demo shop, its staff, products and strategies."""

from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from strategies.demo.seed import DEMO_SHOP_CODE, demo_seed, role_label


class Command(BaseCommand):
    help = (
        "Creates or completes the demo shop (staff logins, 12 products, strategies in every "
        "scenario). Safe to run again: nothing that exists is duplicated."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--shop", default=DEMO_SHOP_CODE, help="the demo shop's code")

    def handle(self, *args: Any, **options: Any) -> None:
        seed = demo_seed(code=options["shop"])
        new = _(", ").join(created_text(what, n) for what, n in seed.created.items() if n)
        self.stdout.write(
            _("Demo shop %(code)s ready (%(new)s).")
            % {"code": seed.shop.code, "new": new or _("nothing new")}
        )
        for username, password, role in seed.logins:
            who = (
                _("%(role)s of %(code)s") % {"role": role_label(role), "code": seed.shop.code}
                if role
                else _("platform operator (superuser)")
            )
            self.stdout.write(
                _("  login %(username)s / %(password)s  (%(who)s)")
                % {"username": username, "password": password, "who": who}
            )


def created_text(what: str, n: int) -> str:
    """ "1 product", "12 products": each kind with its own plural (ngettext)."""
    texts = {
        "shops": ngettext("%(n)d shop", "%(n)d shops", n),
        "users": ngettext("%(n)d login", "%(n)d logins", n),
        "products": ngettext("%(n)d product", "%(n)d products", n),
        "strategies": ngettext("%(n)d strategy", "%(n)d strategies", n),
    }
    return texts.get(what, f"%(n)d {what}") % {"n": n}
