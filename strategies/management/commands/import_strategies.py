"""python manage.py import_strategies --shop CODE FILE [--keep-status]: stores every strategy of
the file, or none when one entry is invalid (the error names the entry and the field, in the
interface language). Imported strategies arrive inactive unless ``--keep-status``."""

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.translation import gettext as _

from strategies.models import Shop
from strategies.services.strategy_files import strategies_import, strategies_import_summary


class Command(BaseCommand):
    help = "Imports a JSON strategy file into a shop, all or nothing; strategies arrive inactive."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--shop", required=True, help="the shop's code")
        parser.add_argument("file", help="the strategy file (JSON)")
        parser.add_argument(
            "--keep-status",
            action="store_true",
            help="keep each strategy's status from the file (restoring a backup)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        shop = Shop.objects.filter(code=options["shop"]).first()
        if shop is None:
            raise CommandError(_("No shop with code %(code)r.") % {"code": options["shop"]})
        path = options["file"]
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, ValueError) as exc:
            raise CommandError(
                _("Cannot read %(file)s: %(error)s") % {"file": path, "error": exc}
            ) from exc
        try:
            # JSON numbers with a fraction become Decimal, never float.
            entries = json.loads(text, parse_float=Decimal)
        except RecursionError as exc:
            raise CommandError(
                _("%(file)s is nested too deeply to be a strategy file.") % {"file": path}
            ) from exc
        except ValueError as exc:
            raise CommandError(
                _("%(file)s is not valid JSON: %(error)s") % {"file": path, "error": exc}
            ) from exc
        try:
            created = strategies_import(
                shop=shop, entries=entries, keep_status=options["keep_status"]
            )
        except ValidationError as exc:
            lines = [m for messages in exc.message_dict.values() for m in messages]
            raise CommandError(_("Nothing was imported:") + "\n" + "\n".join(lines)) from exc
        self.stdout.write(
            strategies_import_summary(
                count=len(created), shop=shop, kept_status=options["keep_status"]
            )
        )
