"""The review queue's actions on a real Celery worker over Redis and PostgreSQL, against a real
local gateway (issue 14): claimed once, carried out once, across a worker's SIGKILL."""

import os
import signal
import threading
from collections import Counter

import pytest
from django.db import connections

from strategies.models import AfterSaleRequest, Review
from strategies.pipeline.review import Submitted, review_submit
from tests.factories import make_decision, make_membership, make_order, make_request, make_shop
from tests.worker import wait_until

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True), pytest.mark.timeout(180)]


def waiting(shop, aftersale_id: str, amount: str = "9.90") -> AfterSaleRequest:
    order = make_order(shop=shop, items=[("P1", 1, "100.00")])
    request = make_request(shop=shop, order=order, aftersale_id=aftersale_id, amount=amount)
    make_decision(request=request, outcome="manual_review")
    return AfterSaleRequest.objects.get(pk=request.pk)


def test_two_staff_approving_one_request_at_once_send_one_gateway_call(
    celery_worker, gateway_server
):
    shop = make_shop()
    alice = make_membership(shop=shop, username="alice").user
    bob = make_membership(shop=shop, username="bob").user
    request = waiting(shop, "AS-TWICE")
    celery_worker(gateway=gateway_server)
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
    posts = gateway_server.approvals_of("POST")
    assert [c.path for c in posts] == ["/aftersales/AS-TWICE/approve"]
    review = Review.objects.get()
    assert posts[0].idempotency_key == str(review.idempotency_key)
    assert (review.result, review.action) == ("done", "approve")
    assert review.username in ("alice", "bob")


def test_a_bulk_approval_of_200_is_carried_out_once_each_across_a_worker_sigkill(
    celery_worker, gateway_server
):
    shop = make_shop()
    owner = make_membership(shop=shop).user
    requests = [waiting(shop, f"AS-BULK-{i:03d}") for i in range(200)]
    gateway_server.script = ["hold"]  # the first call is held while its worker is killed
    worker = celery_worker(gateway=gateway_server, pool="prefork", concurrency=1)
    for r in requests:
        outcome, _ = review_submit(
            request_id=r.pk, action="approve", user=owner, seen_version=r.updated_at
        )
        assert outcome is Submitted.QUEUED
    assert gateway_server.held.wait(30)
    [child] = worker.pool_pids()
    os.kill(child, signal.SIGKILL)
    gateway_server.release()  # the platform carries out the call the dead task sent
    assert wait_until(
        lambda: AfterSaleRequest.objects.filter(shop=shop, status="executed").count() == 200,
        timeout=150,
    )
    keys = {str(k) for k in Review.objects.values_list("idempotency_key", flat=True)}
    assert len(keys) == 200
    # Every review approved on the platform under its own key, and carried out once: a call
    # sent again (the killed task's, redelivered) carries the same key and is answered 409
    # (already approved), never a second approval.
    assert gateway_server.approved_keys() == keys
    posts = gateway_server.approvals_of("POST")
    assert len({c.path for c in posts}) == 200
    carried_out = Counter(c.idempotency_key for c in posts if 200 <= c.status < 300)
    assert set(carried_out) == keys and set(carried_out.values()) == {1}
    for call in posts:
        assert call.status in (200, 409)
    repeated = Counter(c.path for c in posts)
    assert sum(n - 1 for n in repeated.values()) <= 3  # retries are the exception
    assert Review.objects.filter(result="done").count() == 200
