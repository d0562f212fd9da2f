"""The review queue on a connected Kuaishou shop, on a real Celery worker over Redis and
PostgreSQL against the fake Kuaishou (issue 14): two staff approving at once send one platform
call; a bulk approval of 200 sends 200 approvals, once each, across a worker's SIGKILL. The
generic gateway's versions are tests/strategies/pipeline/test_review_worker.py."""

import json
import os
import signal
import threading
from collections import Counter

import pytest
from django.db import connections

from strategies.models import AfterSaleRequest, Review
from strategies.pipeline.review import Submitted, review_submit
from strategies.platforms.kuaishou.client import REFUND_APPROVE
from tests.factories import make_decision, make_membership, make_order, make_request, make_shop
from tests.worker import wait_until

from .conftest import connect_kuaishou

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True), pytest.mark.timeout(240)]

# Each platform call is bounded by 2/5 of this; the lease outlives a killed worker's restart.
N = 200  # requests in the bulk approval
WORKER_ENV = {"ATOM_GATEWAY_TIMEOUT": "2.5", "ATOM_EXECUTION_LEASE_SECONDS": "10"}


@pytest.fixture
def ks_manual(transactional_db, ks_fake):
    shop = make_shop(code="ks-queue")
    connect_kuaishou(shop, ks_fake)
    return shop


def waiting(shop, fake, refund_id: int) -> AfterSaleRequest:
    """A 9.90 refund-only request waiting for a person, on ATOM and on the fake Kuaishou."""
    order_id = str(500000 + refund_id)
    fake.add_order(order_id, status=40, items=[(9001, "T-shirt", 1, 990)])
    fake.add_refund(str(refund_id), order_id=order_id, fee=990, handling_way=10)
    order = make_order(shop=shop, order_id=order_id, items=[("9001", 1, "9.90")])
    request = make_request(shop=shop, order=order, aftersale_id=str(refund_id), amount="9.90")
    make_decision(request=request, outcome="manual_review")
    return AfterSaleRequest.objects.get(pk=request.pk)


def test_two_staff_approving_one_kuaishou_request_at_once_send_one_platform_call(
    celery_worker, ks_fake, ks_manual, gateway_server
):
    alice = make_membership(shop=ks_manual, username="alice").user
    bob = make_membership(shop=ks_manual, username="bob").user
    request = waiting(ks_manual, ks_fake, 7001)
    celery_worker(env=WORKER_ENV)
    barrier = threading.Barrier(2)
    outcomes: list[Submitted] = []

    def click(user) -> None:
        try:
            barrier.wait(5)
            outcome, _ = review_submit(
                request_id=request.pk,
                action="approve",
                user=user,
                seen_version=request.updated_at,
            )
            outcomes.append(outcome)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=click, args=(u,)) for u in (alice, bob)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert sorted(o.value for o in outcomes) == ["queued", "taken"]
    assert wait_until(lambda: AfterSaleRequest.objects.get(pk=request.pk).status == "executed")
    assert len(ks_fake.calls_of(REFUND_APPROVE)) == 1
    assert len(ks_fake.approvals_of("7001")) == 1
    assert gateway_server.calls == []  # the shop's channel, never the generic gateway
    review = Review.objects.get()
    assert (review.result, review.action) == ("done", "approve")


def test_a_bulk_approval_of_200_on_kuaishou_is_carried_out_once_each_across_a_worker_sigkill(
    celery_worker, ks_fake, ks_manual
):
    owner = make_membership(shop=ks_manual).user
    requests = [waiting(ks_manual, ks_fake, 8000 + i) for i in range(N)]
    ks_fake.script(REFUND_APPROVE, "hold")  # the first approval is held while its worker dies
    for r in requests:
        outcome, _ = review_submit(
            request_id=r.pk, action="approve", user=owner, seen_version=r.updated_at
        )
        assert outcome is Submitted.QUEUED
    # Started once the 200 tasks wait in the broker, so the kill lands while the held call is
    # still in flight (within its deadline), as a crash mid-call does.
    worker = celery_worker(env=WORKER_ENV, pool="prefork", concurrency=1)
    assert ks_fake.held.wait(30)
    [child] = worker.pool_pids()
    os.kill(child, signal.SIGKILL)
    ks_fake.release()  # the platform carries out the call the dead task sent
    assert wait_until(
        lambda: AfterSaleRequest.objects.filter(shop=ks_manual, status="executed").count() == N,
        timeout=200,
    )
    # N refunds agreed on the platform, each once: the killed task's approval went through,
    # and its redelivery read the refund as agreed (after an ambiguous attempt: ours).
    agreed = Counter(refund_id for refund_id, _, _ in ks_fake.approvals)
    assert set(agreed) == {str(r.aftersale_id) for r in requests}
    assert set(agreed.values()) == {1}
    assert all(ks_fake.refunds[str(r.aftersale_id)]["status"] == 50 for r in requests)
    assert Review.objects.filter(result="done").count() == N
    # The kill did land mid-call: the held review was attempted again, marked ambiguous.
    first = json.loads(ks_fake.calls_of(REFUND_APPROVE)[0].params["param"])["refundId"]
    held = Review.objects.get(request__aftersale_id=str(first))
    assert held.attempts >= 2 and held.ambiguous_at is not None
    # A second approve of one refund would be refused (300010): they are the exception.
    assert len(ks_fake.calls_of(REFUND_APPROVE)) <= 203
