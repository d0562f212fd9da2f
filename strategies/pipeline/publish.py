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
An immediate publish (no ``countdown``) skips Celery's ``send_task``: its routing, the task's
execution options, the message's fixed headers and the merged retry policy are worked out once
per process and task name (``_Template``), and each publish fills in the id and the args and
hands the message to kombu's producer, declaring the queue only on a connection that has not
declared it yet. That is the same message ``send_task`` sends (tests compare every header,
property and body field but the ids) for a third of the CPU (issue 16). A delayed publish (a
retry) is rare and keeps ``send_task``, which also knows the brokers' delayed-delivery variants.
Tests replace ``publish_now`` to see what would be sent: this module is the broker seam.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

from celery import Celery, current_app
from celery.utils import uuid
from django.core.signals import setting_changed
from django.db import transaction
from django.dispatch import receiver
from kombu import Connection, Queue, pools
from kombu.common import maybe_declare

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
# Reading the write URL goes through Django's settings (a sixth of a publish's CPU), so it is
# read once per app and per value of what can override it: the two environment variables and
# an assignment to the app's configuration at run time (tests and benches point it elsewhere).
_write_urls: dict[tuple[Any, ...], str] = {}


def _write_url(app: Celery) -> str:
    changes = app.conf.changes  # run-time assignments; a plain dict look-up, unlike the conf
    key = (
        id(app),
        os.environ.get("CELERY_BROKER_WRITE_URL"),
        os.environ.get("CELERY_BROKER_URL"),
        changes.get("broker_write_url"),
        changes.get("broker_url"),
    )
    url = _write_urls.get(key)
    if url is None:
        url = _write_urls[key] = app.conf.broker_write_url
    return url


def _write_connection() -> Connection:
    app = current_app._get_current_object()
    key = (os.getpid(), id(app), _write_url(app))
    connection = _connections.get(key)
    if connection is None:
        # kombu copies a publish's retry policy into the connection's transport options, and
        # its producer pools are keyed by their repr: with the policy there from the start the
        # key never changes, so every publish draws from the same pool.
        options = {**TRANSPORT_OPTIONS, **_retry_policy(app)}
        connection = app.connection_for_write(transport_options=options)
        _connections[key] = connection
    return connection


def _declare_known_queues(channel: Any) -> None:
    """kombu's ``on_revive``: after reconnecting inside a retried publish kombu has forgotten
    what it declared, and the retry reuses the first attempt's (empty) list of what to declare;
    declare the lean publish's queues on the new connection first, or RabbitMQ drops a message
    for a queue it lost (a rebuilt node)."""
    queues = {t.queue.name: t.queue for t in _templates.values() if t is not None}
    for queue in queues.values():
        maybe_declare(queue, channel)


def _retry_policy(app: Celery) -> dict[str, Any]:
    """Celery's publish retry policy with ours on top, as send_task merges them."""
    return {
        **(app.conf.task_publish_retry_policy or {}),
        **RETRY_POLICY,
        "on_revive": _declare_known_queues,
    }


@dataclass(frozen=True)
class _Template:
    """What ``send_task`` would work out for a task name, less the message's id and args."""

    queue: Queue
    headers: dict[str, Any]
    embed: dict[str, Any]
    publish_options: dict[str, Any]  # exchange, routing key, serializer, retry policy...


# (process, app, task name) -> its template, or None where the lean publish does not mirror
# send_task (the task then keeps send_task); the process, as the ``origin`` header names it.
_templates: dict[tuple[int, int, str], _Template | None] = {}


def _template(app: Celery, name: str) -> _Template | None:
    key = (os.getpid(), id(app), name)
    if key not in _templates:
        _templates[key] = _build_template(app, name)
    return _templates[key]


@receiver(setting_changed)
def _settings_changed(**kwargs: Any) -> None:
    """A test that overrides a Celery setting gets a write URL and templates read anew."""
    _write_urls.clear()
    _templates.clear()


# The task options the template mirrors; any other (``expires``, an explicit exchange or
# routing key, a topic exchange...) sends that task through send_task instead.
_MIRRORED_OPTIONS = frozenset(
    {"time_limit", "soft_time_limit", "ignore_result", "serializer", "compression"}
)


def _build_template(app: Celery, name: str) -> _Template | None:
    # The steps of Celery's send_task and send_task_message for a plain call (celery/app/base.py
    # and amqp.py): the registered task's execution options, then the router.
    task = app.tasks.get(name)
    options = {
        key: value
        for key, value in (task._get_exec_options() if task is not None else {}).items()
        if value is not None
    }
    if set(options) - _MIRRORED_OPTIONS or app.conf.task_inherit_parent_priority:
        return None
    # What the routes add to a plain call: the default queue alone is mirrored.
    routed = app.amqp.router.route({}, name, (), {}, task)
    queue = routed.pop("queue", None)
    if routed or not isinstance(queue, Queue) or queue.exchange.type != "direct":
        return None
    headers, _properties, body, _ = app.amqp.as_task_v2(
        "",
        name,
        (),
        {},
        time_limit=options.get("time_limit"),
        soft_time_limit=options.get("soft_time_limit"),
        ignore_result=options.get("ignore_result"),
        reply_to="",
    )

    publish_options = {
        "exchange": "",  # the anonymous exchange, routed by queue name, as Celery does
        "routing_key": queue.name,
        "serializer": options.get("serializer") or app.conf.task_serializer,
        "compression": options.get("compression") or app.conf.task_compression,
        "delivery_mode": queue.exchange.delivery_mode or app.conf.task_default_delivery_mode,
        "retry": True,
        "retry_policy": _retry_policy(app),
    }
    return _Template(queue=queue, headers=headers, embed=body[2], publish_options=publish_options)


def _publish_lean(producer: Any, app: Celery, template: _Template, args: list[int]) -> None:
    task_id = uuid()
    headers = dict(template.headers, id=task_id, root_id=task_id, argsrepr=repr(args))
    parent = app.current_worker_task
    if parent is not None:  # published by a task: the same trace ids send_task gives it
        headers["root_id"] = parent.request.root_id or parent.request.id
        headers["parent_id"] = parent.request.id
    queue = template.queue
    declared = hash(queue) in producer.connection.declared_entities
    producer.publish(
        (args, {}, template.embed),
        headers=headers,
        correlation_id=task_id,
        reply_to=app.thread_oid,
        declare=[] if declared else [queue],
        **template.publish_options,
    )


def publish_now(name: str, args: list[int], *, countdown: float | None = None) -> bool:
    """Publishes task ``name`` with ``args`` at once (to run after ``countdown`` seconds, if
    given); False (logged) if the broker failed."""
    app = current_app._get_current_object()
    try:
        with pools.producers[_write_connection()].acquire(
            block=True, timeout=ACQUIRE_TIMEOUT
        ) as producer:
            template = None if countdown is not None else _template(app, name)
            if template is not None:
                _publish_lean(producer, app, template, args)
            else:
                app.send_task(
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
