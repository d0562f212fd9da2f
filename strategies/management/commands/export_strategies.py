"""python manage.py export_strategies --shop CODE [-o FILE]: the shop's strategies as a strategy
file (API.md), to stdout or FILE."""

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.translation import gettext as _

from strategies.models import Shop
from strategies.services.strategy_files import strategies_export


class Command(BaseCommand):
    help = "Writes a shop's strategies as a JSON strategy file."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--shop", required=True, help="the shop's code")
        parser.add_argument("-o", "--output", default=None, help="file to write (default: stdout)")

    def handle(self, *args: Any, **options: Any) -> None:
        shop = Shop.objects.filter(code=options["shop"]).first()
        if shop is None:
            raise CommandError(_("No shop with code %(code)r.") % {"code": options["shop"]})
        text = json.dumps(strategies_export(shop=shop), ensure_ascii=False, indent=2) + "\n"
        if options["output"]:
            Path(options["output"]).write_text(text, encoding="utf-8")
        else:
            self.stdout.write(text, ending="")
