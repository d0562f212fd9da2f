"""A Kuaishou refund and its order, mapped to the request ATOM decides."""

import datetime as dt
from decimal import Decimal

import pytest

from strategies.platforms.channel import MANUAL_NOT_AUTO, MANUAL_UNREADABLE
from strategies.platforms.kuaishou.mapping import fetched_from_kuaishou

PAID = 1_700_000_000_000
SENT = PAID + 86_400_000
SUBMITTED = SENT + 3_600_123


def refund(**changes):
    return {
        "refundId": 7001,
        "oid": 5001,
        "buyerOpenId": "buyer-open-1",
        "buyerId": 42,
        "handlingWay": 10,
        "specialRefundType": 0,
        "refundFee": 990,
        "refundReason": 3,
        "refundReasonDesc": "不想要了",
        "status": 10,
        "negotiateStatus": 1,
        "submitTime": SUBMITTED,
        "createTime": SUBMITTED - 5,
        "updateTime": SUBMITTED + 10,
        **changes,
    }


def order(**changes):
    return {
        "oid": 5001,
        "status": 40,
        "payTime": PAID,
        "sendTime": SENT,
        "buyerOpenId": "buyer-open-1",
        "orderProductInfoList": [
            {"itemId": 9001, "itemTitle": "T-shirt", "num": 2, "price": 495},
        ],
        **changes,
    }


def test_a_shipped_refund_only_request_maps_exactly():
    fetched = fetched_from_kuaishou(refund(), order())
    request = fetched.request
    assert fetched.manual_review == ""
    assert request is not None
    assert request.aftersale_id == "7001"
    assert request.buyer_id == "buyer-open-1"
    assert request.type == "refund_only"
    assert request.amount == Decimal("9.90") and str(request.amount) == "9.90"
    assert request.reason == "no_longer_needed"
    assert request.risk_flag is False
    assert request.applied_at == dt.datetime(2023, 11, 15, 23, 13, 20, 123000, tzinfo=dt.UTC)
    assert request.applied_at.utcoffset() == dt.timedelta(0)
    assert request.order.order_id == "5001"
    assert request.order.status == "shipped"
    assert request.order.paid_at == dt.datetime(2023, 11, 14, 22, 13, 20, tzinfo=dt.UTC)
    assert request.order.shipped_at == dt.datetime(2023, 11, 15, 22, 13, 20, tzinfo=dt.UTC)
    [item] = request.order.items
    assert (item.product_id, item.title, item.quantity, item.price) == (
        "9001",
        "T-shirt",
        2,
        Decimal("4.95"),
    )
    assert request.order.total == Decimal("9.90")
    assert fetched.snapshot.awaiting_seller and fetched.snapshot.version == SUBMITTED + 10
    assert fetched.payload == {"refund": refund(), "order": order()}


@pytest.mark.parametrize(
    ("status", "expected"),
    [(30, "pending_shipment"), (40, "shipped"), (50, "received"), (70, "completed")],
)
def test_order_statuses_map(status, expected):
    fetched = fetched_from_kuaishou(
        refund(), order(status=status, sendTime=0 if status == 30 else SENT)
    )
    assert fetched.request.order.status == expected
    assert (fetched.request.order.shipped_at is None) == (status == 30)


def test_a_return_request_is_return_and_refund():
    assert fetched_from_kuaishou(refund(handlingWay=1), order()).request.type == "return_refund"


@pytest.mark.parametrize(("way", "kind"), [(3, "exchange"), (4, "resend"), (5, "repair")])
def test_exchange_resend_and_repair_are_never_decided(way, kind):
    fetched = fetched_from_kuaishou(refund(handlingWay=way), None)
    assert fetched.request is None
    assert fetched.manual_review == MANUAL_NOT_AUTO
    assert fetched.manual_params == {"platform": "kuaishou", "kind": kind}


def test_price_protection_is_never_decided():
    fetched = fetched_from_kuaishou(refund(specialRefundType=1), order())
    assert fetched.request is None and fetched.manual_params["kind"] == "price_protection"


@pytest.mark.parametrize(
    "order_changes",
    [{"status": 10}, {"status": 80}, {"orderProductInfoList": []}, {"payTime": None}, {"oid": 9}],
)
def test_an_order_it_cannot_read_is_for_manual_review(order_changes):
    fetched = fetched_from_kuaishou(refund(), order(**order_changes))
    assert fetched.request is None
    assert fetched.manual_review == MANUAL_UNREADABLE
    assert fetched.manual_params["detail"]


def test_a_refund_without_amount_is_for_manual_review():
    fetched = fetched_from_kuaishou(refund(refundFee=0), order())
    assert fetched.request is None and fetched.manual_review == MANUAL_UNREADABLE


def test_the_buyer_falls_back_to_buyer_id_then_the_order():
    assert fetched_from_kuaishou(refund(buyerOpenId=None), order()).request.buyer_id == "42"
    fetched = fetched_from_kuaishou(refund(buyerOpenId=None, buyerId=None), order())
    assert fetched.request.buyer_id == "buyer-open-1"


def test_applied_at_falls_back_to_create_time():
    fetched = fetched_from_kuaishou(refund(submitTime=None), order())
    assert fetched.request.applied_at == dt.datetime(
        2023, 11, 15, 23, 13, 20, 118000, tzinfo=dt.UTC
    )


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("七天无理由退货", "seven_day_no_reason"),
        ("质量问题", "quality_issue"),
        ("商品与描述不符", "not_as_described"),
        ("少件/漏发", "wrong_or_missing_item"),
        ("未按约定时间发货", "not_shipped_on_time"),
        ("其他", "other"),
        (None, "other"),
    ],
)
def test_reasons_map_by_their_text(text, reason):
    assert fetched_from_kuaishou(refund(refundReasonDesc=text), order()).request.reason == reason


def test_the_fetch_reads_the_refund_and_its_order_from_the_platform(fake, channel, shipped_990):
    fetched = channel.fetch(shipped_990)
    assert fetched.request.amount == Decimal("9.90")
    assert fetched.request.order.status == "shipped"
    assert [c.api for c in fake.calls] == [
        "open.seller.order.refund.detail",
        "open.seller.order.detail",
    ]


def test_the_fetch_of_an_exchange_skips_the_order(fake, channel):
    fake.add_order("5009")
    fake.add_refund("7009", order_id="5009", fee=100, handling_way=3)
    fetched = channel.fetch("7009")
    assert fetched.request is None
    assert [c.api for c in fake.calls] == ["open.seller.order.refund.detail"]


def test_the_merchants_deadline_is_expire_time_and_optional():
    expire = PAID + 5 * 86_400_000
    fetched = fetched_from_kuaishou(refund(expireTime=expire), order())
    assert fetched.request.deadline == dt.datetime.fromtimestamp(expire / 1000, dt.UTC)
    assert fetched_from_kuaishou(refund(), order()).request.deadline is None
