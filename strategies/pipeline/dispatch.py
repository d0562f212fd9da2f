"""How a stored request reaches its decider (``settings.ATOM_DISPATCH``), chosen in one place.

- ``"celery"`` (the default): a ``strategies.decide_request`` message, published after COMMIT.
- ``"postgres"`` (PostgreSQL only, issue 16): no message. Intake's transaction sends
  ``NOTIFY atom_decide`` with the request's id, which PostgreSQL delivers at COMMIT and never for
  a rollback, and ``manage.py run_deciders`` claims the request row itself (``claim``,
  ``deciders``). Celery keeps everything else: retries of an execution, reviews, the sweeper,
  alerts and the platforms. A notification that nobody hears loses nothing: the row is the
  truth, idle deciders look for fresh requests, and the sweeper hands older ones to Celery.

What the second saves per request, against a Celery message: the publish at intake, the broker's
work, and the worker's receive, hand-over and ack (docs/benchmarks.md, "the request row as the
queue").
"""

from __future__ import annotations

from django.conf import settings
from django.db import connection
from django.dispatch import Signal

from strategies.pipeline.publish import DECIDE_TASK, publish_on_commit

CHANNEL = "atom_decide"
MISSED = 0  # a notification without a request id: look for the oldest fresh requests instead
POSTGRES = "postgres"

# Sent in each decider process once it has started (the bench installs its CPU probes here).
decider_started = Signal()


def dispatching_through_postgres() -> bool:
    return settings.ATOM_DISPATCH == POSTGRES


def notify_channel_at_intake() -> str | None:
    """The channel intake's own insert NOTIFYs (PostgreSQL dispatch), saving the round trip of
    ``request_dispatch_on_commit``; None: intake calls that instead."""
    if dispatching_through_postgres() and connection.vendor == "postgresql":
        return CHANNEL
    return None


def request_dispatch_on_commit(request_id: int) -> None:
    """In the transaction that stored request ``request_id``: hands it to a decider once the
    transaction commits, never if it rolls back."""
    if dispatching_through_postgres():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_notify(%s, %s)", [CHANNEL, str(request_id)])
    else:
        publish_on_commit(DECIDE_TASK, request_id)
