"""Two calls for one decision are never in flight at once (RELIABILITY.md 26, issue 11.3).

A platform that drips its answer byte by byte for longer than ``ATOM_GATEWAY_TIMEOUT``: the
call is cut at the timeout (the whole call, not each read), the lease outlives it, and a copy
of the execution running meanwhile waits (BUSY) instead of calling.
"""

import threading
import time
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from strategies.models import Decision
from strategies.pipeline.execute import ExecutionState, decision_execute, lease_seconds_required
from strategies.platforms.base import GatewayError
from tests.factories import make_decision, make_request, make_shop, make_strategy
from tests.worker import wait_until


@pytest.mark.django_db(transaction=True)
def test_a_dripping_gateway_is_cut_at_the_timeout_and_no_second_call_overlaps_it(
    gateway_server, settings
):
    # The shortest lease the start-up check accepts (a longer one would hide an overlap).
    settings.ATOM_EXECUTION_LEASE_SECONDS = lease_seconds_required()
    timeout = settings.ATOM_GATEWAY_TIMEOUT
    shop = make_shop()
    strategy = make_strategy(shop=shop, status="active", daily_cap=Decimal("100.00"))
    decision = make_decision(request=make_request(shop=shop, amount="9.00"), strategy=strategy)
    gateway_server.script = ["drip"]
    gateway_server.drip_interval = 0.1  # ~12 s for the whole answer, 1 byte at a time
    first: dict[str, object] = {}

    def run_first() -> None:
        started = time.monotonic()
        try:
            decision_execute(decision_id=decision.pk)
        except GatewayError as exc:
            first["error"] = exc
        finally:
            first["elapsed"] = time.monotonic() - started
            first["ended"] = time.monotonic()
            connection.close()

    thread = threading.Thread(target=run_first)
    thread.start()
    assert wait_until(lambda: gateway_server.calls, timeout=5)
    # Copies of the execution (a redelivered task, the sweeper's) keep trying meanwhile; once
    # the first call is over, one of them carries the approval out (the platform: "already").
    states = []
    while (not states or states[-1] is ExecutionState.BUSY) and len(states) < 500:
        states.append(decision_execute(decision_id=decision.pk).state)
        time.sleep(0.05)
    thread.join(5)
    assert states.count(ExecutionState.BUSY) > 5
    assert states[-1] is ExecutionState.EXECUTED
    assert isinstance(first["error"], GatewayError) and first["error"].ambiguous
    assert timeout - 0.1 < first["elapsed"] < timeout + 0.5  # cut at the deadline

    first_call, retry = gateway_server.approvals_of("POST")
    assert first_call.closed_at - first_call.opened_at < timeout + 0.5
    # Nothing else reached the platform while the first call was open.
    assert retry.opened_at >= first["ended"] and retry.opened_at >= first_call.closed_at
    assert retry.status == 409
    assert gateway_server.approvals == {str(decision.idempotency_key): 2}
    decision.refresh_from_db()
    assert decision.execution_attempts == 2 and decision.execution_ambiguous_at is not None


def test_the_lease_covers_the_approval_and_the_status_check_with_a_margin(settings):
    settings.ATOM_GATEWAY_TIMEOUT = 5.0
    settings.ATOM_EXECUTION_LEASE_MARGIN_SECONDS = 2.0
    assert lease_seconds_required() == 12.0


@pytest.mark.django_db(transaction=True)
def test_a_lease_configured_too_short_is_still_never_shorter_than_an_attempt(
    gateway_server, settings
):
    """`check` refuses such settings (strategies.E002); the claim does not trust them either."""
    settings.ATOM_EXECUTION_LEASE_SECONDS = 0.5
    decision = make_decision(request=make_request(shop=make_shop()))
    gateway_server.script = ["hold"]
    before = timezone.now()

    def run() -> None:
        try:
            decision_execute(decision_id=decision.pk)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    try:
        assert gateway_server.held.wait(5)
        lease = Decision.objects.values_list("execution_lease_until", flat=True).get(pk=decision.pk)
        assert (lease - before).total_seconds() >= lease_seconds_required() - 0.5
    finally:
        gateway_server.release()
        thread.join(5)
