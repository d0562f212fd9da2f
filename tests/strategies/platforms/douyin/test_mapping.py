"""A Douyin request and its order, mapped to the request ATOM decides."""

import datetime as dt
from decimal import Decimal

import pytest

from strategies.platforms.channel import MANUAL_NOT_AUTO, MANUAL_UNREADABLE
from strategies.platforms.douyin.mapping import fetched_from_douyin

APPLIED = 1_700_000_000


def detail(**changes):
    info = {
        "after_sale_id": 7000000000000000001,
        "after_sale_status": 6,
        "after_sale_type": 1,
        "refund_status": 1,
        "refund_total_amount": 990,
        "apply_time": APPLIED,
        "update_time": APPLIED + 5,
        "reason": "不想要了",
        **changes,
    }
    return {"process_info": {"after_sale_info": info}, "order_info": {"shop_order_id": 6001}}


def order(**changes):
    return {
        "shop_order_detail": {
            "order_id": "6001",
            "order_status": 3,
            "pay_time": APPLIED - 3 * 86400,
            "ship_time": APPLIED - 2 * 86400,
            "doudian_open_id": "dy-buyer-1",
            "sku_order_list": [
                {"product_id": 3001, "product_name": "T-shirt", "item_num": 1, "origin_amount": 990}
            ],
            **changes,
        }
    }


def test_a_shipped_refund_only_request_maps_exactly():
    fetched = fetched_from_douyin(detail(), order())
    request = fetched.request
    assert request.aftersale_id == "7000000000000000001"
    assert (request.buyer_id, request.type, request.reason) == (
        "dy-buyer-1",
        "refund_only",
        "no_longer_needed",
    )
    assert request.amount == Decimal("9.90")
    assert request.applied_at == dt.datetime(2023, 11, 14, 22, 13, 20, tzinfo=dt.UTC)
    assert request.order.order_id == "6001" and request.order.status == "shipped"
    assert request.order.shipped_at == dt.datetime(2023, 11, 12, 22, 13, 20, tzinfo=dt.UTC)
    assert request.order.total == Decimal("9.90")
    assert fetched.snapshot.version == APPLIED + 5 and fetched.snapshot.awaiting_seller


@pytest.mark.parametrize(
    ("kind", "expected"), [(2, "refund_only"), (1, "refund_only"), (0, "return_refund")]
)
def test_types_map(kind, expected):
    assert fetched_from_douyin(detail(after_sale_type=kind), order()).request.type == expected


@pytest.mark.parametrize(
    ("kind", "name"), [(3, "exchange"), (6, "price_protection"), (7, "resend"), (8, "repair")]
)
def test_other_types_are_never_decided(kind, name):
    fetched = fetched_from_douyin(detail(after_sale_type=kind), None)
    assert fetched.request is None and fetched.manual_review == MANUAL_NOT_AUTO
    assert fetched.manual_params == {"platform": "douyin", "kind": name}


@pytest.mark.parametrize(
    ("status", "expected"),
    [(105, "pending_shipment"), (2, "pending_shipment"), (101, "shipped"), (5, "completed")],
)
def test_order_statuses_map(status, expected):
    assert (
        fetched_from_douyin(detail(), order(order_status=status)).request.order.status == expected
    )


def test_the_latest_receipt_is_the_received_time():
    skus = [
        {
            "product_id": 1,
            "product_name": "a",
            "item_num": 1,
            "origin_amount": 500,
            "confirm_receipt_time": APPLIED - 10,
        },
        {
            "product_id": 2,
            "product_name": "b",
            "item_num": 1,
            "origin_amount": 490,
            "confirm_receipt_time": APPLIED - 5,
        },
    ]
    fetched = fetched_from_douyin(detail(), order(order_status=5, sku_order_list=skus))
    assert fetched.request.order.received_at == dt.datetime.fromtimestamp(APPLIED - 5, dt.UTC)


@pytest.mark.parametrize(
    "changes",
    [{"order_status": 4}, {"doudian_open_id": ""}, {"sku_order_list": []}, {"order_id": "9"}],
)
def test_an_order_it_cannot_read_is_for_manual_review(changes):
    fetched = fetched_from_douyin(detail(), order(**changes))
    assert fetched.request is None and fetched.manual_review == MANUAL_UNREADABLE


def test_the_fetch_reads_the_detail_and_the_order(fake, channel, shipped_990):
    fetched = channel.fetch(shipped_990)
    assert fetched.request.amount == Decimal("9.90") and fetched.request.buyer_id == "dy-buyer-1"
    assert [c.api for c in fake.calls] == ["afterSale.Detail", "order.orderDetail"]


def test_the_merchants_deadline_is_status_deadline_and_optional():
    fetched = fetched_from_douyin(detail(status_deadline=APPLIED + 86400), order())
    assert fetched.request.deadline == dt.datetime.fromtimestamp(APPLIED + 86400, dt.UTC)
    assert fetched_from_douyin(detail(), order()).request.deadline is None
    assert fetched_from_douyin(detail(status_deadline=0), order()).request.deadline is None
