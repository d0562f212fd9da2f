"""python manage.py import_strategies --shop CODE FILE: stores every strategy of the file, or
none when one entry is invalid (the error names the entry and the field)."""

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from strategies.models import Shop
from strategies.services.strategy_files import strategies_import


class Command(BaseCommand):
    help = "Imports a JSON strategy file into a shop, all or nothing."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--shop", required=True, help="the shop's code")
        parser.add_argument("file", help="the strategy file (JSON)")

    def handle(self, *args: Any, **options: Any) -> None:
        shop = Shop.objects.filter(code=options["shop"]).first()
        if shop is None:
            raise CommandError(f"No shop with code {options['shop']!r}.")
        try:
            entries = json.loads(
                Path(options["file"]).read_text(encoding="utf-8"), parse_float=Decimal
            )
        except (OSError, ValueError) as exc:
            raise CommandError(f"Cannot read {options['file']}: {exc}") from exc
        try:
            created = strategies_import(shop=shop, entries=entries)
        except ValidationError as exc:
            lines = [m for messages in exc.message_dict.values() for m in messages]
            raise CommandError("Nothing was imported:\n" + "\n".join(lines)) from exc
        self.stdout.write(f"Imported {len(created)} strategies into {shop.code}.")
