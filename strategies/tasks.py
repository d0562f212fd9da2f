"""Celery tasks are interfaces: they take ids, call one service and own the retry policy.

Delivery is at least once (late acks, reject on worker lost): every task here may run twice and
relies on the services' state guards and conditional updates for exactly-once.
"""

from __future__ import annotations

from celery import Task, shared_task
from django.conf import settings
from django.db import OperationalError

from strategies.pipeline.publish import (
    BACKTEST_TASK,
    DECIDE_TASK,
    EXECUTE_TASK,
    POLL_CHANNEL_TASK,
    POLL_TASK,
    PUSH_TASK,
    RECHECK_TASK,
    REFRESH_CHANNEL_TASK,
    REFRESH_TASK,
    REVIEW_TASK,
    ROLL_OVER_TASK,
    SWEEP_TASK,
)


def _backoff(retries: int) -> float:
    from strategies.pipeline.execute import retry_backoff

    return retry_backoff(retries)


@shared_task(bind=True, name=DECIDE_TASK, max_retries=10)
def decide_request(self: Task, request_id: int) -> str:
    """Decides, then (the decision committed, no lock held) executes an approval in the same
    task: one broker round trip per request instead of two (issue 16). Only a retry of the
    execution goes back to the broker, as ``execute_decision``; the lease, the idempotent
    recording and the sweeper are those of ``execute_decision``. A redelivered copy finds the
    decision made and executes it if still due (the claim makes that harmless)."""
    from strategies.pipeline.decide import NothingToDecide, request_decide_claiming
    from strategies.pipeline.execute import decision_execute_after_decision

    inline = settings.ATOM_EXECUTE_IN_DECISION_TASK
    try:
        # Inline, a new approval's first attempt is claimed by its insert: no claim of its own.
        decided = request_decide_claiming(
            request_id=request_id, enqueue_execution=not inline, claim_execution=inline
        )
    except NothingToDecide:
        return "nothing_to_decide"  # closed on its platform first
    except OperationalError as exc:  # a deadlock victim or a lost connection: decide again
        raise self.retry(exc=exc, countdown=_backoff(self.request.retries)) from exc
    if not inline:
        return decided.decision.outcome
    return decision_execute_after_decision(
        decided.decision, claimed=decided.execution, claimed_started=decided.started
    )


@shared_task(bind=True, name=EXECUTE_TASK, max_retries=None)
def execute_decision(self: Task, decision_id: int) -> str:
    from strategies.pipeline.execute import ExecutionState, decision_execute
    from strategies.platforms.base import GatewayError

    countdown = _backoff(self.request.retries)
    try:
        result = decision_execute(decision_id=decision_id, retry_in=countdown)
    except GatewayError as exc:
        if self.request.retries >= settings.ATOM_EXECUTION_MAX_RETRIES:
            # Give up for now: the request stays `approved` and the sweeper brings it back.
            return "gave-up"
        raise self.retry(exc=exc, countdown=countdown) from exc
    if result.state is ExecutionState.BUSY:
        # Another copy holds the lease (or died holding it): come back when it expires.
        raise self.retry(countdown=result.retry_after, max_retries=None)
    return result.state.value


@shared_task(bind=True, name=REVIEW_TASK, max_retries=None)
def execute_review(self: Task, review_id: int) -> str:
    """A person's approval or refusal, with the execution's retry policy."""
    from strategies.pipeline.review import ReviewState, review_execute
    from strategies.platforms.base import GatewayError

    countdown = _backoff(self.request.retries)
    try:
        result = review_execute(review_id=review_id, retry_in=countdown)
    except GatewayError as exc:
        if self.request.retries >= settings.ATOM_EXECUTION_MAX_RETRIES:
            return "gave-up"  # still pending: the sweeper brings it back
        raise self.retry(exc=exc, countdown=countdown) from exc
    if result.state is ReviewState.BUSY:
        raise self.retry(countdown=result.retry_after, max_retries=None)
    return result.state.value


@shared_task(name=SWEEP_TASK)
def sweep_stuck_requests() -> dict[str, int]:
    from strategies.pipeline.sweep import requests_sweep_stuck

    result = requests_sweep_stuck()
    return {"decide": len(result.decide), "execute": len(result.execute)}


@shared_task(name=RECHECK_TASK)
def recheck_unknown_executions() -> dict[str, int]:
    from strategies.pipeline.recheck import unknown_executions_recheck

    result = unknown_executions_recheck()
    return {
        "paid": len(result.paid),
        "not_paid": len(result.not_paid),
        "still_unknown": len(result.still_unknown),
    }


@shared_task(name=ROLL_OVER_TASK)
def roll_over_day() -> int:
    from strategies.pipeline.ledger import ledgers_roll_over

    return ledgers_roll_over()


# A backtest reads a whole period: far longer than a decision, still under the visibility timeout
# (a copy redelivered meanwhile finds the run claimed and stops).
BACKTEST_SOFT_TIME_LIMIT = settings.CELERY_VISIBILITY_TIMEOUT // 2
BACKTEST_TIME_LIMIT = settings.CELERY_VISIBILITY_TIMEOUT * 3 // 4


@shared_task(
    name=BACKTEST_TASK, soft_time_limit=BACKTEST_SOFT_TIME_LIMIT, time_limit=BACKTEST_TIME_LIMIT
)
def run_backtest(run_id: int) -> str:
    from strategies.backtest.services import backtest_execute

    run = backtest_execute(run_id=run_id)
    return run.status if run is not None else "not-claimed"


# --- connected marketplaces (PLATFORMS.md) ---------------------------------------------------


@shared_task(bind=True, name=PUSH_TASK, max_retries=12)
def process_push(self: Task, message_id: int) -> str:
    from strategies.pipeline.channels import ChannelUnavailable, push_process

    try:
        return push_process(message_id=message_id)
    except (ChannelUnavailable, OperationalError) as exc:
        # The platform could not be read: again later (the poller finds it if this gives up).
        raise self.retry(exc=exc, countdown=_backoff(self.request.retries)) from exc


@shared_task(name=POLL_TASK)
def poll_channels() -> int:
    from strategies.pipeline.channels import channels_poll_due

    return len(channels_poll_due())


@shared_task(name=POLL_CHANNEL_TASK)
def poll_channel(channel_id: int) -> int:
    from strategies.pipeline.channels import ChannelUnavailable, channel_poll

    try:
        return channel_poll(channel_id=channel_id).seen
    except ChannelUnavailable:
        return -1  # noted on the channel's panel; the next period polls again


@shared_task(name=REFRESH_TASK)
def refresh_tokens() -> int:
    from strategies.pipeline.channels import channels_refresh_due

    return len(channels_refresh_due())


@shared_task(name=REFRESH_CHANNEL_TASK)
def refresh_channel_token(channel_id: int, force: int = 0) -> str:
    from strategies.pipeline.channels import channel_token_refresh

    return channel_token_refresh(channel_id=channel_id, force=bool(force))
