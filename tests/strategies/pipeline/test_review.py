"""The review queue's service (strategies/pipeline/review.py) against a real local gateway:
refusals, stale versions, handled elsewhere, the order-total rule and the caps (issue 14)."""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from strategies.models import AfterSaleRequest, DailyLedger, Review
from strategies.pipeline.review import Submitted, review_execute, review_submit
from tests.factories import (
    make_decision,
    make_membership,
    make_order,
    make_request,
    make_strategy,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def staff(shop):
    return make_membership(shop=shop, username="reviewer").user


def waiting(shop, aftersale_id: str, *, amount: str = "9.90", order=None) -> AfterSaleRequest:
    order = order or make_order(shop=shop, items=[("P1", 1, "100.00")])
    request = make_request(shop=shop, order=order, aftersale_id=aftersale_id, amount=amount)
    make_decision(request=request, outcome="manual_review")
    return AfterSaleRequest.objects.get(pk=request.pk)


def test_a_refusal_goes_out_with_its_reason_and_is_recorded(gateway_server, shop, staff):
    request = waiting(shop, "AS-NO")
    outcome, review = review_submit(
        request_id=request.pk,
        action="refuse",
        user=staff,
        seen_version=request.updated_at,
        reason="Goods already used",
    )
    assert outcome is Submitted.QUEUED and review is not None
    assert review_execute(review_id=review.pk).state.value == "done"
    [call] = gateway_server.calls
    assert call.path == "/aftersales/AS-NO/reject"
    assert call.body == {"aftersale_id": "AS-NO", "reason": "Goods already used"}
    assert call.idempotency_key == str(review.idempotency_key)
    assert AfterSaleRequest.objects.get(pk=request.pk).status == "refused"
    review.refresh_from_db()
    assert (review.result, review.username) == ("done", "reviewer")
    # Carried out once: a redelivered task finds it done and sends nothing.
    assert review_execute(review_id=review.pk).state.value == "nothing"
    assert len(gateway_server.calls) == 1


def test_a_refusal_with_a_stale_version_is_re_read_not_sent(gateway_server, shop, staff):
    request = waiting(shop, "AS-STALE")
    seen = request.updated_at
    # The request changes after the person saw it (the platform pushed news, a strategy ran).
    AfterSaleRequest.objects.filter(pk=request.pk).update(
        updated_at=timezone.now() + dt.timedelta(seconds=1)
    )
    outcome, review = review_submit(
        request_id=request.pk, action="refuse", user=staff, seen_version=seen, reason="no"
    )
    assert (outcome, review) == (Submitted.STALE, None)
    assert gateway_server.calls == [] and not Review.objects.exists()
    # Re-read: with the version as it is now, the refusal goes out.
    fresh = AfterSaleRequest.objects.get(pk=request.pk)
    outcome, review = review_submit(
        request_id=request.pk,
        action="refuse",
        user=staff,
        seen_version=fresh.updated_at,
        reason="no",
    )
    assert outcome is Submitted.QUEUED


def test_a_request_that_left_the_queue_before_the_task_ran_is_not_sent(gateway_server, shop, staff):
    request = waiting(shop, "AS-GONE")
    _, review = review_submit(
        request_id=request.pk,
        action="refuse",
        user=staff,
        seen_version=request.updated_at,
        reason="no",
    )
    AfterSaleRequest.objects.filter(pk=request.pk).update(status="executed")
    assert review_execute(review_id=review.pk).state.value == "stale"
    assert gateway_server.calls == []


def test_a_refusal_needs_a_reason(gateway_server, shop, staff):
    request = waiting(shop, "AS-WHY")
    outcome, _ = review_submit(
        request_id=request.pk, action="refuse", user=staff, seen_version=request.updated_at
    )
    assert outcome is Submitted.NO_REASON and not Review.objects.exists()


def test_handled_elsewhere_sends_nothing_and_is_audited(gateway_server, shop, staff):
    request = waiting(shop, "AS-ELSE")
    outcome, review = review_submit(
        request_id=request.pk,
        action="done_elsewhere",
        user=staff,
        seen_version=request.updated_at,
        reason="refunded by phone",
    )
    assert outcome is Submitted.DONE
    assert AfterSaleRequest.objects.get(pk=request.pk).status == "done_elsewhere"
    assert (review.username, review.reason, review.result) == (
        "reviewer",
        "refunded by phone",
        "done",
    )
    assert gateway_server.calls == []


def test_a_manual_approval_consumes_no_cap_and_keeps_to_the_order_total(
    gateway_server, shop, staff
):
    strategy = make_strategy(shop=shop, status="active", daily_cap=Decimal("100.00"))
    order = make_order(shop=shop, items=[("P1", 1, "50.00")])
    auto = make_request(shop=shop, order=order, aftersale_id="AS-AUTO", amount="30.00")
    make_decision(request=auto, strategy=strategy)  # 30.00 of the order's 50.00 approved
    first = waiting(shop, "AS-M1", amount="15.00", order=order)
    second = waiting(shop, "AS-M2", amount="10.00", order=order)
    outcome, review = review_submit(
        request_id=first.pk, action="approve", user=staff, seen_version=first.updated_at
    )
    assert outcome is Submitted.QUEUED
    assert review_execute(review_id=review.pk).state.value == "done"
    # 30 + 15 + 10 > 50: refused before anything is sent.
    outcome, _ = review_submit(
        request_id=second.pk, action="approve", user=staff, seen_version=second.updated_at
    )
    assert outcome is Submitted.OVER_TOTAL
    assert [c.path for c in gateway_server.calls] == ["/aftersales/AS-M1/approve"]
    assert DailyLedger.objects.get().consumed == Decimal("30.00")  # the strategy's alone


def test_a_permanent_refusal_by_the_platform_leaves_the_request_for_another_try(
    gateway_server, shop, staff
):
    gateway_server.script = [422]
    request = waiting(shop, "AS-422")
    _, review = review_submit(
        request_id=request.pk, action="approve", user=staff, seen_version=request.updated_at
    )
    assert review_execute(review_id=review.pk).state.value == "failed"
    review.refresh_from_db()
    assert "422" in review.detail
    request.refresh_from_db()
    assert request.status == "manual_review"
    outcome, _ = review_submit(
        request_id=request.pk, action="approve", user=staff, seen_version=request.updated_at
    )
    assert outcome is Submitted.QUEUED  # a failed review does not hold the request


def test_the_api_says_who_reviewed_what_and_the_decision_stays_as_decided(
    gateway_server, shop, staff
):
    from strategies.platforms.generic.auth import request_status_for_api

    request = waiting(shop, "AS-API")
    assert request_status_for_api(shop=shop, aftersale_id="AS-API")["review"] is None
    _, review = review_submit(
        request_id=request.pk,
        action="refuse",
        user=staff,
        seen_version=request.updated_at,
        reason="used goods",
    )
    review_execute(review_id=review.pk)
    view = request_status_for_api(shop=shop, aftersale_id="AS-API")
    assert view["status"] == "refused"
    assert view["decision"]["outcome"] == "manual_review"
    assert {k: view["review"][k] for k in ("action", "by", "reason", "result")} == {
        "action": "refuse",
        "by": "reviewer",
        "reason": "used goods",
        "result": "done",
    }
    assert view["review"]["at"].endswith("+08:00")


def test_intake_stores_the_platform_deadline(shop):
    from strategies.pipeline.intake import request_receive
    from strategies.platforms.base import AfterSaleIn, ItemIn, OrderIn

    now = timezone.now()
    deadline = now + dt.timedelta(hours=48)
    data = AfterSaleIn(
        aftersale_id="AS-DEADLINE",
        buyer_id="B1",
        type="refund_only",
        reason="other",
        amount=Decimal("5.00"),
        applied_at=now,
        risk_flag=False,
        order=OrderIn(
            order_id="OD-DL",
            status="shipped",
            paid_at=now,
            shipped_at=now,
            received_at=None,
            tags=[],
            items=[ItemIn(product_id="P1", title="t", quantity=1, price=Decimal("5.00"))],
        ),
        deadline=deadline,
    )
    request_receive(shop=shop, request=data, payload={"x": 1})
    assert AfterSaleRequest.objects.get(aftersale_id="AS-DEADLINE").platform_deadline == deadline


def test_a_copy_that_loses_the_claim_as_the_holder_gives_the_lease_back_claims_again(
    gateway_server, shop, staff, monkeypatch
):
    """The holder's attempt ends (lease given back, still pending) between this copy's lost
    claim and its look at the lease: the copy carries the review out instead of stopping."""
    from strategies.pipeline import review as reviews

    request = waiting(shop, "AS-RACE")
    _, review = review_submit(
        request_id=request.pk,
        action="refuse",
        user=staff,
        seen_version=request.updated_at,
        reason="Goods already used",
    )
    assert review is not None
    real_claim = reviews._review_claim
    claims: list[bool] = []

    def claim_raced_by_the_holder(**kwargs):
        if not claims:
            held = timezone.now() + dt.timedelta(seconds=30)
            Review.objects.filter(pk=review.pk).update(lease_until=held)
            claims.append(real_claim(**kwargs))  # lost: the lease is held
            Review.objects.filter(pk=review.pk).update(lease_until=None)  # ... and given back
            return claims[-1]
        claims.append(real_claim(**kwargs))
        return claims[-1]

    monkeypatch.setattr(reviews, "_review_claim", claim_raced_by_the_holder)
    assert review_execute(review_id=review.pk).state.value == "done"
    assert claims == [False, True]
    assert len(gateway_server.calls) == 1
    assert AfterSaleRequest.objects.get(pk=request.pk).status == "refused"
