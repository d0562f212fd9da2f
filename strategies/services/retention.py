"""Retention of the decision log (docs/scaling.md "Retention"): old months of ``Decision`` rows
(and their trial hits) are written to a gzip'd JSON-lines file, then deleted in batches.

What is never touched: the ledgers (``DailyLedger``: what each strategy approved and paid each
shop-local day, the caps' consumption) and everything that still is, or records, money in
flight. A decision is archived only when it is settled for good:

- decided before the first day of the month given (00:00 UTC), at least ``MIN_AGE_DAYS`` ago
  (the per-buyer limit reads 30 days of approvals);
- its request is final (executed, failed, refused, handled elsewhere, superseded): nothing
  waits in the review queue, for a confirmation or for an execution;
- no person confirmed its execution (``ExecutionConfirmation`` is an audit record of money and
  keeps its decision) and no review of its request is pending or unsettled;
- no request on the same order arrived since the cut-off, so the order-total check (what one
  order already had approved) still reads every approval it needs.

The file holds one JSON object a line in the shape of Django's serializers (model, primary key,
fields; times to the microsecond, amounts as exact decimal strings), so
``decisions_restore`` puts the rows back exactly as they were. A row is deleted only after the
whole file is written, read back and counted, and only if it is still archivable then.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from django.core import serializers
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from strategies.models import (
    AfterSaleRequest,
    Decision,
    ExecutionConfirmation,
    RequestStatus,
    Review,
    ReviewResult,
    TrialHit,
)

MIN_AGE_DAYS = 90
FINAL_STATUSES = (
    RequestStatus.EXECUTED,
    RequestStatus.FAILED,
    RequestStatus.REFUSED,
    RequestStatus.DONE_ELSEWHERE,
    RequestStatus.SUPERSEDED,
)
_MONTH = re.compile(r"([0-9]{4})-([0-9]{2})")


class RetentionError(ValueError):
    """Bad input: the message says what to give instead."""


@dataclass(frozen=True)
class ArchiveResult:
    cutoff: dt.datetime
    decisions: int  # archived (or, in a dry run, that would be)
    trial_hits: int
    kept: int  # older than the cut-off but not settled for good: left in place
    deleted: int
    path: Path | None


def month_start(value: str) -> dt.datetime:
    """``YYYY-MM`` -> the first instant of that month in UTC."""
    match = _MONTH.fullmatch(value.strip())
    if not match or not 1 <= int(match.group(2)) <= 12 or int(match.group(1)) < 2000:
        raise RetentionError(
            _("--before must be a month as YYYY-MM (e.g. 2026-01), not %(value)r.")
            % {"value": value}
        )
    return dt.datetime(int(match.group(1)), int(match.group(2)), 1, tzinfo=dt.UTC)


def check_cutoff(cutoff: dt.datetime, *, now: dt.datetime | None = None) -> None:
    now = now or timezone.now()
    if cutoff > now - dt.timedelta(days=MIN_AGE_DAYS):
        raise RetentionError(
            _(
                "%(month)s is too recent: only decisions older than %(days)d days are archived "
                "(the per-buyer limit and the order totals read them). Give an earlier month."
            )
            % {"month": cutoff.strftime("%Y-%m"), "days": MIN_AGE_DAYS}
        )


def archivable(cutoff: dt.datetime) -> QuerySet[Decision]:
    """The decisions before ``cutoff`` that are settled for good (see the module's docstring)."""
    newer_on_order = AfterSaleRequest.objects.filter(
        order_id=OuterRef("request__order_id"), received_at__gte=cutoff
    )
    open_review = Review.objects.filter(
        request_id=OuterRef("request_id"),
        result__in=[ReviewResult.PENDING, ReviewResult.UNKNOWN],
    )
    confirmed = ExecutionConfirmation.objects.filter(decision_id=OuterRef("pk"))
    return (
        Decision.objects.filter(decided_at__lt=cutoff, request__status__in=FINAL_STATUSES)
        .exclude(Exists(newer_on_order))
        .exclude(Exists(open_review))
        .exclude(Exists(confirmed))
        .order_by()
    )


def _id_batches(cutoff: dt.datetime, batch: int) -> Iterator[list[int]]:
    last = 0
    while True:
        ids = list(
            archivable(cutoff)
            .filter(pk__gt=last)
            .order_by("pk")
            .values_list("pk", flat=True)[:batch]
        )
        if not ids:
            return
        yield ids
        last = ids[-1]


def default_path(cutoff: dt.datetime) -> Path:
    return Path(f"decisions-before-{cutoff:%Y-%m}.jsonl.gz")


def decisions_archive(
    *,
    before: str,
    path: Path | None = None,
    batch: int = 5000,
    dry_run: bool = False,
    now: dt.datetime | None = None,
) -> ArchiveResult:
    """Archives the settled decisions decided before the month ``before`` (``YYYY-MM``) to
    ``path`` (gzip'd JSON lines), then deletes them in batches of ``batch``."""
    cutoff = month_start(before)
    check_cutoff(cutoff, now=now)
    if batch < 1:
        raise RetentionError(_("--batch-size must be at least 1."))
    older = Decision.objects.filter(decided_at__lt=cutoff).count()
    if dry_run:
        count = archivable(cutoff).count()
        hits = TrialHit.objects.filter(decision__in=archivable(cutoff)).count()
        return ArchiveResult(cutoff, count, hits, older - count, 0, None)
    path = path or default_path(cutoff)
    if path.exists():
        raise RetentionError(
            _("%(path)s already exists: give another --output, never one to overwrite.")
            % {"path": path}
        )
    if not path.parent.is_dir():
        raise RetentionError(_("No folder %(folder)s for the archive.") % {"folder": path.parent})
    partial = path.with_name(path.name + ".partial")
    batches: list[list[int]] = []
    count = hits = 0
    try:
        with gzip.open(partial, "wt", encoding="utf-8") as out:
            for ids in _id_batches(cutoff, batch):
                decisions = Decision.objects.filter(pk__in=ids).order_by("pk")
                trial = TrialHit.objects.filter(decision_id__in=ids).order_by("pk")
                # Decisions first: a restore inserts each trial hit after its decision.
                _write(out, decisions)
                _write(out, trial)
                batches.append(ids)
                count += len(ids)
                hits += trial.count()
            out.flush()
        with partial.open("rb") as f:
            os.fsync(f.fileno())
        written = sum(1 for _ in _objects(partial))
        if written != count + hits:
            raise RetentionError(
                _("Rows in the archive: %(written)d, expected: %(expected)d. Nothing was deleted.")
                % {"written": written, "expected": count + hits}
            )
        partial.replace(path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    deleted = 0
    for ids in batches:
        with transaction.atomic():
            # Still archivable now (a new request on the order keeps its old approvals).
            doomed = archivable(cutoff).filter(pk__in=ids)
            TrialHit.objects.filter(decision__in=doomed).delete()
            deleted += doomed.delete()[1].get(Decision._meta.label, 0)
    return ArchiveResult(cutoff, count, hits, older - count, deleted, path)


class _ExactEncoder(DjangoJSONEncoder):
    """Django's encoder rounds times to milliseconds; an archive keeps every microsecond."""

    def default(self, o: Any) -> Any:
        if isinstance(o, dt.datetime):
            return o.isoformat()
        return super().default(o)


def _write(out: IO[str], rows: QuerySet) -> None:
    for obj in serializers.serialize("python", rows.iterator()):
        out.write(json.dumps(obj, cls=_ExactEncoder, ensure_ascii=False) + "\n")


def _objects(path: Path) -> Iterator[serializers.base.DeserializedObject]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        try:
            yield from serializers.deserialize("python", (json.loads(line) for line in f))
        except json.JSONDecodeError as exc:
            raise serializers.base.DeserializationError(str(exc)) from exc


@dataclass(frozen=True)
class RestoreResult:
    restored: int
    present: int  # already in the database (a restore run twice, or a row never deleted)


def decisions_restore(*, path: Path) -> RestoreResult:
    """Puts an archive's rows back, primary keys and all; rows already present are left."""
    if not path.is_file():
        raise RetentionError(_("No archive file %(path)s.") % {"path": path})
    restored = present = 0
    try:
        with transaction.atomic():
            for item in _objects(path):
                model = type(item.object)
                if model not in (Decision, TrialHit):
                    raise RetentionError(
                        _("%(path)s holds %(model)s rows: not a decision archive.")
                        % {"path": path, "model": model._meta.label}
                    )
                if model.objects.filter(pk=item.object.pk).exists():
                    present += 1
                    continue
                item.save()
                restored += 1
    except (OSError, EOFError, serializers.base.DeserializationError) as exc:
        raise RetentionError(
            _("%(path)s is not a readable decision archive: %(error)s")
            % {"path": path, "error": exc}
        ) from exc
    return RestoreResult(restored, present)
