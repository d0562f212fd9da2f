"""A review left ``unknown`` confirmed "paid" / "not paid" (strategies/pipeline/review.py):
claimed once, audited, the request finished or back in the queue (issue 14, docs/review.md)."""

import pytest

from monitoring.selectors import refunded_today
from strategies.models import AfterSaleRequest, Review, ReviewConfirmation
from strategies.pipeline.review import (
    Submitted,
    _finish,
    review_confirm_not_paid,
    review_confirm_paid,
    review_submit,
)
from strategies.platforms.generic.auth import request_status_for_api
from tests.concurrency import run_concurrently
from tests.factories import make_decision, make_membership, make_order, make_request

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def staff(shop):
    return make_membership(shop=shop, username="reviewer").user


def left_unknown(shop, staff, aftersale_id: str, *, action: str = "approve") -> Review:
    """A review as the service leaves it when the platform could not say (``_finish``)."""
    order = make_order(shop=shop, items=[("P1", 1, "100.00")])
    request = make_request(shop=shop, order=order, aftersale_id=aftersale_id, amount="9.90")
    make_decision(request=request, outcome="manual_review")
    request.refresh_from_db()
    outcome, review = review_submit(
        request_id=request.pk,
        action=action,
        user=staff,
        seen_version=request.updated_at,
        reason="used" if action == "refuse" else "",
    )
    assert outcome is Submitted.QUEUED
    assert _finish(review, "unknown", "kuaishou: timeout, the platform did not say")
    return Review.objects.get(pk=review.pk)


def test_paid_finishes_the_request_counts_in_refunded_today_and_is_audited(shop, staff):
    review = left_unknown(shop, staff, "AS-PAID")
    assert refunded_today(shop=shop, rows=[]).people_count == 0
    assert review_confirm_paid(review_id=review.pk, user=staff)
    review.refresh_from_db()
    assert review.result == "done"
    assert review.detail.endswith("; confirmed paid by reviewer")
    assert AfterSaleRequest.objects.get(pk=review.request_id).status == "executed"
    audit = ReviewConfirmation.objects.get()
    assert (audit.review_id, audit.verdict, audit.username) == (review.pk, "paid", "reviewer")
    today = refunded_today(shop=shop, rows=[])
    assert (today.people_count, str(today.by_people)) == (1, "9.90")
    view = request_status_for_api(shop=shop, aftersale_id="AS-PAID")["review"]
    assert view["result"] == "done"
    assert {k: view["confirmation"][k] for k in ("verdict", "by")} == {
        "verdict": "paid",
        "by": "reviewer",
    }
    assert view["confirmation"]["at"].endswith("+08:00")
    # Once only: a second confirmation (either way) changes nothing.
    assert not review_confirm_paid(review_id=review.pk, user=staff)
    assert not review_confirm_not_paid(review_id=review.pk, user=staff)
    assert ReviewConfirmation.objects.count() == 1


def test_paid_for_a_refusal_left_unknown_refuses_the_request(shop, staff):
    review = left_unknown(shop, staff, "AS-REF", action="refuse")
    assert review_confirm_paid(review_id=review.pk, user=staff)
    assert AfterSaleRequest.objects.get(pk=review.request_id).status == "refused"


def test_not_paid_puts_the_request_back_in_the_queue_for_a_new_review(shop, staff):
    review = left_unknown(shop, staff, "AS-NOT")
    before = AfterSaleRequest.objects.get(pk=review.request_id)
    # Held by the unknown review: no second approval meanwhile.
    outcome, _ = review_submit(
        request_id=before.pk, action="approve", user=staff, seen_version=before.updated_at
    )
    assert outcome is Submitted.TAKEN
    assert review_confirm_not_paid(review_id=review.pk, user=staff)
    review.refresh_from_db()
    assert review.result == "failed" and "confirmed not paid by reviewer" in review.detail
    after = AfterSaleRequest.objects.get(pk=review.request_id)
    assert after.status == "manual_review"
    assert after.updated_at > before.updated_at  # a page seen before is re-read
    assert refunded_today(shop=shop, rows=[]).people_count == 0
    view = request_status_for_api(shop=shop, aftersale_id="AS-NOT")["review"]
    assert (view["result"], view["confirmation"]["verdict"]) == ("failed", "not_paid")
    outcome, again = review_submit(
        request_id=after.pk, action="approve", user=staff, seen_version=after.updated_at
    )
    assert outcome is Submitted.QUEUED and again.pk != review.pk


def test_only_a_review_left_unknown_can_be_confirmed(shop, staff):
    order = make_order(shop=shop, items=[("P1", 1, "100.00")])
    request = make_request(shop=shop, order=order, aftersale_id="AS-PEND", amount="9.90")
    make_decision(request=request, outcome="manual_review")
    request.refresh_from_db()
    _, review = review_submit(
        request_id=request.pk, action="approve", user=staff, seen_version=request.updated_at
    )
    assert not review_confirm_paid(review_id=review.pk, user=staff)  # still pending
    assert not review_confirm_not_paid(review_id=review.pk, user=staff)
    assert Review.objects.get(pk=review.pk).result == "pending"
    assert not ReviewConfirmation.objects.exists()


@pytest.mark.parametrize("threads", [8])
def test_concurrent_confirmations_one_wins(shop, staff, threads):
    """Staff clicking "paid" and "not paid" at once: exactly one confirms, once."""
    review = left_unknown(shop, staff, "AS-RACE")
    confirms = [review_confirm_paid, review_confirm_not_paid] * (threads // 2)
    results = run_concurrently(
        lambda confirm: confirm(review_id=review.pk, user=staff), confirms, threads=threads
    )
    assert sorted(results) == [False] * (threads - 1) + [True]
    audit = ReviewConfirmation.objects.get()
    review.refresh_from_db()
    status = AfterSaleRequest.objects.get(pk=review.request_id).status
    expected = {"paid": ("done", "executed"), "not_paid": ("failed", "manual_review")}
    assert (review.result, status) == expected[audit.verdict]
