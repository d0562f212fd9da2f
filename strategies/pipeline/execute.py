"""Carrying an approved decision out through the gateway, exactly once.

Claim, then act: a conditional UPDATE takes a short lease on the decision (only one of several
copies of the task running at once wins it), the gateway is called OUTSIDE any transaction, and
the outcome is recorded by conditional updates guarded by the state (``executed_at``/``failed_at``
still empty, request still ``approved``). The ``Idempotency-Key`` is the decision's own, so a
retry after a crash mid-call is recognised by the platform.
"""

from __future__ import annotations

import datetime as dt
import enum
import logging
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from strategies.models import AfterSaleRequest, Decision, Outcome, RequestStatus
from strategies.pipeline.ledger import ledger_release
from strategies.pipeline.rows import decision_claim_execution, decision_mark_executed
from strategies.platforms.base import GatewayError
from strategies.platforms.generic.gateways import gateway_get

logger = logging.getLogger(__name__)


class ExecutionState(enum.Enum):
    EXECUTED = "executed"  # this call carried it out
    FAILED = "failed"  # the gateway refused for good (this call recorded it)
    DONE = "done"  # nothing to do: already executed/failed, or not an approval
    BUSY = "busy"  # another copy holds the lease; try again after ``retry_after``


@dataclass(frozen=True)
class ExecutionResult:
    state: ExecutionState
    retry_after: float = 0.0


def _lease_seconds() -> float:
    # The lease must outlive one gateway call (connect + read timeouts), or two copies could
    # both call.
    return max(float(settings.ATOM_EXECUTION_LEASE_SECONDS), 2 * settings.ATOM_GATEWAY_TIMEOUT + 1)


def decision_execute(
    *, decision_id: int, now: dt.datetime | None = None, retry_in: float = 0.0
) -> ExecutionResult:
    """Executes ``decision_id`` once. Raises ``GatewayError(permanent=False)`` when a retry may
    succeed; the task owns the retry policy and says in ``retry_in`` when it will try again:
    the lease is kept until then, so the sweeper does not start a second retry chain while
    this one waits out its back-off (it takes over only once the lease has expired)."""
    now = now or timezone.now()
    claim = decision_claim_execution(
        decision_id=decision_id,
        now=now,
        lease_until=now + dt.timedelta(seconds=_lease_seconds()),
    )
    if claim is None:
        lease = (
            Decision.objects.filter(
                pk=decision_id,
                outcome=Outcome.APPROVED,
                executed_at__isnull=True,
                failed_at__isnull=True,
                request__status=RequestStatus.APPROVED,
            )
            .values_list("execution_lease_until", flat=True)
            .first()
        )
        if lease is None:
            return ExecutionResult(ExecutionState.DONE)
        return ExecutionResult(
            ExecutionState.BUSY, retry_after=max((lease - now).total_seconds(), 0.0) + 1
        )

    try:
        gateway_get().approve(
            aftersale_id=claim.aftersale_id,
            action=claim.action,
            amount=claim.amount,
            idempotency_key=claim.idempotency_key,
        )
    except GatewayError as exc:
        if exc.permanent:
            decision_fail(decision_id=decision_id, reason=exc.message)
            return ExecutionResult(ExecutionState.FAILED)
        retry_at = timezone.now() + dt.timedelta(seconds=retry_in) if retry_in > 0 else None
        Decision.objects.filter(pk=decision_id).update(execution_lease_until=retry_at)
        logger.warning("execution of decision %s will be retried: %s", decision_id, exc.message)
        raise
    except BaseException:
        # Anything unexpected (a bug, a soft time limit): give the lease back for the retry.
        Decision.objects.filter(pk=decision_id).update(execution_lease_until=None)
        raise

    with transaction.atomic():
        done = decision_mark_executed(
            decision_id=decision_id, request_id=claim.request_id, now=timezone.now()
        )
    return ExecutionResult(ExecutionState.EXECUTED if done else ExecutionState.DONE)


def decision_fail(*, decision_id: int, reason: str) -> bool:
    """Records a permanent refusal: request ``failed``, reason kept, reservation released once.

    Harmless when repeated (the conditional update on ``failed_at`` claims it; the release has
    its own claim). Returns True if this call recorded the failure.
    """
    now = timezone.now()
    with transaction.atomic():
        failed = Decision.objects.filter(
            pk=decision_id, executed_at__isnull=True, failed_at__isnull=True
        ).update(failed_at=now, failure_reason=reason[:2000], execution_lease_until=None)
        if failed:
            request_id = Decision.objects.values_list("request_id", flat=True).get(pk=decision_id)
            AfterSaleRequest.objects.filter(pk=request_id, status=RequestStatus.APPROVED).update(
                status=RequestStatus.FAILED, updated_at=now
            )
        # Outside the claim above: a copy that crashed between the two still releases.
        released = ledger_release(decision_id=decision_id, now=now)
    logger.warning(
        "decision %s failed for good (%s); reservation released: %s", decision_id, reason, released
    )
    return bool(failed)
