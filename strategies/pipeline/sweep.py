"""The sweeper: a request never waits forever because a message was lost.

``delay_on_commit`` can lose a message (a crash between COMMIT and publish, a broker outage),
and a retrying execution may give up. Every run re-enqueues, in a bounded batch, requests still
``received`` (decide) or ``approved`` but not executed (execute) whose last change is older than
``settings.ATOM_SWEEP_AFTER_SECONDS`` (an execution whose lease runs, mid-call or waiting
for its scheduled retry, is left to its own task). It reads through the partial index
``aftersale_in_flight`` (status, updated_at) and bumps ``updated_at`` of what it re-enqueues,
so the next run leaves them alone for another threshold. Re-enqueueing is always harmless:
the services' state guards decide and execute once. While the broker already holds
``settings.ATOM_SWEEP_MAX_BACKLOG`` messages or more, a run re-enqueues nothing: what looks
stuck is then merely queued, and duplicates would only deepen the backlog.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

from celery import current_app
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from kombu.exceptions import ChannelError

from strategies.models import AfterSaleRequest, RequestStatus
from strategies.pipeline import publish
from strategies.pipeline.publish import DECIDE_TASK, EXECUTE_TASK, REVIEW_TASK
from strategies.pipeline.review import reviews_stuck

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SweepResult:
    decide: list[int]  # request ids
    execute: list[int]  # decision ids
    review: list[int] = field(default_factory=list)  # review ids (a person's actions)


def broker_backlog() -> int | None:
    """Messages waiting in the default queue, or None if the broker cannot say (unreachable,
    or a transport without a count): then the sweep goes on as if there were none."""
    app = current_app
    try:
        options = {"socket_timeout": 1.0, "socket_connect_timeout": 1.0}
        with app.connection_for_read(transport_options=options) as conn:
            conn.ensure_connection(max_retries=1)  # a broker that is down: no count, no hang
            channel = conn.channel()
            try:
                declared = channel.queue_declare(queue=app.conf.task_default_queue, passive=True)
            except ChannelError:  # 404: nobody declared the queue yet, so nothing waits in it
                return 0
            return int(declared.message_count)
    except Exception:  # the sweep must never fail because the count could not be read
        logger.info("could not read the broker's queue length", exc_info=True)
        return None


def requests_sweep_stuck(
    *, now: dt.datetime | None = None, older_than: float | None = None, batch: int = 500
) -> SweepResult:
    now = now or timezone.now()
    backlog = broker_backlog()
    if backlog is not None and backlog >= settings.ATOM_SWEEP_MAX_BACKLOG:
        # Under a backlog, "stuck" requests are mostly queued, not lost: re-enqueueing them
        # would only add duplicates and deepen the queue (found by bench/chaos). They are
        # swept once the queue is short again.
        logger.warning("sweep skipped: %d messages already wait in the broker", backlog)
        return SweepResult(decide=[], execute=[])
    seconds = settings.ATOM_SWEEP_AFTER_SECONDS if older_than is None else older_than
    cutoff = now - dt.timedelta(seconds=seconds)
    with transaction.atomic():
        rows = list(
            AfterSaleRequest.objects.filter(
                status__in=[RequestStatus.RECEIVED, RequestStatus.APPROVED], updated_at__lte=cutoff
            )
            # An execution waiting out its back-off holds its lease until its own retry: left
            # alone, or every sweep would start one more retry chain.
            .exclude(decision__execution_lease_until__gt=now)
            .order_by("updated_at")
            .select_for_update(skip_locked=True, of=("self",))
            .values_list("id", "status", "decision__id")[:batch]
        )
        # Claim them for another threshold (a second sweeper skips the locked rows).
        AfterSaleRequest.objects.filter(pk__in=[r[0] for r in rows]).update(updated_at=now)
    decide = [rid for rid, status, _ in rows if status == RequestStatus.RECEIVED]
    execute = [
        did for _, status, did in rows if status == RequestStatus.APPROVED and did is not None
    ]
    for rid in decide:
        publish.publish_now(DECIDE_TASK, [rid])
    for did in execute:
        publish.publish_now(EXECUTE_TASK, [did])
    # A person's action whose task was lost (or gave up) is carried out all the same.
    review = reviews_stuck(now=now, older_than=dt.timedelta(seconds=seconds))
    for review_id in review:
        publish.publish_now(REVIEW_TASK, [review_id])
    if decide or execute or review:
        logger.warning(
            "sweeper re-enqueued %d to decide, %d to execute, %d reviews",
            len(decide),
            len(execute),
            len(review),
        )
    return SweepResult(decide=decide, execute=execute, review=review)
