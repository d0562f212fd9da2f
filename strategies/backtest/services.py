"""Backtest runs: start one (the admin), execute it (the Celery task), cancel it (the page).

- **One run at a time per shop**: a partial unique constraint on the shop's queued or running
  run; a second start is refused with a clear error. A run whose worker died (no heartbeat for
  ``STALE_AFTER``) no longer blocks the shop: the next start marks it failed.
- **Claim, then act**: the task claims its run with one conditional UPDATE (queued, or running
  with a stale heartbeat); a redelivered copy finds nothing to claim and stops.
- **Progress** every ``PROGRESS_EVERY`` requests, one UPDATE that also moves the heartbeat; a
  cancel asked meanwhile stops the run there.
- Nothing live is touched: the replay reads; the only writes are the run and its changes.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime, parse_time
from django.utils.translation import gettext as _

from strategies.backtest import loaders
from strategies.backtest.loaders import Member
from strategies.backtest.replay import Period, Replay, Replayed
from strategies.backtest.report import ReportBuilder, money
from strategies.matching import StrategySnapshot
from strategies.models import (
    BacktestChange,
    BacktestKind,
    BacktestRun,
    BacktestStatus,
    Shop,
    Strategy,
)
from strategies.pipeline.publish import BACKTEST_TASK, publish_on_commit

logger = logging.getLogger(__name__)

Actor = AbstractBaseUser | AnonymousUser | None

PERIOD_DAYS = (7, 30, 90)
PROGRESS_EVERY = 5000
MAX_STORED_CHANGES = 10_000
CHANGES_BATCH = 500
STALE_AFTER = dt.timedelta(minutes=5)
ACTIVE_STATUSES = (BacktestStatus.QUEUED, BacktestStatus.RUNNING)


# --- the replayed set, stored on the run -----------------------------------------------------

_DATETIMES = {"valid_from", "valid_until"}
_TIMES = {"window_start", "window_end"}


def _encode_value(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return money(value)
    if isinstance(value, frozenset):
        return sorted(value)
    return value


def snapshot_encode(snapshot: StrategySnapshot) -> dict[str, Any]:
    return {f.name: _encode_value(getattr(snapshot, f.name)) for f in dataclasses.fields(snapshot)}


def snapshot_decode(data: dict[str, Any]) -> StrategySnapshot:
    values: dict[str, Any] = {}
    for f in dataclasses.fields(StrategySnapshot):
        if f.name not in data:
            continue  # a field added since the run was stored: its default
        value = data[f.name]
        if value is not None and f.name in _DATETIMES:
            value = parse_datetime(value)
        elif value is not None and f.name in _TIMES:
            value = parse_time(value)
        elif isinstance(f.default, frozenset):
            value = frozenset(value or ())
        elif value is not None and (isinstance(f.default, Decimal) or f.name.endswith("_cap")):
            value = Decimal(value)
        values[f.name] = value
    return StrategySnapshot(**values)


def members_encode(members: Sequence[Member]) -> list[dict[str, Any]]:
    return [{"snapshot": snapshot_encode(m.snapshot), "version": m.version} for m in members]


def members_decode(data: Sequence[dict[str, Any]]) -> list[Member]:
    return [Member(snapshot=snapshot_decode(m["snapshot"]), version=m["version"]) for m in data]


# --- the candidate sets ---------------------------------------------------------------------


def set_with(members: Sequence[Member], snapshot: StrategySnapshot) -> list[Member]:
    """The set with ``snapshot`` in place of the strategy of its id (unsaved), or added."""
    out = [m for m in members if m.snapshot.id != snapshot.id]
    out.append(Member(snapshot=snapshot, version=None))
    return out


def set_reordered(
    members: Sequence[Member], *, scenario: str, ordered_ids: Sequence[int]
) -> list[Member]:
    """The set with ``scenario``'s strategies in the order given (the ids must be exactly the
    scenario's, first to last)."""
    mine = {m.snapshot.id for m in members if m.snapshot.scenario == scenario}
    if sorted(ordered_ids) != sorted(mine) or len(set(ordered_ids)) != len(ordered_ids):
        raise ValidationError(
            {"order": [_("Give every strategy of the scenario a different priority.")]}
        )
    position = {sid: n for n, sid in enumerate(ordered_ids, start=1)}
    return [
        Member(
            snapshot=dataclasses.replace(m.snapshot, position=position[m.snapshot.id]),
            version=m.version
            if m.snapshot.position == position[m.snapshot.id]
            else None,  # its priority changed: not the stored version any more
        )
        if m.snapshot.id in position
        else m
        for m in members
    ]


# --- start, cancel ---------------------------------------------------------------------------


def _expire_stale(*, shop: Shop, now: dt.datetime) -> None:
    BacktestRun.objects.filter(
        shop=shop, status__in=ACTIVE_STATUSES, heartbeat_at__lt=now - STALE_AFTER
    ).update(
        status=BacktestStatus.FAILED,
        finished_at=now,
        error="The worker running it stopped answering.",
    )


def backtest_start(
    *,
    shop: Shop,
    members: Sequence[Member],
    kind: str,
    title: str,
    days: int,
    strategy: Strategy | None = None,
    scenario: str = "",
    actor: Actor = None,
    now: dt.datetime | None = None,
) -> BacktestRun:
    """Queues a backtest of the ``days`` whole days before today through ``members``.

    Raises ``ValidationError`` (nothing stored) for a period not offered, or when a backtest
    of the shop is already queued or running.
    """
    now = now or timezone.now()
    if days not in PERIOD_DAYS:
        raise ValidationError({"days": [_("Choose 7, 30 or 90 days.")]})
    if kind not in BacktestKind.values:
        raise ValidationError({"kind": [_("Unknown kind of backtest.")]})
    period = Period.last_days(days=days, zone=shop.zone, now=now)
    user = actor if actor is not None and getattr(actor, "is_authenticated", False) else None
    try:
        with transaction.atomic():
            _expire_stale(shop=shop, now=now)
            run = BacktestRun.objects.create(
                shop=shop,
                strategy=strategy,
                scenario=scenario,
                kind=kind,
                title=title[:200],
                first_day=period.first_day,
                last_day=period.last_day,
                strategies=members_encode(members),
                created_by=user,  # type: ignore[misc]
                created_at=now,
                heartbeat_at=now,
            )
            publish_on_commit(BACKTEST_TASK, run.pk)
    except IntegrityError as exc:
        running = BacktestRun.objects.filter(shop=shop, status__in=ACTIVE_STATUSES).first()
        if running is None:  # pragma: no cover - the other run finished in between
            raise
        raise ValidationError(
            _(
                "A backtest is already running for this shop (%(title)s, started %(at)s): "
                "wait for it to finish or cancel it."
            )
            % {
                "title": running.title,
                "at": timezone.localtime(running.created_at, shop.zone).strftime("%H:%M"),
            }
        ) from exc
    return run


def backtest_cancel(*, run: BacktestRun, now: dt.datetime | None = None) -> bool:
    """Stops a queued or running backtest: a queued one at once, a running one at its next
    progress update. True if this call asked it; repeats are harmless."""
    now = now or timezone.now()
    if BacktestRun.objects.filter(pk=run.pk, status=BacktestStatus.QUEUED).update(
        status=BacktestStatus.CANCELLED, cancel_requested_at=now, finished_at=now
    ):
        return True
    return bool(
        BacktestRun.objects.filter(
            pk=run.pk, status=BacktestStatus.RUNNING, cancel_requested_at__isnull=True
        ).update(cancel_requested_at=now)
    )


# --- execute (the task) ------------------------------------------------------------------------


def _claim(*, run_id: int, now: dt.datetime) -> bool:
    return bool(
        BacktestRun.objects.filter(
            Q(status=BacktestStatus.QUEUED)
            | Q(status=BacktestStatus.RUNNING, heartbeat_at__lt=now - STALE_AFTER),
            pk=run_id,
            cancel_requested_at__isnull=True,
        ).update(
            status=BacktestStatus.RUNNING,
            started_at=now,
            heartbeat_at=now,
            processed=0,
            error="",
        )
    )


class _Changes:
    """The changed requests, stored in batches, at most ``MAX_STORED_CHANGES`` of them."""

    def __init__(self, run: BacktestRun, members: Sequence[Member]) -> None:
        self.run = run
        self.names = {m.snapshot.id: m.snapshot.name for m in members}
        self.batch: list[BacktestChange] = []
        self.stored = 0
        self.seen = 0

    def __call__(self, item: Replayed, kind: str) -> None:
        self.seen += 1
        if self.stored >= MAX_STORED_CHANGES:
            return
        stored = item.stored
        hit = item.hit
        moment = item.moment()
        baseline = stored.strategy_id if item.baseline_approved else None
        self.batch.append(
            BacktestChange(
                run=self.run,
                request_id=stored.request_id,
                aftersale_id=stored.aftersale_id,
                order_id=stored.order_id,
                decided_at=stored.now,
                amount=stored.amount,
                scenario=item.verdict.scenario if item.verdict and hit else "",
                kind=kind,
                baseline_strategy_id=baseline,
                baseline_strategy_name=self.names.get(baseline, "") if baseline else "",
                candidate_strategy_id=hit.id if hit else None,
                candidate_strategy_name=hit.name if hit else "",
                reality=stored.status,
                moment={
                    "now": moment.now.isoformat(),
                    "consumed": {str(k): money(v) for k, v in moment.consumed.items()},
                    "buyer_approvals": moment.buyer_approvals,
                    "order_refunded": money(moment.order_refunded),
                },
                codes=item.verdict.codes() if item.verdict else [],
            )
        )
        self.stored += 1
        if len(self.batch) >= CHANGES_BATCH:
            self.flush()

    def flush(self) -> None:
        if self.batch:
            BacktestChange.objects.bulk_create(self.batch)
            self.batch = []


def _edited(*, run: BacktestRun, period: Period, members: Sequence[Member]) -> list[dict]:
    ids = [m.snapshot.id for m in members if m.snapshot.id > 0]
    rows = loaders.strategy_changes(shop=run.shop, start=period.start, end=period.end, ids=ids)
    return [
        {
            "strategy_id": row.id,
            "name": row.name,
            "history_id": row.history_id,
            "at": row.history_date.isoformat(),
            "type": row.history_type,
            "user": row.history_user.get_username() if row.history_user else "",
        }
        for row in rows
    ]


def backtest_execute(
    *,
    run_id: int,
    now: dt.datetime | None = None,
    progress_every: int = PROGRESS_EVERY,
    on_progress: Callable[[int], None] | None = None,
) -> BacktestRun | None:
    """Runs the backtest ``run_id`` if this call claims it; None if there was nothing to do
    (another copy runs it, it finished, or it was cancelled). ``on_progress(processed)`` is
    called after each progress update, before the cancel is looked at."""
    if not _claim(run_id=run_id, now=now or timezone.now()):
        return None
    run = BacktestRun.objects.select_related("shop").get(pk=run_id)
    try:
        _execute(run, progress_every=progress_every, on_progress=on_progress)
    except Exception as exc:
        logger.exception("backtest %s failed", run_id)
        BacktestRun.objects.filter(pk=run_id).update(
            status=BacktestStatus.FAILED, finished_at=timezone.now(), error=str(exc)[:2000]
        )
    run.refresh_from_db()
    return run


def _execute(
    run: BacktestRun, *, progress_every: int, on_progress: Callable[[int], None] | None
) -> None:
    shop = run.shop
    members = members_decode(run.strategies)
    period = Period(run.first_day, run.last_day, shop.zone)
    BacktestChange.objects.filter(run=run).delete()  # a restart after a lost worker
    total = loaders.requests_count(shop_id=shop.pk, start=period.start, end=period.end)
    BacktestRun.objects.filter(pk=run.pk).update(total=total)
    changes = _Changes(run, members)
    builder = ReportBuilder(members=members, period=period, on_change=changes)
    cancelled = False
    if total:
        replay = Replay(shop_id=shop.pk, strategies=[m.snapshot for m in members], period=period)
        for n, item in enumerate(replay, start=1):
            builder.add(item)
            if n % progress_every == 0:
                _progress(run=run, processed=n)
                if on_progress is not None:
                    on_progress(n)
                if _cancel_asked(run=run):
                    cancelled = True
                    break
    changes.flush()
    report = builder.as_json(edited=_edited(run=run, period=period, members=members))
    shadows = shadow_scenarios(run)
    report["shadow_scenarios"] = sorted(shadows) if isinstance(shadows, frozenset) else []
    report["stored_changes"] = changes.stored
    report["changes_truncated"] = changes.seen > changes.stored
    BacktestRun.objects.filter(pk=run.pk).update(
        status=BacktestStatus.CANCELLED if cancelled else BacktestStatus.DONE,
        processed=builder.requests,
        total=max(total, builder.requests),
        report=report,
        finished_at=timezone.now(),
        heartbeat_at=timezone.now(),
    )


def shadow_scenarios(run: BacktestRun) -> bool | frozenset[str]:
    """Whose shadows a run counts: the changed scenario's strategies (trying every strategy
    after every hit costs a third of the matcher's time), every one for the set as it is."""
    return frozenset({run.scenario}) if run.scenario else True


def _progress(*, run: BacktestRun, processed: int) -> None:
    """Saves the progress and moves the heartbeat (committed at once: the page polls it)."""
    BacktestRun.objects.filter(pk=run.pk).update(processed=processed, heartbeat_at=timezone.now())


def _cancel_asked(*, run: BacktestRun) -> bool:
    return BacktestRun.objects.filter(pk=run.pk, cancel_requested_at__isnull=False).exists()
