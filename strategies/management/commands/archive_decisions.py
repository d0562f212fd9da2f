"""python manage.py archive_decisions --before YYYY-MM [--output FILE] [--batch-size N]
[--dry-run] | --restore FILE: the decision log's retention (strategies/services/retention.py,
docs/scaling.md "Retention"). Ledgers and unsettled money are never touched."""

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.translation import gettext as _

from strategies.services.retention import RetentionError, decisions_archive, decisions_restore


class Command(BaseCommand):
    help = (
        "Archives the settled decisions decided before a month (YYYY-MM, UTC) to a gzip'd "
        "JSON-lines file, then deletes them in batches; ledgers are never touched. --restore "
        "puts an archive back."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--before", help="YYYY-MM: decisions decided before this month")
        parser.add_argument("--output", type=Path, help="the archive (default in this folder)")
        parser.add_argument("--batch-size", type=int, default=5000)
        parser.add_argument("--dry-run", action="store_true", help="only count")
        parser.add_argument("--restore", type=Path, help="an archive to put back")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            if options["restore"] is not None:
                if options["before"]:
                    raise CommandError(_("Give either --before or --restore, not both."))
                restored = decisions_restore(path=options["restore"])
                self.stdout.write(
                    _("Restored from %(path)s: rows: %(restored)d; already present: %(present)d.")
                    % {
                        "restored": restored.restored,
                        "path": options["restore"],
                        "present": restored.present,
                    }
                )
                return
            if not options["before"]:
                raise CommandError(_("Give --before YYYY-MM (or --restore FILE)."))
            result = decisions_archive(
                before=options["before"],
                path=options["output"],
                batch=options["batch_size"],
                dry_run=options["dry_run"],
            )
        except RetentionError as exc:
            raise CommandError(str(exc)) from exc
        values = {
            "decisions": result.decisions,
            "hits": result.trial_hits,
            "cutoff": result.cutoff.isoformat(),
            "kept": result.kept,
            "deleted": result.deleted,
            "path": result.path,
        }
        # Counts after a colon: right in every language without plural forms.
        if options["dry_run"]:
            self.stdout.write(
                _(
                    "Dry run, decided before %(cutoff)s: decisions to archive: %(decisions)d, "
                    "their trial results: %(hits)d; older but not settled for good, to keep: "
                    "%(kept)d. Nothing was written or deleted."
                )
                % values
            )
            return
        self.stdout.write(
            _(
                "Decided before %(cutoff)s: decisions archived: %(decisions)d, their trial "
                "results: %(hits)d, decisions deleted: %(deleted)d; older but not settled for "
                "good, kept: %(kept)d. Archive: %(path)s. Ledgers are unchanged."
            )
            % values
        )
