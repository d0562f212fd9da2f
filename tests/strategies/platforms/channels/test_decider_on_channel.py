"""A decider's approval on a connected shop (ATOM_DISPATCH=postgres, issue 16): inserted with its
first attempt claimed, it goes to the shop's channel (the fake Kuaishou, a real HTTP server) with
no claim of its own; an attempt that waited too long after its insert is given back unsent and
claimed anew, so the channel's calls start inside a whole lease."""

import datetime as dt
import json

import pytest
from django.db import connections
from django.test.utils import CaptureQueriesContext

from strategies.models import AfterSaleRequest, Decision
from strategies.pipeline import claim, decide, execute
from strategies.pipeline.publish import DECIDE_TASK, EXECUTE_TASK
from strategies.pipeline.rows import decision_claim_execution
from strategies.platforms.kuaishou.client import REFUND_APPROVE
from strategies.platforms.kuaishou.messages import encrypt_message

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def received(client, ks_fake, ks_shop, sent, drain, settings) -> AfterSaleRequest:
    """A pushed 9.90 refund-only request, taken in and still to decide."""
    settings.ATOM_DISPATCH = "postgres"
    ks_fake.add_order("5001", status=40, items=[(9001, "T-shirt", 1, 990)])
    ks_fake.add_refund("7001", order_id="5001", fee=990, handling_way=10)
    body = encrypt_message(
        json.dumps(ks_fake.envelope("7001"), ensure_ascii=False), message_key=ks_fake.message_key
    )
    answer = client.post(
        f"/platforms/kuaishou/push/{ks_fake.app_key}",
        data=body,
        content_type="text/plain;charset=utf-8",
    )
    assert answer.status_code == 200
    drain(skip=frozenset({DECIDE_TASK, EXECUTE_TASK}))
    request = AfterSaleRequest.objects.get(shop=ks_shop, aftersale_id="7001")
    assert request.status == "received"
    return request


def test_the_deciders_approval_goes_to_the_channel_on_the_attempt_its_insert_claimed(
    received, ks_fake, sent
):
    with CaptureQueriesContext(connections["default"]) as queries:
        outcome = claim.decide_next(request_id=received.pk)
    assert outcome == claim.Outcome(request_id=received.pk, result="executed")
    assert [q["sql"] for q in queries if '"execution_attempts" + 1' in q["sql"]] == []
    decision = Decision.objects.get(request=received)
    assert decision.execution_attempts == 1
    assert decision.executed_at is not None and decision.execution_ambiguous_at is None
    [approval] = ks_fake.approvals_of("7001")
    assert approval["refundAmount"] == 990
    assert len(ks_fake.calls_of(REFUND_APPROVE)) == 1
    assert [name for name, _ in sent if name == EXECUTE_TASK] == []


def test_an_attempt_claimed_too_long_before_its_call_is_given_back_and_claimed_anew(
    received, ks_fake
):
    decided = decide.request_claim_and_decide(request_id=received.pk, claim_execution=True)
    assert decided is not None and decided.execution is not None
    waited = decided.started - execute.PRECLAIMED_MAX_AGE_SECONDS - 0.1

    result = execute.decision_execute_after_decision(
        decided.decision, claimed=decided.execution, claimed_started=waited
    )

    assert result == "executed"
    decision = Decision.objects.get(request=received)
    # Claimed again by the execution's own UPDATE; the first attempt was never sent, so the
    # second is not ambiguous.
    assert decision.execution_attempts == 2
    assert decision.execution_ambiguous_at is None
    assert len(ks_fake.calls_of(REFUND_APPROVE)) == 1


def test_a_claimed_attempt_without_its_start_is_refused(received):
    decided = decide.request_claim_and_decide(request_id=received.pk, claim_execution=True)
    assert decided is not None and decided.execution is not None
    with pytest.raises(ValueError, match=r"time\.monotonic\(\)"):
        execute.decision_execute(decision_id=decided.decision.pk, claimed=decided.execution)


def test_a_stalled_decider_never_clears_a_lease_someone_else_took_since(received, ks_fake, sent):
    decided = decide.request_claim_and_decide(request_id=received.pk, claim_execution=True)
    assert decided is not None and decided.execution is not None
    ours = Decision.objects.get(request=received).execution_lease_until
    # The decider stalls past its whole lease; meanwhile the sweeper's execution claims anew.
    later = ours + dt.timedelta(seconds=1)
    theirs = later + dt.timedelta(seconds=execute.execution_lease_seconds())
    assert (
        decision_claim_execution(decision_id=decided.decision.pk, now=later, lease_until=theirs)
        is not None
    )
    sent.clear()

    result = execute.decision_execute_after_decision(
        decided.decision, claimed=decided.execution, claimed_started=decided.started - 30
    )

    assert result == "busy"  # the other claim is left alone, its call to make
    decision = Decision.objects.get(request=received)
    assert decision.execution_lease_until == theirs
    assert decision.execution_sent_at is not None and decision.execution_attempts == 2
    assert ks_fake.calls_of(REFUND_APPROVE) == []
    assert [name for name, _ in sent] == [EXECUTE_TASK]  # comes back once that lease ends
