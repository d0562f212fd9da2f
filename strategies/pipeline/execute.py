"""Carrying an approved decision out through the gateway, exactly once.

Claim, then act: a conditional UPDATE takes a lease on the decision (only one of several copies
of the task running at once wins it) and, in the same statement, marks the attempt as sent
before it is (``rows.EXECUTION_CLAIM``: a worker that dies at any moment after the claim counts
as possibly-sent, hence ambiguous on the next attempt, even if it died before calling), the
gateway is called OUTSIDE any transaction, and the outcome is recorded by conditional updates
guarded by the state (``executed_at``/``failed_at`` still empty, request still ``approved``).
The ``Idempotency-Key`` is the decision's own, so a retry after a crash mid-call is recognised
by the platform.

The lease outlives the attempt: the approval call ends by ``ATOM_GATEWAY_TIMEOUT`` after the
claim and the status check by twice that (each a whole-call deadline), and the lease is at
least that plus a margin, so two calls for one decision are never in flight at once.

An attempt whose outcome nobody knows (a timeout, a connection lost after sending, a worker
that died mid-call) is recorded on the decision (``execution_ambiguous_at``). After one, a
refusal is not final: the platform is asked whether it approved (API.md "Outbound") and, if it
cannot say, the request becomes ``unknown`` with its reservation kept until a person confirms
"paid" or "not paid" (``decision_confirm_paid`` / ``decision_confirm_not_paid``, audited).
A reservation is never released without a definite "not paid".
"""

from __future__ import annotations

import datetime as dt
import enum
import logging
import random
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction
from django.db.models import DateTimeField, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from strategies.models import (
    AfterSaleRequest,
    Channel,
    Decision,
    ExecutionConfirmation,
    Outcome,
    RequestStatus,
)
from strategies.pipeline.channels import channel_note_error
from strategies.pipeline.ledger import ledger_release
from strategies.pipeline.rows import (
    ClaimedExecution,
    decision_claim_execution,
    decision_mark_executed,
)
from strategies.platforms.base import Gateway, GatewayError
from strategies.platforms.channel import ApproveState
from strategies.platforms.generic.gateways import gateway_get
from strategies.platforms.registry import adapter_for

logger = logging.getLogger(__name__)


class ExecutionState(enum.Enum):
    EXECUTED = "executed"  # this call carried it out (or learnt the platform had)
    FAILED = "failed"  # the gateway refused for good (this call recorded it)
    UNKNOWN = "unknown"  # refused after an ambiguous attempt and the platform could not say
    # Connected marketplaces (PLATFORMS.md): the request changed or ended before we acted, or
    # the platform had refunded it without us. Nothing moved for us: the reservation released.
    SUPERSEDED = "superseded"
    DONE_ELSEWHERE = "done_elsewhere"
    DONE = "done"  # nothing to do: already executed/failed, or not an approval
    BUSY = "busy"  # another copy holds the lease; try again after ``retry_after``


@dataclass(frozen=True)
class ExecutionResult:
    state: ExecutionState
    retry_after: float = 0.0


# A claim lost to a holder that gives the lease back at that very moment is tried once more.
CLAIM_ATTEMPTS = 2


def lease_seconds_required() -> float:
    """The shortest safe lease: an attempt's two calls (the approval, then the status check),
    each bounded by the gateway timeout, plus the margin for the clocks of other workers."""
    return 2 * float(settings.ATOM_GATEWAY_TIMEOUT) + float(
        settings.ATOM_EXECUTION_LEASE_MARGIN_SECONDS
    )


def execution_lease_seconds() -> float:
    # Never shorter than one attempt, even with settings that `check` refuses (E002).
    return max(float(settings.ATOM_EXECUTION_LEASE_SECONDS), lease_seconds_required())


# An attempt claimed when its decision was inserted (``decide.Decided``) is carried out only
# this soon after: its decider's COMMIT and post-commit work (an alert's publish while the broker
# is down can take seconds) come out of the lease, and a channel's calls are each bounded from
# their own start, not from the claim. Older, it is given back and claimed afresh, so the
# lease's margin stays for the workers' clocks.
PRECLAIMED_MAX_AGE_SECONDS = 0.5


def decision_execute(
    *,
    decision_id: int,
    now: dt.datetime | None = None,
    retry_in: float = 0.0,
    claimed: ClaimedExecution | None = None,
    claimed_started: float = 0.0,
) -> ExecutionResult:
    """Executes ``decision_id`` once. Raises ``GatewayError(permanent=False)`` when a retry may
    succeed; the task owns the retry policy and says in ``retry_in`` when it will try again:
    the lease is kept until then, so the sweeper does not start a second retry chain while
    this one waits out its back-off (it takes over only once the lease has expired).

    ``claimed``: the attempt is already claimed (``decide.Decided``, its lease set at
    ``claimed_started``, a ``time.monotonic()``): no claim here, unless it is older than
    ``PRECLAIMED_MAX_AGE_SECONDS`` (then it is given back, unsent, and claimed as usual)."""
    if claimed is not None:
        if claimed_started <= 0 or claimed.lease_until is None:
            raise ValueError(
                "a claimed attempt needs the time.monotonic() its lease was set at, and that lease"
            )
        if time.monotonic() - claimed_started > PRECLAIMED_MAX_AGE_SECONDS:
            logger.info("decision %s: its first attempt waited too long: claimed anew", decision_id)
            # Only while the lease is still the insert's: a caller that stalled past it may
            # find the sweeper's claim (maybe mid-call), left alone; the claim below is busy.
            _attempt_not_sent(decision_id=decision_id, lease_until=claimed.lease_until)
            claimed = None
    # Both deadlines count from before the claim, so they end inside the lease it takes.
    started = claimed_started if claimed is not None else time.monotonic()
    now = now or timezone.now()
    claim: ClaimedExecution | None = claimed
    for _ in range(0 if claimed is not None else CLAIM_ATTEMPTS):
        claim = decision_claim_execution(
            decision_id=decision_id,
            now=now,
            lease_until=now + dt.timedelta(seconds=execution_lease_seconds()),
        )
        if claim is not None:
            break
        still_open = (
            Decision.objects.filter(
                pk=decision_id,
                outcome=Outcome.APPROVED,
                executed_at__isnull=True,
                failed_at__isnull=True,
                request__status=RequestStatus.APPROVED,
            )
            .values("execution_lease_until")
            .first()
        )
        if still_open is None:
            return ExecutionResult(ExecutionState.DONE)
        lease = still_open["execution_lease_until"]
        if lease is not None and lease > now:
            return ExecutionResult(
                ExecutionState.BUSY, retry_after=(lease - now).total_seconds() + 1
            )
        # The holder gave the lease back between our claim and this read (its attempt ended):
        # still open and free, so claim again rather than stop as if it were done.
        now = timezone.now()
    if claim is None:
        return ExecutionResult(ExecutionState.BUSY, retry_after=1.0)

    if claim.channel_id is not None:
        return _execute_on_channel(
            claim=claim,
            decision_id=decision_id,
            channel_id=claim.channel_id,
            now=now,
            retry_in=retry_in,
        )
    try:
        gateway = gateway_get()
    except BaseException:  # misconfigured: nothing was sent, the lease is given back
        _attempt_not_sent(decision_id=decision_id)
        raise
    budget = float(settings.ATOM_GATEWAY_TIMEOUT)
    try:
        gateway.approve(
            aftersale_id=claim.aftersale_id,
            action=claim.action,
            amount=claim.amount,
            idempotency_key=claim.idempotency_key,
            deadline=started + budget,
        )
    except GatewayError as exc:
        if exc.permanent:
            return _refused(
                claim=claim,
                decision_id=decision_id,
                gateway=gateway,
                reason=exc.message,
                deadline=started + 2 * budget,
            )
        retry_at = timezone.now() + dt.timedelta(seconds=retry_in) if retry_in > 0 else None
        _attempt_end(decision_id=decision_id, ambiguous=exc.ambiguous, lease_until=retry_at)
        logger.warning("execution of decision %s will be retried: %s", decision_id, exc.message)
        raise
    except BaseException:
        # Anything unexpected (a bug, a soft time limit) may have cut the call after it was
        # sent: ambiguous. The lease is given back for the retry.
        _attempt_end(decision_id=decision_id, ambiguous=True, lease_until=None)
        raise

    done = decision_mark_executed(
        decision_id=decision_id, request_id=claim.request_id, now=timezone.now()
    )
    return ExecutionResult(ExecutionState.EXECUTED if done else ExecutionState.DONE)


def _execute_on_channel(
    *,
    claim: ClaimedExecution,
    decision_id: int,
    channel_id: int,
    now: dt.datetime,
    retry_in: float,
) -> ExecutionResult:
    """The same lease and recording as the generic gateway, through the shop's marketplace
    channel: its ``approve`` re-reads the request, acts on the fresh data and says what became
    of it (``ApproveState``). One attempt makes at most five calls (read, act, read, act, read);
    each is bounded by 2/5 of the gateway timeout, so all of them end within the two timeouts
    the lease covers."""
    budget = float(settings.ATOM_GATEWAY_TIMEOUT)
    try:
        row = Channel.objects.get(pk=channel_id)
        adapter = adapter_for(row, deadline=budget * 2 / 5)
    except BaseException:  # misconfigured: nothing was sent, the lease is given back
        _attempt_not_sent(decision_id=decision_id)
        raise
    try:
        result = adapter.approve(
            aftersale_id=claim.aftersale_id,
            action=claim.action,
            amount=claim.amount,
            request_type=claim.request_type,
            after_ambiguous=claim.after_ambiguous,
        )
    except BaseException:
        _attempt_end(decision_id=decision_id, ambiguous=True, lease_until=None)
        raise
    state = result.state
    reason = f"{row.platform}: {result.message}" if result.message else row.platform
    if state == ApproveState.EXECUTED:
        done = decision_mark_executed(
            decision_id=decision_id, request_id=claim.request_id, now=timezone.now()
        )
        return ExecutionResult(ExecutionState.EXECUTED if done else ExecutionState.DONE)
    if state == ApproveState.SUPERSEDED:
        _decision_close(decision_id=decision_id, reason=reason, status=RequestStatus.SUPERSEDED)
        return ExecutionResult(ExecutionState.SUPERSEDED)
    if state == ApproveState.DONE_ELSEWHERE:
        _decision_close(decision_id=decision_id, reason=reason, status=RequestStatus.DONE_ELSEWHERE)
        return ExecutionResult(ExecutionState.DONE_ELSEWHERE)
    if state == ApproveState.FAILED:
        decision_fail(decision_id=decision_id, reason=reason)
        return ExecutionResult(ExecutionState.FAILED)
    if state == ApproveState.UNKNOWN:
        _mark_unknown(
            decision_id=decision_id,
            request_id=claim.request_id,
            reason=f"{reason}; the platform did not say whether it approved: a person confirms "
            "paid or not paid",
        )
        return ExecutionResult(ExecutionState.UNKNOWN)
    # RETRY: nothing was carried out this time; the task's back-off brings it back.
    wait = max(retry_in, result.retry_after)
    retry_at = timezone.now() + dt.timedelta(seconds=wait) if wait > 0 else None
    _attempt_end(decision_id=decision_id, ambiguous=False, lease_until=retry_at)
    if result.auth_failed:
        channel_note_error(row=row, error=reason, auth=True)
    logger.warning("execution of decision %s will be retried: %s", decision_id, reason)
    raise GatewayError(reason, permanent=False)


def _attempt_not_sent(*, decision_id: int, lease_until: dt.datetime | None = None) -> None:
    """The claim marked this attempt sent, but nothing was sent (a misconfigured gateway or
    channel; a pre-claimed attempt too old to use): the mark and the lease are given back.
    ``lease_until``: only while the decision's lease is still that one, and it is still open."""
    still_ours = Decision.objects.filter(pk=decision_id)
    if lease_until is not None:
        still_ours = still_ours.filter(
            execution_lease_until=lease_until, executed_at__isnull=True, failed_at__isnull=True
        )
    still_ours.update(execution_sent_at=None, execution_lease_until=None)


def _attempt_end(*, decision_id: int, ambiguous: bool, lease_until: dt.datetime | None) -> None:
    """Records that this attempt is over and the decision still open: retried later."""
    updates: dict[str, Any] = {"execution_sent_at": None, "execution_lease_until": lease_until}
    if ambiguous:
        updates["execution_ambiguous_at"] = Coalesce(
            "execution_ambiguous_at", Value(timezone.now(), output_field=DateTimeField())
        )
    Decision.objects.filter(pk=decision_id).update(**updates)


def _refused(
    *,
    claim: ClaimedExecution,
    decision_id: int,
    gateway: Gateway,
    reason: str,
    deadline: float,
) -> ExecutionResult:
    """A 4xx. Final only if no earlier attempt of this decision was ambiguous: after one, the
    refusal may be the platform's way of saying it already did it, so it is asked."""
    earlier_ambiguous = Decision.objects.filter(
        pk=decision_id, execution_ambiguous_at__isnull=False
    ).exists()
    if not earlier_ambiguous:
        decision_fail(decision_id=decision_id, reason=reason)
        return ExecutionResult(ExecutionState.FAILED)
    approved = gateway.approved(aftersale_id=claim.aftersale_id, deadline=deadline)
    if approved is True:
        logger.warning(
            "decision %s: refused (%s) but the platform says it approved: executed",
            decision_id,
            reason,
        )
        done = decision_mark_executed(
            decision_id=decision_id, request_id=claim.request_id, now=timezone.now()
        )
        return ExecutionResult(ExecutionState.EXECUTED if done else ExecutionState.DONE)
    if approved is False:
        decision_fail(
            decision_id=decision_id,
            reason=f"{reason}; after an ambiguous attempt the platform says it did not approve",
        )
        return ExecutionResult(ExecutionState.FAILED)
    _mark_unknown(
        decision_id=decision_id,
        request_id=claim.request_id,
        reason=f"{reason}; after an ambiguous attempt the platform did not say whether it "
        "approved: a person confirms paid or not paid",
    )
    return ExecutionResult(ExecutionState.UNKNOWN)


def _mark_unknown(*, decision_id: int, request_id: int, reason: str) -> None:
    now = timezone.now()
    with transaction.atomic():
        Decision.objects.filter(
            pk=decision_id, executed_at__isnull=True, failed_at__isnull=True
        ).update(failure_reason=reason[:2000], execution_lease_until=None, execution_sent_at=None)
        AfterSaleRequest.objects.filter(pk=request_id, status=RequestStatus.APPROVED).update(
            status=RequestStatus.UNKNOWN, updated_at=now
        )
    # The reservation stays: money may have moved. Staff see it in the admin.
    logger.error("decision %s left unknown, reservation kept: %s", decision_id, reason)


def decision_fail(*, decision_id: int, reason: str) -> bool:
    """Records a permanent refusal: request ``failed``, reason kept, reservation released once.

    Harmless when repeated (the conditional update on ``failed_at`` claims it; the release has
    its own claim). Returns True if this call recorded the failure.
    """
    return _decision_close(decision_id=decision_id, reason=reason, status=RequestStatus.FAILED)


def _decision_close(*, decision_id: int, reason: str, status: str) -> bool:
    """Closes an approval that was not carried out by us (``failed``, ``superseded``,
    ``done_elsewhere``): its request moves to ``status``, its reservation is released once."""
    now = timezone.now()
    with transaction.atomic():
        failed = Decision.objects.filter(
            pk=decision_id, executed_at__isnull=True, failed_at__isnull=True
        ).update(
            failed_at=now,
            failure_reason=reason[:2000],
            execution_lease_until=None,
        )
        if failed:
            request_id = Decision.objects.values_list("request_id", flat=True).get(pk=decision_id)
            AfterSaleRequest.objects.filter(pk=request_id, status=RequestStatus.APPROVED).update(
                status=status, updated_at=now
            )
        # Outside the claim above: a copy that crashed between the two still releases.
        released = ledger_release(decision_id=decision_id, now=now)
    logger.warning(
        "decision %s closed %s (%s); reservation released: %s",
        decision_id,
        status,
        reason,
        released,
    )
    return bool(failed)


# --- a person confirms what the platform could not ------------------------------------------


def decision_confirm_paid(*, decision_id: int, user: AbstractBaseUser) -> bool:
    """A person confirms that an ``unknown`` execution was paid: the request becomes
    ``executed``, the reservation stays. Audited; True if this call confirmed it, False if the
    request is not (or no longer) waiting for a confirmation."""
    return _confirm(decision_id=decision_id, user=user, verdict=ExecutionConfirmation.Verdict.PAID)


def decision_confirm_not_paid(*, decision_id: int, user: AbstractBaseUser) -> bool:
    """A person confirms that an ``unknown`` execution was NOT paid: the request becomes
    ``failed`` and its reservation is released, once. Audited; True if this call confirmed."""
    return _confirm(
        decision_id=decision_id, user=user, verdict=ExecutionConfirmation.Verdict.NOT_PAID
    )


def decision_confirm_by_platform(*, decision_id: int, paid: bool) -> bool:
    """The platform's status check, asked again later, settled an ``unknown`` execution: the
    same record as a person's confirmation, with no user and no user name (the audit shows
    "the platform's status check"). True if this call confirmed it."""
    verdict = ExecutionConfirmation.Verdict.PAID if paid else ExecutionConfirmation.Verdict.NOT_PAID
    return _confirm(decision_id=decision_id, user=None, verdict=verdict)


def _confirm(*, decision_id: int, user: AbstractBaseUser | None, verdict: str) -> bool:
    now = timezone.now()
    paid = verdict == ExecutionConfirmation.Verdict.PAID
    username = user.get_username() if user is not None else ""
    by = username or "the platform's status check"
    with transaction.atomic():
        # The decision first, then its request: the order the execution writes them in.
        decision = (
            Decision.objects.select_for_update()
            .filter(pk=decision_id, executed_at__isnull=True, failed_at__isnull=True)
            .only("pk", "request_id", "failure_reason")
            .first()
        )
        if decision is None:
            return False
        moved = AfterSaleRequest.objects.filter(
            pk=decision.request_id, status=RequestStatus.UNKNOWN
        ).update(status=RequestStatus.EXECUTED if paid else RequestStatus.FAILED, updated_at=now)
        if not moved:
            return False  # never from any other status: only `unknown` waits for a person
        ExecutionConfirmation.objects.create(
            decision_id=decision_id,
            verdict=verdict,
            user_id=user.pk if user is not None else None,
            username=username,
            confirmed_at=now,
        )
        if paid:
            Decision.objects.filter(pk=decision_id).update(executed_at=now)
        else:
            Decision.objects.filter(pk=decision_id).update(
                failed_at=now,
                failure_reason="; ".join(
                    filter(None, [decision.failure_reason, f"confirmed not paid by {by}"])
                )[:2000],
            )
            ledger_release(decision_id=decision_id, now=now)
    logger.warning("decision %s confirmed %s by %s", decision_id, verdict, by)
    return True


def retry_backoff(retries: int) -> float:
    """Exponential back-off with jitter, capped well under the broker's visibility timeout."""
    cap = float(settings.ATOM_RETRY_MAX_DELAY_SECONDS)
    delay = min(float(settings.ATOM_RETRY_BASE_DELAY_SECONDS) * (2**retries), cap)
    return delay * (0.5 + random.random() / 2)


def decision_execute_after_decision(
    decision: Decision, *, claimed: ClaimedExecution | None = None, claimed_started: float = 0.0
) -> str:
    """Once ``decision`` is committed (no lock held), executes it if it is an approval, in the
    process that decided it (issue 16). Only a retry goes to the broker, as the execution task,
    which takes the lease over; what it returns is the Celery decision task's result.
    ``claimed``: its first attempt, claimed when it was inserted (``decision_execute``)."""
    from strategies.pipeline import publish
    from strategies.platforms.base import GatewayError

    if decision.outcome != Outcome.APPROVED:
        return decision.outcome
    countdown = retry_backoff(0)
    try:
        result = decision_execute(
            decision_id=decision.pk,
            retry_in=countdown,
            claimed=claimed,
            claimed_started=claimed_started,
        )
    except GatewayError:
        # The lease is kept until then: the execution task's chain takes it from here.
        publish.publish_now(publish.EXECUTE_TASK, [decision.pk], countdown=countdown)
        return "retrying"
    if result.state is ExecutionState.BUSY:
        publish.publish_now(publish.EXECUTE_TASK, [decision.pk], countdown=result.retry_after)
    return result.state.value
