"""The review queue on connected shops (issue 14): a person's approval or refusal goes through
the shop's channel (the fake Kuaishou and Douyin, real local HTTP servers), never the generic
gateway, with the platform's answers mapped as for automatic approvals; a refusal of a request
changed on the platform since the person saw it is re-read, not sent blind."""

import json
from decimal import Decimal

import pytest
from django.utils import timezone

from strategies.models import AfterSaleRequest, Review
from strategies.pipeline.channels import aftersale_sync
from strategies.pipeline.review import Submitted, review_execute, review_submit
from strategies.platforms.base import GatewayError
from strategies.platforms.douyin.client import AFTERSALE_OPERATE
from strategies.platforms.kuaishou.client import (
    REFUND_APPROVE,
    REFUND_DETAIL,
    REFUND_REJECT,
)
from tests.factories import make_membership, make_shop

from .conftest import connect_douyin, connect_kuaishou

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def ks_manual(db, ks_fake):
    """A Kuaishou shop without strategies: everything it receives waits for a person."""
    shop = make_shop(code="ks-manual")
    connect_kuaishou(shop, ks_fake)
    return shop


@pytest.fixture
def dy_manual(db, dy_fake):
    shop = make_shop(code="dy-manual")
    connect_douyin(shop, dy_fake)
    return shop


@pytest.fixture
def staff(ks_manual):
    return make_membership(shop=ks_manual, username="reviewer").user


def received(shop, aftersale_id: str, drain) -> AfterSaleRequest:
    """Fetched from the platform as a push would, decided (no strategy: manual review)."""
    aftersale_sync(row=shop.channel, aftersale_id=aftersale_id, kind="new")
    drain()
    request = AfterSaleRequest.objects.get(shop=shop, aftersale_id=aftersale_id)
    assert request.status == "manual_review"
    return request


def submit(request, user, action: str, reason: str = "") -> Review:
    outcome, review = review_submit(
        request_id=request.pk,
        action=action,
        user=user,
        seen_version=request.updated_at,
        reason=reason,
    )
    assert outcome is Submitted.QUEUED and review is not None
    return review


@pytest.fixture
def ks_990(ks_fake) -> str:
    ks_fake.add_order("5001", status=40, items=[(9001, "T-shirt", 1, 990)])
    ks_fake.add_refund("7001", order_id="5001", fee=990, handling_way=10)
    return "7001"


def test_an_approval_on_a_kuaishou_shop_goes_through_its_channel_not_the_gateway(
    gateway_server, ks_fake, ks_manual, ks_990, staff, sent, drain
):
    request = received(ks_manual, ks_990, drain)
    review = submit(request, staff, "approve")
    assert review_execute(review_id=review.pk).state.value == "done"
    assert gateway_server.calls == []
    [approval] = ks_fake.approvals_of(ks_990)
    assert approval == {
        "refundId": 7001,
        "refundAmount": 990,
        "status": 10,
        "negotiateStatus": 1,
        "refundHandingWay": 10,
    }
    assert AfterSaleRequest.objects.get(pk=request.pk).status == "executed"
    # A redelivered task sends nothing more.
    assert review_execute(review_id=review.pk).state.value == "nothing"
    assert len(ks_fake.calls_of(REFUND_APPROVE)) == 1


def test_a_refusal_on_kuaishou_sends_an_offered_reason_code_the_words_and_the_version(
    gateway_server, ks_fake, ks_manual, ks_990, staff, sent, drain
):
    request = received(ks_manual, ks_990, drain)
    version = ks_fake.refunds[ks_990]["updateTime"]
    review = submit(request, staff, "refuse", reason="商品已使用")
    assert review_execute(review_id=review.pk).state.value == "done"
    assert gateway_server.calls == []
    assert ks_fake.rejections_of(ks_990) == [
        {"refundId": 7001, "reasonCode": 702, "rejectDesc": "商品已使用", "refundVersion": version}
    ]
    assert AfterSaleRequest.objects.get(pk=request.pk).status == "refused"
    assert Review.objects.get().result == "done"


def test_a_refusal_of_a_request_changed_on_kuaishou_since_it_was_seen_is_re_read_not_sent(
    ks_fake, ks_manual, ks_990, staff, sent, drain
):
    request = received(ks_manual, ks_990, drain)
    # The buyer lowers the amount on the platform; ATOM's copy (what the person saw) is older.
    ks_fake.update_refund(ks_990, refundFee=500)
    review = submit(request, staff, "refuse", reason="商品已使用")
    assert review_execute(review_id=review.pk).state.value == "stale"
    assert ks_fake.calls_of(REFUND_REJECT) == [] and ks_fake.rejections == []
    review.refresh_from_db()
    assert review.result == "stale" and "changed on Kuaishou" in review.detail
    # Re-read: ATOM's copy holds the fresh data under a new version; the old one is stale.
    fresh = AfterSaleRequest.objects.get(pk=request.pk)
    assert (fresh.status, fresh.amount) == ("manual_review", Decimal("5.00"))
    assert fresh.updated_at > request.updated_at
    assert fresh.payload["refund"]["refundFee"] == 500
    stale, _ = review_submit(
        request_id=request.pk,
        action="refuse",
        user=staff,
        seen_version=request.updated_at,
        reason="商品已使用",
    )
    assert stale is Submitted.STALE
    # On the fresh copy the refusal goes out, with the fresh version.
    again = submit(fresh, staff, "refuse", reason="商品已使用")
    assert review_execute(review_id=again.pk).state.value == "done"
    [rejection] = ks_fake.rejections_of(ks_990)
    assert rejection["refundVersion"] == fresh.payload["refund"]["updateTime"]


def test_a_version_conflict_during_the_refusal_is_read_again_and_never_resent(
    ks_fake, ks_manual, ks_990, staff, sent, drain
):
    request = received(ks_manual, ks_990, drain)

    def changes_on_the_way(server, call):
        server.update_refund(ks_990, refundFee=800)
        return server.handle(call)

    ks_fake.script(REFUND_REJECT, changes_on_the_way)
    review = submit(request, staff, "refuse", reason="商品已使用")
    assert review_execute(review_id=review.pk).state.value == "stale"
    assert len(ks_fake.calls_of(REFUND_REJECT)) == 1 and ks_fake.rejections == []
    fresh = AfterSaleRequest.objects.get(pk=request.pk)
    assert (fresh.status, fresh.amount) == ("manual_review", Decimal("8.00"))


def test_a_request_the_buyer_cancelled_leaves_the_queue_superseded(
    ks_fake, ks_manual, ks_990, staff, sent, drain
):
    request = received(ks_manual, ks_990, drain)
    ks_fake.update_refund(ks_990, status=70)  # closed on the platform
    review = submit(request, staff, "approve")
    assert review_execute(review_id=review.pk).state.value == "stale"
    assert ks_fake.calls_of(REFUND_APPROVE) == []
    assert AfterSaleRequest.objects.get(pk=request.pk).status == "superseded"


def test_a_request_already_agreed_on_kuaishou_is_marked_handled_elsewhere(
    ks_fake, ks_manual, ks_990, staff, sent, drain
):
    request = received(ks_manual, ks_990, drain)
    ks_fake.update_refund(ks_990, status=60, negotiateStatus=2)  # refunded in the console
    review = submit(request, staff, "approve")
    assert review_execute(review_id=review.pk).state.value == "stale"
    assert ks_fake.calls_of(REFUND_APPROVE) == []
    assert AfterSaleRequest.objects.get(pk=request.pk).status == "done_elsewhere"


def test_a_rate_limited_approval_is_retried_and_carried_out_once(
    ks_fake, ks_manual, ks_990, staff, sent, drain
):
    request = received(ks_manual, ks_990, drain)
    ks_fake.script(REFUND_DETAIL, "rate_limit")
    review = submit(request, staff, "approve")
    with pytest.raises(GatewayError) as raised:
        review_execute(review_id=review.pk)
    assert not raised.value.permanent
    review.refresh_from_db()
    # Kept through the platform's back-off: a copy of the task arriving meanwhile waits.
    assert review.result == "pending" and review.lease_until > timezone.now()
    assert review_execute(review_id=review.pk).state.value == "busy"
    Review.objects.filter(pk=review.pk).update(lease_until=timezone.now())  # the back-off ends
    assert review_execute(review_id=review.pk).state.value == "done"
    assert len(ks_fake.approvals_of(ks_990)) == 1


def test_a_refusal_on_douyin_is_an_operate_type_202_with_the_fresh_update_time(
    gateway_server, dy_fake, dy_manual, sent, drain
):
    user = make_membership(shop=dy_manual, username="dy-reviewer").user
    dy_fake.add_order("6001", status=3, items=[(3001, "T-shirt", 1, 990)])
    dy_fake.add_aftersale("7000000000000000001", order_id="6001", amount=990, kind=1)
    request = received(dy_manual, "7000000000000000001", drain)
    version = dy_fake.aftersales["7000000000000000001"]["update_time"]
    review = submit(request, user, "refuse", reason="商品已使用")
    assert review_execute(review_id=review.pk).state.value == "done"
    assert gateway_server.calls == []
    [call] = dy_fake.calls_of(AFTERSALE_OPERATE)
    assert json.loads(call.body) == {
        "type": 202,
        "items": [
            {"aftersale_id": "7000000000000000001", "update_time": version, "reason": "商品已使用"}
        ],
    }
    assert AfterSaleRequest.objects.get(pk=request.pk).status == "refused"


def test_a_refusal_of_a_request_changed_on_douyin_since_it_was_seen_is_not_sent(
    dy_fake, dy_manual, sent, drain
):
    user = make_membership(shop=dy_manual, username="dy-reviewer").user
    dy_fake.add_order("6002", status=3, items=[(3001, "T-shirt", 1, 990)])
    dy_fake.add_aftersale("7000000000000000002", order_id="6002", amount=990, kind=1)
    request = received(dy_manual, "7000000000000000002", drain)
    dy_fake.update_aftersale("7000000000000000002", refund_total_amount=600)
    review = submit(request, user, "refuse", reason="商品已使用")
    assert review_execute(review_id=review.pk).state.value == "stale"
    assert dy_fake.calls_of(AFTERSALE_OPERATE) == []
    fresh = AfterSaleRequest.objects.get(pk=request.pk)
    assert (fresh.status, fresh.amount) == ("manual_review", Decimal("6.00"))


def test_a_refusal_whose_worker_died_mid_call_is_ours_when_found_refused(
    ks_fake, ks_manual, ks_990, staff, sent, drain
):
    """The first attempt reached Kuaishou and its worker died before recording it (left marked
    as sent): the next attempt finds the refund refused, and that refusal is ours, not one made
    elsewhere."""
    request = received(ks_manual, ks_990, drain)
    review = submit(request, staff, "refuse", reason="商品已使用")
    Review.objects.filter(pk=review.pk).update(sent_at=timezone.now())  # the dead attempt
    ks_fake.update_refund(ks_990, status=12, negotiateStatus=3)  # what it did on the platform
    assert review_execute(review_id=review.pk).state.value == "done"
    assert ks_fake.calls_of(REFUND_REJECT) == []
    assert AfterSaleRequest.objects.get(pk=request.pk).status == "refused"
