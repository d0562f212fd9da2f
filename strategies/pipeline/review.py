"""The review queue's actions: a person approves, refuses or marks as handled elsewhere what no
strategy took (and what ended ``failed``), exactly once, through the shop's gateway.

Claim, then act, as the execution service does (``execute.py``):

- ``review_submit`` claims the request: inside one transaction it locks the request, re-reads
  it (a request that changed since the person saw it is not acted on: they see it again), checks
  the order-total rule for an approval and inserts the ``Review``. A partial unique index allows
  one pending or done review per request, so of two staff clicking at once one insert wins and
  the other is told someone else did it: one platform call. The task is published on COMMIT.
- ``review_execute`` (the Celery task's service) takes the review's lease with a conditional
  UPDATE, calls the gateway OUTSIDE any transaction with the review's own ``Idempotency-Key``,
  and records the outcome by conditional updates guarded by ``result = 'pending'``.

A review left ``unknown`` (the platform would not say whether an attempt went through) holds
its request until a person confirms it: ``review_confirm_paid`` / ``review_confirm_not_paid``,
claimed by a conditional UPDATE on ``result = 'unknown'`` and audited (``ReviewConfirmation``).

Money: a manual approval reserves nothing in any strategy's daily ledger (the strategies' caps
say what ATOM may do on its own; a person's approval is not that), but the order-total rule
still holds: approved decisions not released plus approvals by people never exceed the order's
total. The dashboard counts manual approvals in the shop's "refunded today".
"""

from __future__ import annotations

import datetime as dt
import enum
import logging
import time
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import Case, DateTimeField, F, Q, Sum, TextField, Value, When
from django.db.models.expressions import Expression
from django.db.models.functions import Concat
from django.utils import timezone

from strategies.models import (
    Action,
    AfterSaleRequest,
    AfterSaleType,
    Channel,
    Decision,
    ExecutionConfirmation,
    Order,
    OrderItem,
    Outcome,
    RequestStatus,
    Review,
    ReviewAction,
    ReviewConfirmation,
    ReviewResult,
)
from strategies.pipeline.channels import channel_note_error, request_refresh
from strategies.pipeline.publish import REVIEW_TASK, publish_on_commit
from strategies.platforms.base import Gateway, GatewayError
from strategies.platforms.channel import ApproveResult, ApproveState
from strategies.platforms.generic.gateways import gateway_get
from strategies.platforms.registry import CONNECTED, adapter_for, stored_version

logger = logging.getLogger(__name__)

# What waits for a person. `unknown` is in the queue too, but its actions are the
# confirmations "paid" / "not paid" (execute.py; a review left unknown: ``_confirm`` below),
# not these.
ACTIONABLE = (RequestStatus.MANUAL_REVIEW, RequestStatus.FAILED)
# The results that hold a request (its unique index): no second review while one stands.
OPEN_OR_DONE = (ReviewResult.PENDING, ReviewResult.DONE, ReviewResult.UNKNOWN)
QUEUE_STATUSES = (RequestStatus.MANUAL_REVIEW, RequestStatus.FAILED, RequestStatus.UNKNOWN)

_FINAL_STATUS = {
    ReviewAction.APPROVE: RequestStatus.EXECUTED,
    ReviewAction.REFUSE: RequestStatus.REFUSED,
    ReviewAction.DONE_ELSEWHERE: RequestStatus.DONE_ELSEWHERE,
}


class Submitted(enum.Enum):
    QUEUED = "queued"  # claimed; the platform call follows in the background
    DONE = "done"  # handled elsewhere: recorded at once, nothing sent
    TAKEN = "taken"  # someone else's review of it is pending or done: nothing sent
    STALE = "stale"  # the request changed (or left the queue) since it was seen: re-read it
    OVER_TOTAL = "over_total"  # the order's total does not leave room for this approval
    NO_REASON = "no_reason"  # a refusal needs a reason


def gateway_for_shop(shop_id: int) -> Gateway:
    """The generic gateway (API.md) that carries out the actions of a shop without a connected
    marketplace channel; a connected shop's go through its channel (``_review_on_channel``),
    as the execution service's do."""
    return gateway_get()


def review_submit(
    *,
    request_id: int,
    action: str,
    user: AbstractBaseUser,
    seen_version: dt.datetime,
    reason: str = "",
) -> tuple[Submitted, Review | None]:
    """Claims ``request_id`` for ``action`` by ``user``; the platform call (approve, refuse)
    runs in a Celery task after COMMIT. Nothing is sent unless this returns ``QUEUED``."""
    reason = reason.strip()
    if action in (ReviewAction.REFUSE, ReviewAction.DONE_ELSEWHERE) and not reason:
        return Submitted.NO_REASON, None
    now = timezone.now()
    with transaction.atomic():
        request = (
            AfterSaleRequest.objects.select_for_update()
            .filter(pk=request_id)
            .only("pk", "shop_id", "order_id", "amount", "status", "updated_at")
            .first()
        )
        if request is None or request.status not in ACTIONABLE:
            return Submitted.STALE, None
        if Review.objects.filter(request_id=request_id, result__in=OPEN_OR_DONE).exists():
            return Submitted.TAKEN, None
        if request.updated_at != seen_version:
            return Submitted.STALE, None
        if action == ReviewAction.APPROVE and not _fits_order_total(request):
            return Submitted.OVER_TOTAL, None
        done = action == ReviewAction.DONE_ELSEWHERE
        try:
            with transaction.atomic():  # a savepoint: the loser of a race keeps its transaction
                review = Review.objects.create(
                    shop_id=request.shop_id,
                    request_id=request_id,
                    action=action,
                    reason=reason[:500],
                    amount=request.amount,
                    user_id=user.pk,
                    username=user.get_username(),
                    seen_version=seen_version,
                    created_at=now,
                    result=ReviewResult.DONE if done else ReviewResult.PENDING,
                    finished_at=now if done else None,
                )
        except IntegrityError:
            return Submitted.TAKEN, None
        if done:
            AfterSaleRequest.objects.filter(pk=request_id).update(
                status=RequestStatus.DONE_ELSEWHERE, updated_at=now
            )
            logger.info("request %s marked handled elsewhere by %s", request_id, review.username)
            return Submitted.DONE, review
        publish_on_commit(REVIEW_TASK, review.pk)
    return Submitted.QUEUED, review


def _fits_order_total(request: AfterSaleRequest) -> bool:
    """Whether approving ``request`` keeps the order's approvals within its total. Called with
    the request locked; the order row is locked too, so two approvals of one order's requests
    are judged one after the other."""
    Order.objects.select_for_update().filter(pk=request.order_id).values_list("pk").first()
    total = OrderItem.objects.filter(order_id=request.order_id).aggregate(
        total=Sum(F("price") * F("quantity"))
    )["total"] or Decimal("0.00")
    order_id = AfterSaleRequest.objects.values_list("order__order_id", flat=True).get(pk=request.pk)
    by_strategies = Decision.objects.filter(
        shop_id=request.shop_id,
        order_id=order_id,
        outcome=Outcome.APPROVED,
        released_at__isnull=True,
    ).aggregate(s=Sum("amount"))["s"] or Decimal("0.00")
    by_people = Review.objects.filter(
        request__order_id=request.order_id,
        action=ReviewAction.APPROVE,
        result__in=OPEN_OR_DONE,
    ).aggregate(s=Sum("amount"))["s"] or Decimal("0.00")
    return by_strategies + by_people + request.amount <= total


# --- carrying a review out ------------------------------------------------------------------


class ReviewState(enum.Enum):
    DONE = "done"
    FAILED = "failed"
    STALE = "stale"
    UNKNOWN = "unknown"
    NOTHING = "nothing"  # already finished, or not ours to do
    BUSY = "busy"


@dataclass(frozen=True)
class ReviewOutcome:
    state: ReviewState
    retry_after: float = 0.0


def _lease_seconds() -> float:
    return max(
        float(settings.ATOM_EXECUTION_LEASE_SECONDS),
        2 * float(settings.ATOM_GATEWAY_TIMEOUT)
        + float(settings.ATOM_EXECUTION_LEASE_MARGIN_SECONDS),
    )


# A claim lost to a holder that gives the lease back at that very moment is tried once more.
CLAIM_ATTEMPTS = 2


def _review_claim(*, review_id: int, now: dt.datetime) -> bool:
    """Takes the lease of a pending review in one conditional UPDATE."""
    return bool(
        Review.objects.filter(
            Q(lease_until__isnull=True) | Q(lease_until__lt=now),
            pk=review_id,
            result=ReviewResult.PENDING,
        ).update(
            lease_until=now + dt.timedelta(seconds=_lease_seconds()),
            attempts=F("attempts") + 1,
            # A previous attempt still marked as sent never reported: ambiguous.
            ambiguous_at=_coalesce_ambiguous(),
            sent_at=now,
        )
    )


def review_execute(*, review_id: int, retry_in: float = 0.0) -> ReviewOutcome:
    """Carries out ``review_id`` once. Raises ``GatewayError(permanent=False)`` when a retry may
    succeed (the task retries; the lease is kept until ``retry_in`` has passed)."""
    started = time.monotonic()
    for _ in range(CLAIM_ATTEMPTS):
        now = timezone.now()
        if _review_claim(review_id=review_id, now=now):
            break
        still_pending = Review.objects.filter(pk=review_id, result=ReviewResult.PENDING).values(
            "lease_until"
        )
        row = still_pending.first()
        if row is None:
            return ReviewOutcome(ReviewState.NOTHING)
        lease = row["lease_until"]
        if lease is not None and lease > now:
            return ReviewOutcome(ReviewState.BUSY, retry_after=(lease - now).total_seconds() + 1)
        # The holder gave the lease back between our claim and this read: claim again rather
        # than stop as if there were nothing to do.
    else:
        return ReviewOutcome(ReviewState.BUSY, retry_after=1.0)
    review = Review.objects.select_related("request").get(pk=review_id)
    request = review.request
    # Re-read before sending: a request that left the queue meanwhile (the platform closed it,
    # a confirmation) is not acted on blind.
    if request.status not in ACTIONABLE:
        _finish(review, ReviewResult.STALE, "the request is no longer waiting for a person")
        return ReviewOutcome(ReviewState.STALE)
    channel_id = (
        Channel.objects.filter(shop_id=review.shop_id, platform__in=CONNECTED)
        .values_list("pk", flat=True)
        .first()
    )
    if channel_id is not None:
        return _review_on_channel(review=review, channel_id=channel_id, retry_in=retry_in)
    gateway = gateway_for_shop(review.shop_id)
    budget = float(settings.ATOM_GATEWAY_TIMEOUT)
    try:
        if review.action == ReviewAction.APPROVE:
            gateway.approve(
                aftersale_id=request.aftersale_id,
                action=(
                    Action.APPROVE_RETURN
                    if request.type == AfterSaleType.RETURN_REFUND
                    else Action.APPROVE_REFUND
                ),
                amount=review.amount,
                idempotency_key=review.idempotency_key,
                deadline=started + budget,
            )
        else:
            gateway.reject(
                aftersale_id=request.aftersale_id,
                reason=review.reason,
                idempotency_key=review.idempotency_key,
                deadline=started + budget,
            )
    except GatewayError as exc:
        if exc.permanent:
            return _refused(review, gateway, exc.message, deadline=started + 2 * budget)
        retry_at = timezone.now() + dt.timedelta(seconds=retry_in) if retry_in > 0 else None
        updates: dict = {"sent_at": None, "lease_until": retry_at, "detail": exc.message[:2000]}
        if exc.ambiguous:
            updates["ambiguous_at"] = _coalesce_ambiguous(timezone.now())
        Review.objects.filter(pk=review_id, result=ReviewResult.PENDING).update(**updates)
        raise
    except BaseException:
        Review.objects.filter(pk=review_id, result=ReviewResult.PENDING).update(
            sent_at=None, lease_until=None, ambiguous_at=_coalesce_ambiguous(timezone.now())
        )
        raise
    _finish(review, ReviewResult.DONE, "")
    return ReviewOutcome(ReviewState.DONE)


def _review_on_channel(*, review: Review, channel_id: int, retry_in: float) -> ReviewOutcome:
    """The same lease and recording as the generic gateway, through the shop's marketplace
    channel, as ``execute._execute_on_channel`` does for automatic approvals: the adapter
    re-reads the request and says what became of it (``ApproveState``). Each call is bounded by
    2/5 of the gateway timeout (at most five in an attempt), so an attempt ends within the
    lease. A refusal carries the platform version ATOM stored (what the person saw): a request
    changed on the platform since is not refused blind. Whenever the platform says the request
    changed or ended, the review ends ``stale`` and ATOM's copy is re-read from the platform, so
    the person decides again on what is there now."""
    request = review.request
    budget = float(settings.ATOM_GATEWAY_TIMEOUT)
    try:
        row = Channel.objects.select_related("shop").get(pk=channel_id)
        adapter = adapter_for(row, deadline=budget * 2 / 5)
    except BaseException:  # misconfigured: nothing was sent, the lease is given back
        Review.objects.filter(pk=review.pk, result=ReviewResult.PENDING).update(
            sent_at=None, lease_until=None
        )
        raise
    result: ApproveResult
    try:
        if review.action == ReviewAction.APPROVE:
            result = adapter.approve(
                aftersale_id=request.aftersale_id,
                action=(
                    Action.APPROVE_RETURN
                    if request.type == AfterSaleType.RETURN_REFUND
                    else Action.APPROVE_REFUND
                ),
                amount=review.amount,
                request_type=request.type,
                after_ambiguous=review.ambiguous_at is not None,
            )
        else:
            result = adapter.reject(
                aftersale_id=request.aftersale_id,
                reason=review.reason,
                version=stored_version(row.platform, request.payload),
                after_ambiguous=review.ambiguous_at is not None,
            )
    except BaseException:
        Review.objects.filter(pk=review.pk, result=ReviewResult.PENDING).update(
            sent_at=None, lease_until=None, ambiguous_at=_coalesce_ambiguous(timezone.now())
        )
        raise
    message = f"{row.platform}: {result.message}" if result.message else ""
    state = result.state
    if state == ApproveState.EXECUTED:
        _finish(review, ReviewResult.DONE, message)
        return ReviewOutcome(ReviewState.DONE)
    if state == ApproveState.FAILED:
        _finish(review, ReviewResult.FAILED, message)
        return ReviewOutcome(ReviewState.FAILED)
    if state == ApproveState.UNKNOWN:
        _finish(review, ReviewResult.UNKNOWN, message)
        return ReviewOutcome(ReviewState.UNKNOWN)
    if state == ApproveState.DONE_ELSEWHERE:
        # Already agreed (or refused) on the platform without us: not ours, out of the queue.
        if _finish(review, ReviewResult.STALE, message):
            AfterSaleRequest.objects.filter(pk=request.pk, status__in=ACTIONABLE).update(
                status=RequestStatus.DONE_ELSEWHERE, updated_at=timezone.now()
            )
        return ReviewOutcome(ReviewState.STALE)
    if state == ApproveState.SUPERSEDED:
        # Nothing was sent, or the platform refused because the request changed or ended:
        # ATOM's copy is re-read so the person decides again on what is there now.
        _finish(review, ReviewResult.STALE, message)
        request_refresh(row=row, request_id=request.pk)
        return ReviewOutcome(ReviewState.STALE)
    # RETRY: nothing was carried out this time; the task's back-off brings it back.
    wait = max(retry_in, result.retry_after)
    retry_at = timezone.now() + dt.timedelta(seconds=wait) if wait > 0 else None
    Review.objects.filter(pk=review.pk, result=ReviewResult.PENDING).update(
        sent_at=None, lease_until=retry_at, detail=message[:2000]
    )
    if result.auth_failed:
        channel_note_error(row=row, error=message, auth=True)
    logger.warning("review %s will be retried: %s", review.pk, message)
    raise GatewayError(message or f"{row.platform}: retry", permanent=False)


def _coalesce_ambiguous(when: dt.datetime | None = None) -> Expression:
    if when is not None:
        return Case(
            When(ambiguous_at__isnull=False, then=F("ambiguous_at")),
            default=Value(when, output_field=DateTimeField()),
        )
    return Case(
        When(ambiguous_at__isnull=True, sent_at__isnull=False, then=F("sent_at")),
        default=F("ambiguous_at"),
    )


def _refused(review: Review, gateway: Gateway, message: str, *, deadline: float) -> ReviewOutcome:
    """The platform refused the action. After an ambiguous approval attempt the refusal may mean
    it already paid: it is asked, as for automatic approvals."""
    ambiguous = Review.objects.filter(pk=review.pk, ambiguous_at__isnull=False).exists()
    if review.action == ReviewAction.APPROVE and ambiguous:
        approved = gateway.approved(aftersale_id=review.request.aftersale_id, deadline=deadline)
        if approved is True:
            _finish(review, ReviewResult.DONE, message)
            return ReviewOutcome(ReviewState.DONE)
        if approved is None:
            _finish(review, ReviewResult.UNKNOWN, message)
            return ReviewOutcome(ReviewState.UNKNOWN)
    _finish(review, ReviewResult.FAILED, message)
    return ReviewOutcome(ReviewState.FAILED)


def _finish(review: Review, result: str, detail: str) -> bool:
    now = timezone.now()
    with transaction.atomic():
        finished = Review.objects.filter(pk=review.pk, result=ReviewResult.PENDING).update(
            result=result,
            detail=detail[:2000],
            finished_at=now,
            lease_until=None,
            sent_at=None,
        )
        if finished and result == ReviewResult.DONE:
            AfterSaleRequest.objects.filter(pk=review.request_id, status__in=ACTIONABLE).update(
                status=_FINAL_STATUS[ReviewAction(review.action)], updated_at=now
            )
        # UNKNOWN leaves the request where it is, blocked for another approval by the
        # review's unique index, and shown in the queue as awaiting confirmation.
    logger.log(
        logging.WARNING if result != ReviewResult.DONE else logging.INFO,
        "review %s (%s by %s): %s %s",
        review.pk,
        review.action,
        review.username,
        result,
        detail,
    )
    return bool(finished)


# --- a person confirms what the platform could not ------------------------------------------


def review_confirm_paid(*, review_id: int, user: AbstractBaseUser) -> bool:
    """A person confirms that a review left ``unknown`` was carried out on the platform: the
    review becomes ``done`` (counted in "refunded today" on the day confirmed, as the execution
    confirmations count on theirs) and the request takes the action's final status. Audited;
    True if this call confirmed it, False if the review is not (or no longer) awaiting one."""
    return _confirm(review_id=review_id, user=user, verdict=ExecutionConfirmation.Verdict.PAID)


def review_confirm_not_paid(*, review_id: int, user: AbstractBaseUser) -> bool:
    """A person confirms that a review left ``unknown`` was NOT carried out: the review becomes
    ``failed`` (which frees the request's unique index) and the request is back in the queue,
    actionable again by a new review. Audited; True if this call confirmed it."""
    return _confirm(review_id=review_id, user=user, verdict=ExecutionConfirmation.Verdict.NOT_PAID)


def _confirm(*, review_id: int, user: AbstractBaseUser, verdict: str) -> bool:
    now = timezone.now()
    paid = verdict == ExecutionConfirmation.Verdict.PAID
    username = user.get_username()
    note = f"confirmed {'paid' if paid else 'not paid'} by {username}"
    with transaction.atomic():
        # The claim: of two staff confirming at once, one UPDATE matches `unknown`; the other,
        # blocked on the row until this commits, then matches nothing and is told so.
        # Review first, then its request: the order ``_finish`` writes them in.
        claimed = Review.objects.filter(pk=review_id, result=ReviewResult.UNKNOWN).update(
            result=ReviewResult.DONE if paid else ReviewResult.FAILED,
            detail=Case(
                When(detail="", then=Value(note)),
                default=Concat(F("detail"), Value(f"; {note}"), output_field=TextField()),
                output_field=TextField(),
            ),
            finished_at=now,
            lease_until=None,
            sent_at=None,
        )
        if not claimed:
            return False
        review = Review.objects.only("pk", "request_id", "action").get(pk=review_id)
        ReviewConfirmation.objects.create(
            review_id=review_id,
            verdict=verdict,
            user_id=user.pk,
            username=username,
            confirmed_at=now,
        )
        # Paid: the request is finished as the action says. Not paid: it stays where it was
        # (still waiting for a person); its version moves so a page seen before is re-read.
        AfterSaleRequest.objects.filter(pk=review.request_id, status__in=ACTIONABLE).update(
            **({"status": _FINAL_STATUS[ReviewAction(review.action)]} if paid else {}),
            updated_at=now,
        )
    logger.warning("review %s confirmed %s by %s", review_id, verdict, username)
    return True


def reviews_stuck(*, now: dt.datetime, older_than: dt.timedelta) -> list[int]:
    """Pending reviews whose lease expired (or was never taken) a while ago: their task was
    lost. The sweeper publishes them again."""
    return list(
        Review.objects.filter(
            Q(lease_until__isnull=True) | Q(lease_until__lt=now),
            result=ReviewResult.PENDING,
            created_at__lt=now - older_than,
        ).values_list("pk", flat=True)[:1000]
    )
