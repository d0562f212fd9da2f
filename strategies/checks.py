"""System checks for the gateway and the execution timing (``manage.py check``).

The execution's guarantee "one gateway call for a decision at a time" rests on an ordering of
settings: an attempt (at most two calls, each bounded by ``ATOM_GATEWAY_TIMEOUT``) ends within
its lease, the task's soft time limit never cuts an attempt short, and a task waiting out a
lease is never re-delivered by the broker as a copy. ``check`` reports any overlap as an error,
and a Celery worker refuses to start with one (``worker_refuses_overlapping_timing``).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks

GATEWAYS = ("simulated", "http")


def check_gateway(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    kind = settings.ATOM_GATEWAY
    if kind not in GATEWAYS:
        return [
            checks.Error(
                f"ATOM_GATEWAY is {kind!r}; expected 'simulated' or 'http'.",
                id="strategies.E005",
            )
        ]
    if kind == "http" and not settings.ATOM_GATEWAY_URL:
        return [
            checks.Error(
                "ATOM_GATEWAY is 'http' but ATOM_GATEWAY_URL is not set: no approval could be "
                "carried out.",
                hint="Set ATOM_GATEWAY_URL (and ATOM_GATEWAY_TOKEN).",
                id="strategies.E005",
            )
        ]
    return []


def check_gateway_deployed(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """``check --deploy``: the simulated gateway marks approvals executed and pays nothing."""
    if settings.ATOM_GATEWAY == "simulated" and not settings.DEBUG:
        return [
            checks.Error(
                "ATOM_GATEWAY is 'simulated' with DEBUG off: approvals would be marked executed "
                "without any call to the platform, and no buyer would be refunded.",
                hint="Set ATOM_GATEWAY=http with ATOM_GATEWAY_URL and ATOM_GATEWAY_TOKEN.",
                id="strategies.E001",
            )
        ]
    return []


def check_execution_timing(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    from strategies.pipeline.execute import lease_seconds_required

    timeout = float(settings.ATOM_GATEWAY_TIMEOUT)
    lease = float(settings.ATOM_EXECUTION_LEASE_SECONDS)
    soft = float(settings.CELERY_TASK_SOFT_TIME_LIMIT)
    visibility = float(settings.CELERY_VISIBILITY_TIMEOUT)
    if timeout <= 0:
        return [
            checks.Error(
                f"ATOM_GATEWAY_TIMEOUT is {timeout:g}: it must be a positive number of seconds.",
                id="strategies.E002",
            )
        ]
    attempt = lease_seconds_required()
    attempt_text = (
        f"one execution attempt (2 x ATOM_GATEWAY_TIMEOUT {timeout:g} s + margin "
        f"{settings.ATOM_EXECUTION_LEASE_MARGIN_SECONDS:g} s = {attempt:g} s)"
    )
    messages: list[checks.CheckMessage] = []
    if lease < attempt:
        messages.append(
            checks.Error(
                f"ATOM_EXECUTION_LEASE_SECONDS ({lease:g} s) is shorter than {attempt_text}: "
                "a second gateway call for the same decision could start while the first is "
                "still open.",
                hint=f"Leave ATOM_EXECUTION_LEASE_SECONDS unset (derived) or at least {attempt:g}.",
                id="strategies.E002",
            )
        )
    if soft <= attempt:
        messages.append(
            checks.Error(
                f"CELERY_TASK_SOFT_TIME_LIMIT ({soft:g} s) does not outlast {attempt_text}: the "
                "time limit could cut a gateway call short, leaving its outcome unknown.",
                hint="Raise CELERY_TASK_SOFT_TIME_LIMIT (and CELERY_TASK_TIME_LIMIT) or lower "
                "ATOM_GATEWAY_TIMEOUT.",
                id="strategies.E003",
            )
        )
    if lease + 1 >= visibility:
        messages.append(
            checks.Error(
                f"ATOM_EXECUTION_LEASE_SECONDS ({lease:g} s) does not stay under "
                f"CELERY_VISIBILITY_TIMEOUT ({visibility:g} s): a task waiting for a lease to "
                "expire would be re-delivered by the broker as a second copy.",
                hint="Raise CELERY_VISIBILITY_TIMEOUT or lower the lease.",
                id="strategies.E004",
            )
        )
    return messages


def worker_refuses_overlapping_timing(**kwargs: Any) -> None:
    """``worker_init``: a Celery worker does not start with overlapping timing settings
    (Celery runs Django's checks at start-up but ignores their errors)."""
    errors = [m for m in check_execution_timing() + check_gateway() if m.is_serious()]
    if errors:
        # SystemExit, not an exception: Celery's signal dispatch logs exceptions and goes on.
        raise SystemExit("refusing to start: " + " ".join(f"{m.id}: {m.msg}" for m in errors))
