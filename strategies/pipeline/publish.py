"""The one way the pipeline hands work to Celery: task names, and a publish that never fails
the caller.

Every message is published after COMMIT (``publish_on_commit``), so a rollback sends nothing,
through kombu's producer pool for the broker's write URL with short socket timeouts: a broker
that refuses costs well under a second, one that accepts and never answers about two seconds,
never a hang. The write connection is built once per process and broker URL (building it
read a dozen Celery settings through Django's and cost more CPU than the publish itself, issue
16) and its producers come from kombu's pool, so a publish opens no connection and declares
nothing it declared before. A broker error is logged and swallowed, never raised after the
commit: what it lost is found again by the sweeper (RELIABILITY.md "delay_on_commit can lose
a message").
Tests replace ``publish_now`` to see what would be sent: this module is the broker seam.
"""

from __future__ import annotations

import logging
import os

from celery import current_app
from django.db import transaction
from kombu import Connection, pools

logger = logging.getLogger(__name__)

DECIDE_TASK = "strategies.decide_request"
EXECUTE_TASK = "strategies.execute_decision"
SWEEP_TASK = "strategies.sweep_stuck_requests"
RECHECK_TASK = "strategies.recheck_unknown_executions"
ROLL_OVER_TASK = "strategies.roll_over_day"
ALERT_TASK = "notifications.check_ledger_alerts"
SEND_DELIVERY_TASK = "notifications.send_delivery"
BACKTEST_TASK = "strategies.run_backtest"
REVIEW_TASK = "strategies.execute_review"
# Connected marketplaces (PLATFORMS.md): a stored push, the pollers, the token refreshers, and
# the channel alert the notifications app raises (args: channel id, ``CHANNEL_ALERT_*``).
PUSH_TASK = "strategies.process_push"
POLL_TASK = "strategies.poll_channels"
POLL_CHANNEL_TASK = "strategies.poll_channel"
REFRESH_TASK = "strategies.refresh_tokens"
REFRESH_CHANNEL_TASK = "strategies.refresh_channel_token"
CHANNEL_ALERT_TASK = "notifications.raise_channel_alert"
CHANNEL_ALERT_AUTH = 1  # the platform refused the channel's credentials or their refresh
CHANNEL_ALERT_EXPIRING = 2  # the refresh token dies soon: the merchant must authorise again
CHANNEL_ALERT_PUSH = 3  # the platform's pushes are refused (wrong message key or app secret)
CHANNEL_ALERT_POLL = 4  # the poller cannot read the platform (down, rate limited, garbage)

# One quick retry: a pooled connection gone stale after a broker restart is replaced.
RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2}
TRANSPORT_OPTIONS = {"socket_timeout": 1.0, "socket_connect_timeout": 1.0}
ACQUIRE_TIMEOUT = 1.0

# (process, app, write URL) -> the lazy kombu Connection that keys kombu's producer pool. The
# URL is part of the key so a test or bench that points the app at another broker gets a
# connection to it; the process id, so a forked child never shares its parent's.
_connections: dict[tuple[int, int, str], Connection] = {}


def _write_connection() -> Connection:
    app = current_app._get_current_object()
    key = (os.getpid(), id(app), app.conf.broker_write_url)
    connection = _connections.get(key)
    if connection is None:
        connection = app.connection_for_write(transport_options=TRANSPORT_OPTIONS)
        _connections[key] = connection
    return connection


def publish_now(name: str, args: list[int], *, countdown: float | None = None) -> bool:
    """Publishes task ``name`` with ``args`` at once (to run after ``countdown`` seconds, if
    given); False (logged) if the broker failed."""
    try:
        with pools.producers[_write_connection()].acquire(
            block=True, timeout=ACQUIRE_TIMEOUT
        ) as producer:
            current_app.send_task(
                name,
                args=args,
                countdown=countdown,
                producer=producer,
                retry=True,
                retry_policy=RETRY_POLICY,
            )
    except Exception:  # the broker is down or refused: the sweeper enqueues it later
        logger.warning("could not publish %s %s; the sweeper will", name, args, exc_info=True)
        return False
    return True


def publish_on_commit(name: str, *args: int, countdown: float | None = None) -> None:
    """Publishes task ``name`` once the current transaction commits, never if it rolls back."""

    def publish() -> None:  # a plain function: Django logs a robust hook's __qualname__
        publish_now(name, list(args), countdown=countdown)

    transaction.on_commit(publish, robust=True)
