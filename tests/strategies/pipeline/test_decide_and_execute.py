"""Deciding and executing in one task (issue 16): after the decision commits, the decision task
calls the gateway itself; only a retry (or a copy holding the lease) goes back to the broker."""

from decimal import Decimal

import pytest
from django.db import connections
from django.test.utils import CaptureQueriesContext

from strategies.models import Decision
from strategies.tasks import decide_request
from tests.factories import make_request, make_strategy


@pytest.fixture
def approvable(shop):
    make_strategy(shop=shop, status="active", daily_cap=Decimal("1000.00"))
    return make_request(shop=shop, amount="25.00")


@pytest.mark.django_db(transaction=True)
def test_an_approval_is_executed_by_the_decision_task_without_a_second_message(
    approvable, gateway_server, sent
):
    with CaptureQueriesContext(connections["default"]) as queries:
        assert decide_request.run(approvable.pk) == "executed"

    decision = Decision.objects.get(request=approvable)
    approvable.refresh_from_db()
    assert approvable.status == "executed" and decision.executed_at is not None
    # Its first attempt was claimed by the insert: no claim statement of its own.
    assert [q["sql"] for q in queries if '"execution_attempts" + 1' in q["sql"]] == []
    assert decision.execution_attempts == 1 and decision.execution_ambiguous_at is None
    assert [c.idempotency_key for c in gateway_server.calls] == [str(decision.idempotency_key)]
    assert sent == []  # no execution task: one broker round trip per request

    # A redelivered copy finds the decision made and executed: no second gateway call.
    assert decide_request.run(approvable.pk) == "done"
    assert len(gateway_server.calls) == 1 and sent == []


@pytest.mark.django_db(transaction=True)
def test_a_transient_gateway_error_goes_back_to_the_broker_with_the_lease_kept(
    approvable, gateway_server, sent
):
    gateway_server.script = [503]
    assert decide_request.run(approvable.pk) == "retrying"

    decision = Decision.objects.get(request=approvable)
    approvable.refresh_from_db()
    assert approvable.status == "approved" and decision.executed_at is None
    assert decision.execution_lease_until is not None  # the sweeper leaves it to the retry
    assert sent == [("strategies.execute_decision", [decision.pk])]


@pytest.mark.django_db(transaction=True)
def test_a_manual_review_calls_no_gateway(shop, gateway_server, sent):
    request = make_request(shop=shop, amount="25.00")  # no strategy: manual review
    assert decide_request.run(request.pk) == "manual_review"
    assert gateway_server.calls == [] and sent == []


@pytest.mark.django_db(transaction=True)
def test_with_the_setting_off_the_execution_is_enqueued_as_before(
    approvable, gateway_server, sent, settings
):
    settings.ATOM_EXECUTE_IN_DECISION_TASK = False
    assert decide_request.run(approvable.pk) == "approved"
    decision = Decision.objects.get(request=approvable)
    assert gateway_server.calls == []
    assert sent == [("strategies.execute_decision", [decision.pk])]
