"""The decision service: claims a request, runs the pure matcher, reserves the amount on the
strategy's daily ledger and records the decision, in ONE short transaction.

- **Claim**: the request row is locked (``SELECT ... FOR UPDATE``) and only a ``received``
  request is decided; a replayed or racing task waits for the winner and returns its decision.
- **Constant queries**: the request with its shop, order and items (locked); the shop's
  strategies of the scenarios the request falls under with their products, latest history id
  and today's ledger, and what the order already had approved; the buyer's lock and approvals
  (only when the shop limits buyers); then one statement that reserves an approval's amount
  and, only if it fits, inserts the decision and sets the request's status (a decision for
  review: the insert and the status alone). The count does not grow with strategies or past
  decisions. The reads, the reservation and the decision's insert are plain SQL (``rows``:
  there the ORM cost several times the database's work); the buyer's count, trial hits and the
  cap-refusal mark are the ORM.
- **Cap**: one upsert of the (strategy, shop-local day) ledger row whose UPDATE is conditional
  on the strategy's cap as committed at that moment; if a concurrent worker filled it first (or
  the merchant just lowered the cap), the matcher runs again with that strategy marked full, so
  the next strategy by priority may take the request.
- **Order total**: the order row is locked with the request, so two requests on one order are
  decided in turn and their approvals together never pass the order's total.
- **Which day**: the shop-local day of NOW, the moment of approval (when the money moves), not
  the request's ``applied_at``: a request applied at 23:59 and decided at 00:00 counts against
  the new day, whose cap is the one still open. (Windows and day ranges are still judged on
  ``applied_at`` by the matcher, as PRODUCT.md says.)
- **Per-buyer limit**: when any strategy of the shop limits buyers, every decision of the shop
  takes a transaction-level advisory lock per (shop, buyer) on PostgreSQL before counting, so
  concurrent requests of one buyer, in any scenario, are decided one after the other and never
  pass the limit (SQLite serializes writers anyway).
- **After commit**: execution (``strategies.execute_decision``) and, when the reservation
  crossed 95% or 100% of the cap or the day's first request was refused for the cap,
  ``notifications.check_ledger_alerts`` are enqueued by name.
  The gateway is never called with a row lock held.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from strategies.matching import (
    DAILY_CAP_REACHED,
    TRIAL_WOULD_HIT,
    Evaluation,
    StrategySnapshot,
    evaluate,
    scenarios_for,
    unmatched_explanation,
)
from strategies.models import (
    CAP_REACHED_PERCENT,
    CAP_WARNING_PERCENT,
    Decision,
    Outcome,
    RequestStatus,
    StrategyStatus,
    TrialHit,
)
from strategies.pipeline.execute import execution_lease_seconds
from strategies.pipeline.ledger import ledger_mark_cap_refused
from strategies.pipeline.publish import ALERT_TASK, EXECUTE_TASK, publish_on_commit
from strategies.pipeline.rows import (
    ClaimedExecution,
    LoadedRequest,
    LoadedStrategy,
    ReservedApproval,
    buyer_lock,
    decision_insert,
    decision_insert_reserving,
    request_claim_and_load,
    request_lock_and_load,
    strategies_load,
)
from strategies.selectors import shop_today

logger = logging.getLogger(__name__)

# Fractions of the daily cap whose crossing asks notifications to check its alerts.
ALERT_THRESHOLDS = tuple(Decimal(p) / 100 for p in (CAP_WARNING_PERCENT, CAP_REACHED_PERCENT))
BUYER_WINDOW = dt.timedelta(days=30)


def buyer_approvals_count(*, shop_id: int, buyer_id: str, now: dt.datetime) -> int:
    """Auto-approvals of one buyer in the shop over the last 30 days (failed ones, whose
    reservation was released, do not count)."""
    return Decision.objects.filter(
        shop_id=shop_id,
        buyer_id=buyer_id,
        outcome=Outcome.APPROVED,
        decided_at__gte=now - BUYER_WINDOW,
        released_at__isnull=True,
    ).count()


def _crossed_alert_threshold(*, old: Decimal, new: Decimal, cap: Decimal) -> bool:
    return any(old < cap * t <= new for t in ALERT_THRESHOLDS)


def _note_cap_refusals(
    *,
    evaluation: Evaluation,
    loaded: dict[int, LoadedStrategy],
    consumed: dict[int, Decimal],
    now: dt.datetime,
) -> None:
    """The first request of the day that an active strategy, already past 95% of its cap,
    passed over for the cap marks its ledger and asks for the 100% alert: from then on its
    requests go to manual review even if the approvals never add up to the cap exactly."""
    for explanation in evaluation.explanations:
        if explanation.code != DAILY_CAP_REACHED:
            continue
        strategy = loaded.get(explanation.strategy_id)
        if strategy is None or strategy.ledger_id is None or strategy.cap_refused:
            continue
        cap = strategy.snapshot.daily_cap
        used = consumed.get(strategy.snapshot.id, Decimal("0.00"))
        if strategy.snapshot.status != StrategyStatus.ACTIVE or used < cap * ALERT_THRESHOLDS[0]:
            continue
        if ledger_mark_cap_refused(ledger_id=strategy.ledger_id, now=now):
            publish_on_commit(ALERT_TASK, strategy.ledger_id)


def _filed_under(evaluation: Evaluation, scenarios: tuple[str, ...]) -> str:
    """The scenario a manual review is filed under, so the monitor finds it by scenario too:
    the first whose strategies were tried, else the first it fell under ("" for none)."""
    if evaluation.explanations:
        return evaluation.explanations[0].scenario
    return scenarios[0] if scenarios else ""


def _record_trial_hits(*, decision: Decision, evaluation: Evaluation, day: dt.date) -> None:
    """One row per trial strategy that would have approved (the monitor counts and finds them)."""
    hits = [
        TrialHit(
            decision_id=decision.pk,
            shop_id=decision.shop_id,
            strategy_id=e.strategy_id,
            day=day,
            amount=decision.amount,
        )
        for e in evaluation.explanations
        if e.code == TRIAL_WOULD_HIT
    ]
    if hits:
        TrialHit.objects.bulk_create(hits)


class NothingToDecide(Exception):
    """The request ended on its marketplace (superseded, handled elsewhere) before it was
    decided: there is no decision to make or return."""


@dataclass(frozen=True, slots=True)
class Decided:
    decision: Decision
    # ``claim_execution``: the approval's first execution attempt, claimed in the statement that
    # inserted it, for this caller to carry out at once (``execute.decision_execute``).
    execution: ClaimedExecution | None = None
    started: float = 0.0  # time.monotonic() when that claim's lease was set


def request_decide(
    *, request_id: int, now: dt.datetime | None = None, enqueue_execution: bool = True
) -> Decision:
    """Decides request ``request_id`` once; a replay returns the decision already made.

    ``enqueue_execution=False``: an approval's execution is NOT published after commit; the
    caller (the decision task) carries it out itself once this returns (issue 16), and the
    sweeper still finds an approval nobody executed."""
    return request_decide_claiming(
        request_id=request_id, now=now, enqueue_execution=enqueue_execution, claim_execution=False
    ).decision


def request_decide_claiming(
    *,
    request_id: int,
    enqueue_execution: bool,
    claim_execution: bool,
    now: dt.datetime | None = None,
) -> Decided:
    """``request_decide``; with ``claim_execution``, a new approval is inserted with its first
    execution attempt claimed, as ``request_claim_and_decide`` does, for the caller (the Celery
    decision task) to carry out at once (``Decided.execution``; None on a replay)."""
    now = now or timezone.now()
    with transaction.atomic():
        request = request_lock_and_load(request_id=request_id)
        return _decide_locked(
            request,
            now=now,
            enqueue_execution=enqueue_execution,
            claim_execution=claim_execution,
        )


class ClaimedDecisionFailed(Exception):
    """Deciding the claimed request ``request_id`` raised (the exception is the cause); its
    transaction is rolled back, so it is still ``received``."""

    def __init__(self, request_id: int) -> None:
        super().__init__(request_id)
        self.request_id = request_id


def request_claim_and_decide(
    *,
    request_id: int | None = None,
    fresh_after: dt.datetime | None = None,
    now: dt.datetime | None = None,
    enqueue_execution: bool = False,
    claim_execution: bool = False,
) -> Decided | None:
    """ATOM_DISPATCH=postgres: claims request ``request_id`` (or else the oldest ``received``
    request changed after ``fresh_after``) if it is still ``received`` and no other decider
    holds it (its row lock, in the statement that reads it) and decides it as
    ``request_decide`` would; None when there is nothing to claim. Any failure once a request
    is claimed, its COMMIT's included, is raised as ``ClaimedDecisionFailed`` (rolled back).

    ``claim_execution``: a new approval is inserted with its first execution attempt claimed
    (lease and start set, as the execution claim sets them), for the caller to carry out at
    once: one conditional UPDATE and its COMMIT fewer per approval (issue 16). A caller that
    dies first leaves a lease that expires, then the sweeper executes it, as after a death
    mid-call."""
    now = now or timezone.now()
    claimed: int | None = None
    try:
        with transaction.atomic():
            request = request_claim_and_load(request_id=request_id, fresh_after=fresh_after)
            if request is None:
                return None
            claimed = request.id
            return _decide_locked(
                request,
                now=now,
                enqueue_execution=enqueue_execution,
                claim_execution=claim_execution,
            )
    except NothingToDecide:
        raise
    except Exception as exc:
        if claimed is None:  # the claim itself failed: the database, not this request
            raise
        raise ClaimedDecisionFailed(claimed) from exc


def _decide_locked(
    request: LoadedRequest,
    *,
    now: dt.datetime,
    enqueue_execution: bool,
    claim_execution: bool = False,
) -> Decided:
    """Decides ``request``, read and row-locked in the current transaction."""
    if request.status != RequestStatus.RECEIVED:
        decided = Decision.objects.filter(request_id=request.id).first()
        if decided is None:
            raise NothingToDecide(request.id)
        return Decided(decided)

    shop = request.shop
    today = shop_today(shop=shop, now=now)
    snapshot = request.snapshot
    scenarios = scenarios_for(snapshot)
    loaded, order_refunded = strategies_load(
        shop_id=shop.pk, scenarios=scenarios, day=today, order_id=request.order_id
    )
    by_id = {s.snapshot.id: s for s in loaded}
    buyer_approvals = 0
    if request.shop_limits_buyers:
        # Taken whenever ANY strategy of the shop limits buyers, even if none of this
        # request's does: its approval counts against the limited ones.
        buyer_lock(shop_id=shop.pk, buyer_id=snapshot.buyer_id)
        if any(s.snapshot.max_per_buyer_30d is not None for s in loaded):
            buyer_approvals = buyer_approvals_count(
                shop_id=shop.pk, buyer_id=snapshot.buyer_id, now=now
            )

    consumed = {s.snapshot.id: s.consumed for s in loaded if s.consumed is not None}
    reserved: ReservedApproval | None = None
    started = 0.0
    while True:
        evaluation = evaluate(
            snapshot,
            [s.snapshot for s in loaded],
            zone=shop.zone,
            consumed_today=consumed,
            buyer_approvals_30d=buyer_approvals,
            order_refunded=order_refunded,
        )
        hit = evaluation.hit
        if hit is None:
            break
        # The approval as it will be recorded, inserted by the statement that reserves its
        # amount, only if that fits the cap.
        version = by_id[hit.id].version
        decision = _decision(
            request, evaluation, now=now, scenarios=scenarios, hit=hit, version=version
        )
        if claim_execution:
            # The lease counts from here, so that the attempt's deadlines end inside it.
            started, sent_at = time.monotonic(), timezone.now()
            decision.execution_attempts = 1
            decision.execution_sent_at = sent_at
            decision.execution_lease_until = sent_at + dt.timedelta(
                seconds=execution_lease_seconds()
            )
        reserved = decision_insert_reserving(
            decision,
            day=today,
            request_status=RequestStatus.APPROVED,
            request_type=snapshot.type,
            claim_execution=claim_execution,
        )
        if reserved is not None:
            break
        # A concurrent worker filled the cap first: pass this strategy over.
        logger.info("strategy %s full for request %s; trying the next", hit.id, request.id)
        consumed[hit.id] = max(hit.daily_cap, consumed.get(hit.id, Decimal("0.00")))

    if reserved is None:
        decision = _decision(request, evaluation, now=now, scenarios=scenarios)
        decision_insert(decision, request_status=RequestStatus.MANUAL_REVIEW)
    _record_trial_hits(decision=decision, evaluation=evaluation, day=today)

    _note_cap_refusals(evaluation=evaluation, loaded=by_id, consumed=consumed, now=now)
    if reserved is not None and hit is not None:
        if enqueue_execution:
            publish_on_commit(EXECUTE_TASK, decision.pk)
        consumed_now = reserved.reservation.consumed
        if _crossed_alert_threshold(
            old=consumed_now - snapshot.amount, new=consumed_now, cap=hit.daily_cap
        ):
            publish_on_commit(ALERT_TASK, reserved.reservation.ledger_id)
    return Decided(decision, reserved.execution if reserved else None, started)


def _decision(
    request: LoadedRequest,
    evaluation: Evaluation,
    *,
    now: dt.datetime,
    scenarios: tuple[str, ...],
    hit: StrategySnapshot | None = None,
    version: int | None = None,
) -> Decision:
    """The unsaved decision on ``request``: an approval by ``hit`` (its ledger set by the
    reservation), or else one for manual review, filed under ``scenarios``."""
    snapshot = request.snapshot
    explanations = [e.as_json() for e in evaluation.explanations]
    if hit is None:
        unmatched = unmatched_explanation(snapshot, evaluation)
        if unmatched is not None:
            explanations.append(unmatched)
    return Decision(
        request_id=request.id,
        shop_id=request.shop_id,
        aftersale_id=request.aftersale_id,
        order_id=request.order_id,
        reason=snapshot.reason,
        outcome=Outcome.APPROVED if hit else Outcome.MANUAL_REVIEW,
        scenario=evaluation.scenario or _filed_under(evaluation, scenarios),
        strategy_id=hit.id if hit else None,
        strategy_name=hit.name if hit else "",
        strategy_version=version,
        action=evaluation.action if hit else "",
        amount=snapshot.amount,
        explanations=explanations,
        buyer_id=snapshot.buyer_id,
        decided_at=now,
    )
