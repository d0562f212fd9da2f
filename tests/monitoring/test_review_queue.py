"""The review queue page (人工审核): tabs, rows, actions with their summary, rights, and a
pinned query count (issue 14, issue 12.10)."""

import datetime as dt

import pytest
from django.conf import settings
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse
from django.utils import timezone

from strategies.models import AfterSaleRequest, Review
from tests.factories import make_decision, make_order, make_request, make_strategy

pytestmark = pytest.mark.django_db

QUEUE = "admin:monitoring_reviewqueueentry_changelist"


def waiting(shop, aftersale_id: str, *, amount: str = "9.90", deadline=None, scenario=""):
    order = make_order(shop=shop, items=[("P1", 1, "100.00")])
    request = make_request(shop=shop, order=order, aftersale_id=aftersale_id, amount=amount)
    decision = make_decision(request=request, outcome="manual_review")
    if scenario:
        type(decision).objects.filter(pk=decision.pk).update(
            scenario=scenario,
            explanations=[
                {
                    "scenario": scenario,
                    "strategy": {"id": 1, "name": "Small refunds"},
                    "code": "over_per_request_cap",
                    "message": "over the per-request cap",
                }
            ],
        )
    if deadline is not None:
        AfterSaleRequest.objects.filter(pk=request.pk).update(platform_deadline=deadline)
    return AfterSaleRequest.objects.get(pk=request.pk)


@pytest.fixture
def as_viewer(client, viewer):
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    client.force_login(viewer)
    return client


def test_the_queue_lists_what_waits_oldest_deadline_first_with_each_strategys_reason(
    as_owner, shop
):
    now = timezone.now()
    waiting(shop, "AS-LATE", deadline=now + dt.timedelta(hours=30))
    waiting(shop, "AS-SOON", deadline=now + dt.timedelta(hours=2), scenario="post_shipment_refund")
    waiting(shop, "AS-NONE")
    make_request(shop=shop, aftersale_id="AS-RECEIVED")  # not waiting for a person
    html = as_owner.get(reverse(QUEUE)).content.decode()
    assert html.index("AS-SOON") < html.index("AS-LATE") < html.index("AS-NONE")
    assert "AS-RECEIVED" not in html
    assert "Small refunds" in html and "left" in html  # the reason and the countdown
    tab = as_owner.get(reverse(QUEUE), {"tab": "post_shipment_refund"}).content.decode()
    assert "AS-SOON" in tab and "AS-LATE" not in tab
    none = as_owner.get(reverse(QUEUE), {"tab": "none"}).content.decode()
    assert "AS-LATE" in none and "AS-SOON" not in none
    found = as_owner.get(reverse(QUEUE), {"q": "AS-LATE"}).content.decode()
    assert "AS-LATE" in found and "AS-SOON" not in found


def test_an_undeclared_filter_is_refused_not_ignored(as_owner, shop):
    waiting(shop, "AS-1")
    response = as_owner.get(reverse(QUEUE), {"buyer_id__regex": "."})
    assert response.status_code == 302 and "e=1" in response["Location"]
    said = [str(m) for m in response.wsgi_request._messages]
    assert any("buyer_id__regex" in m for m in said)


def test_a_bulk_approval_shows_count_and_total_before_anything_is_sent(as_owner, shop):
    a = waiting(shop, "AS-A", amount="10.00")
    b = waiting(shop, "AS-B", amount="5.50")
    data = {"action": "review_approve", ACTION_CHECKBOX_NAME: [a.pk, b.pk]}
    page = as_owner.post(reverse(QUEUE), data).content.decode()
    assert "2 requests, 15.50 in all." in page
    assert not Review.objects.exists()
    data.update(
        {
            "post": "yes",
            f"version_{a.pk}": a.updated_at.isoformat(),
            f"version_{b.pk}": b.updated_at.isoformat(),
        }
    )
    done = as_owner.post(reverse(QUEUE), data, follow=True).content.decode()
    assert "2 requests taken" in done
    assert Review.objects.filter(action="approve", result="pending").count() == 2


def test_a_refusal_without_a_reason_asks_for_one(as_owner, shop):
    a = waiting(shop, "AS-R")
    data = {"action": "review_refuse", ACTION_CHECKBOX_NAME: [a.pk], "post": "yes"}
    page = as_owner.post(reverse(QUEUE), data).content.decode()
    assert "A reason is required." in page and not Review.objects.exists()
    data.update({"review_reason": "used goods", f"version_{a.pk}": a.updated_at.isoformat()})
    as_owner.post(reverse(QUEUE), data, follow=True)
    assert Review.objects.get().reason == "used goods"


def test_a_viewer_sees_the_queue_but_a_post_is_403_and_changes_nothing(as_viewer, shop):
    a = waiting(shop, "AS-V")
    page = as_viewer.get(reverse(QUEUE)).content.decode()
    assert "AS-V" in page and "review_approve" not in page
    for action in ("review_approve", "review_refuse", "review_done_elsewhere", "confirm_paid"):
        response = as_viewer.post(
            reverse(QUEUE),
            {
                "action": action,
                ACTION_CHECKBOX_NAME: [a.pk],
                "post": "yes",
                "review_reason": "x",
                f"version_{a.pk}": a.updated_at.isoformat(),
            },
        )
        assert response.status_code == 403
    assert not Review.objects.exists()
    assert AfterSaleRequest.objects.get(pk=a.pk).status == "manual_review"


def test_an_operator_acts_only_after_choosing_the_shop(client, shop, django_user_model):
    operator = django_user_model.objects.create_superuser("op", password="pw-for-tests-1")
    client.force_login(operator)
    a = waiting(shop, "AS-OP")
    data = {
        "action": "review_done_elsewhere",
        ACTION_CHECKBOX_NAME: [a.pk],
        "post": "yes",
        "review_reason": "phone",
        f"version_{a.pk}": a.updated_at.isoformat(),
    }
    assert client.post(reverse(QUEUE), data).status_code == 403
    assert not Review.objects.exists()
    client.post(f"{reverse(QUEUE)}?shop={shop.pk}", data)
    assert Review.objects.get().username == "op"


def test_another_shops_requests_are_not_in_the_queue(as_owner, shop, other_shop):
    waiting(other_shop, "AS-THEIRS")
    assert "AS-THEIRS" not in as_owner.get(reverse(QUEUE)).content.decode()


def test_the_queue_is_in_chinese_by_default(owner_client, shop):
    waiting(shop, "AS-ZH")
    html = owner_client.get(reverse(QUEUE)).content.decode()
    assert "人工审核" in html and "批准所选" in html


def test_the_queue_page_query_count_is_pinned(as_owner, shop, django_assert_num_queries):
    strategy = make_strategy(shop=shop, status="active")
    for i in range(3):
        waiting(shop, f"AS-Q{i}", scenario=strategy.scenario)
    as_owner.get(reverse(QUEUE))  # warm the session and content types
    with django_assert_num_queries(QUEUE_QUERIES):
        assert as_owner.get(reverse(QUEUE)).status_code == 200
    for i in range(3, 40):
        waiting(shop, f"AS-Q{i}", scenario=strategy.scenario)
    with django_assert_num_queries(QUEUE_QUERIES):
        assert as_owner.get(reverse(QUEUE)).status_code == 200


QUEUE_QUERIES = 10


def test_the_dashboard_counts_manual_approvals_in_refunded_today_not_in_any_cap(as_owner, shop):
    from decimal import Decimal

    from strategies.models import DailyLedger

    strategy = make_strategy(shop=shop, status="active")
    auto = make_request(shop=shop, aftersale_id="AS-AUTO", amount="20.00")
    make_decision(request=auto, strategy=strategy)
    manual = waiting(shop, "AS-MAN", amount="7.50")
    Review.objects.create(
        shop=shop,
        request=manual,
        action="approve",
        amount=Decimal("7.50"),
        username="owner-a",
        seen_version=manual.updated_at,
        created_at=timezone.now(),
        result="done",
        finished_at=timezone.now(),
    )
    html = as_owner.get(reverse("monitoring:consumption")).content.decode()
    assert (
        "Refunded today: 27.50 (20.00 by the strategies, 7.50 approved by people in 1 request"
        in html
    )
    assert DailyLedger.objects.get().consumed == Decimal("20.00")


def test_paid_in_the_queue_is_the_shared_confirmation_page_then_one_audited_confirmation(
    as_owner, shop
):
    """The same "paid" / "not paid" as the after-sales list (strategies/admin/confirmations.py):
    the page first, nothing changed; then the confirmation, once."""
    from strategies.models import ExecutionConfirmation

    decision = make_decision(request=make_request(shop=shop, aftersale_id="AS-UNSURE"))
    AfterSaleRequest.objects.filter(pk=decision.request_id).update(status="unknown")
    data = {"action": "confirm_paid", ACTION_CHECKBOX_NAME: [decision.request_id]}
    page = as_owner.post(reverse(QUEUE), data).content.decode()
    assert "AS-UNSURE" in page and "Yes, they were paid" in page
    assert "tab=unknown" in page  # back to the queue's tab, not the request list
    assert AfterSaleRequest.objects.get(pk=decision.request_id).status == "unknown"
    done = as_owner.post(reverse(QUEUE), {**data, "post": "yes"}, follow=True)
    assert "1 request confirmed" in done.content.decode()
    assert AfterSaleRequest.objects.get(pk=decision.request_id).status == "executed"
    assert ExecutionConfirmation.objects.get().verdict == "paid"
    again = as_owner.post(reverse(QUEUE), {**data, "post": "yes"}, follow=True)
    assert "nothing done" in again.content.decode()
    assert ExecutionConfirmation.objects.count() == 1


def test_the_search_is_the_exact_after_sales_id_or_order_id_of_the_shop(
    as_owner, client, shop, other_shop, django_user_model
):
    mine = waiting(shop, "AS-MINE")
    waiting(shop, "AS-OTHER-OF-MINE")
    theirs = waiting(other_shop, "AS-THEIRS")
    order_id = mine.order.order_id

    def rows(user_client, term: str) -> set[str]:
        html = user_client.get(reverse(QUEUE), {"q": term}).content.decode()
        ids = ("AS-MINE", "AS-OTHER-OF-MINE", "AS-THEIRS")
        return {i for i in ids if f">{i}</a>" in html}

    assert rows(as_owner, order_id) == {"AS-MINE"}
    assert rows(as_owner, "AS-MINE") == {"AS-MINE"}
    assert rows(as_owner, "as-mine") == set()  # exact, as the decision log's
    assert rows(as_owner, "AS-THEIRS") == set()  # another shop's
    # An operator who has not chosen a shop finds it in any shop, by either id.
    operator = django_user_model.objects.create_superuser("op-search", password="pw-for-tests-1")
    client.force_login(operator)
    for term in ("AS-THEIRS", theirs.order.order_id):
        assert rows(client, term) == {"AS-THEIRS"}


def review_left_unknown(shop, user, aftersale_id: str) -> Review:
    """A person's approval the platform could not settle, as the review service leaves it."""
    from strategies.pipeline.review import _finish, review_submit

    request = waiting(shop, aftersale_id)
    _, review = review_submit(
        request_id=request.pk, action="approve", user=user, seen_version=request.updated_at
    )
    _finish(review, "unknown", "kuaishou: timeout, the platform did not say")
    return review


def test_a_review_left_unknown_is_confirmed_in_the_unknown_tab_through_the_shared_page(
    as_owner, shop, owner, other_shop
):
    from strategies.models import ExecutionConfirmation, ReviewConfirmation

    review = review_left_unknown(shop, owner, "AS-R-UNSURE")
    review_left_unknown(other_shop, owner, "AS-R-THEIRS")
    waiting(shop, "AS-PLAIN")  # waits for a person, nothing to confirm
    tab = as_owner.get(reverse(QUEUE), {"tab": "unknown"}).content.decode()
    assert "AS-R-UNSURE" in tab and "AS-PLAIN" not in tab and "AS-R-THEIRS" not in tab
    assert "confirm_not_paid" in tab
    data = {"action": "confirm_not_paid", ACTION_CHECKBOX_NAME: [review.request_id]}
    page = as_owner.post(reverse(QUEUE), data).content.decode()
    # The same page as the executions' (confirm_execution.html), with the platform's last word.
    assert "AS-R-UNSURE" in page and "Yes, they were not paid" in page
    assert "the platform did not say" in page and "back to the review queue" in page
    assert Review.objects.get(pk=review.pk).result == "unknown"
    done = as_owner.post(reverse(QUEUE), {**data, "post": "yes"}, follow=True)
    assert "1 request confirmed" in done.content.decode()
    assert Review.objects.get(pk=review.pk).result == "failed"
    assert ReviewConfirmation.objects.get().username == "owner-a"
    assert not ExecutionConfirmation.objects.exists()
    # Back in the queue, out of the unknown tab, actionable again.
    assert "AS-R-UNSURE" not in as_owner.get(reverse(QUEUE), {"tab": "unknown"}).content.decode()
    assert AfterSaleRequest.objects.get(pk=review.request_id).status == "manual_review"
    again = as_owner.post(reverse(QUEUE), {**data, "post": "yes"}, follow=True)
    assert "nothing done" in again.content.decode()
    assert ReviewConfirmation.objects.count() == 1


def test_paid_for_a_review_left_unknown_executes_the_request(as_owner, shop, owner):
    review = review_left_unknown(shop, owner, "AS-R-PAID")
    data = {"action": "confirm_paid", ACTION_CHECKBOX_NAME: [review.request_id], "post": "yes"}
    as_owner.post(f"{reverse(QUEUE)}?tab=unknown", data, follow=True)
    assert Review.objects.get(pk=review.pk).result == "done"
    assert AfterSaleRequest.objects.get(pk=review.request_id).status == "executed"


def test_a_viewer_cannot_confirm_a_review_left_unknown(as_viewer, shop, owner):
    review = review_left_unknown(shop, owner, "AS-R-VIEW")
    assert "AS-R-VIEW" in as_viewer.get(reverse(QUEUE), {"tab": "unknown"}).content.decode()
    for action in ("confirm_paid", "confirm_not_paid"):
        response = as_viewer.post(
            reverse(QUEUE),
            {"action": action, ACTION_CHECKBOX_NAME: [review.request_id], "post": "yes"},
        )
        assert response.status_code == 403
    assert Review.objects.get(pk=review.pk).result == "unknown"


def test_an_operator_confirms_a_review_left_unknown_only_after_choosing_the_shop(
    client, shop, owner, django_user_model
):
    from strategies.models import ReviewConfirmation

    client.force_login(django_user_model.objects.create_superuser("op", password="pw-for-tests-1"))
    review = review_left_unknown(shop, owner, "AS-R-OP")
    data = {"action": "confirm_paid", ACTION_CHECKBOX_NAME: [review.request_id], "post": "yes"}
    assert client.post(reverse(QUEUE), data).status_code == 403
    assert Review.objects.get(pk=review.pk).result == "unknown"
    client.post(f"{reverse(QUEUE)}?shop={shop.pk}", data)
    assert ReviewConfirmation.objects.get().username == "op"
