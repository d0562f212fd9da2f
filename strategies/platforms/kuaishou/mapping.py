"""A Kuaishou refund and its order, as the request ATOM decides (PLATFORMS.md "Requests in").

| ATOM | Kuaishou |
|---|---|
| ``aftersale_id`` | ``refundId`` |
| ``order.order_id`` | ``oid`` |
| ``buyer_id`` | ``buyerOpenId``, else ``buyerId`` (refund detail, then order detail) |
| ``type`` | ``handlingWay`` 10 → refund only, 1 → return and refund; 3 exchange, 4 resend, 5
  repair and ``specialRefundType`` 1 (price protection) are never decided automatically |
| ``amount`` | ``refundFee`` (fen) / 100, exactly |
| ``reason`` | ``refundReasonDesc`` by ``platforms.reasons``; anything else is ``other`` |
| ``applied_at`` | ``submitTime``, else ``createTime`` (ms) |
| order | ``status`` 30 paid → pending shipment, 40 shipped, 50 signed → received, 70 success →
  completed; ``payTime``, ``sendTime``; ``orderProductInfoList`` (``itemId``, ``itemTitle``,
  ``num``, ``price`` in fen) |
| ``risk_flag`` | false: no risk signal of the detail is documented |

A request that cannot be mapped (unknown status, missing field) is not an error to the platform:
it is stored for manual review with the reason.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from strategies.models import AfterSaleType, OrderStatus
from strategies.platforms.base import AfterSaleIn, ItemIn, OrderIn
from strategies.platforms.channel import (
    MANUAL_NOT_AUTO,
    MANUAL_UNREADABLE,
    Fetched,
    Snapshot,
    fen_to_yuan,
    from_millis,
)
from strategies.platforms.reasons import reason_from_text

REFUND_ONLY_WAY = 10
RETURN_WAY = 1
HANDLING = {
    REFUND_ONLY_WAY: str(AfterSaleType.REFUND_ONLY),
    RETURN_WAY: str(AfterSaleType.RETURN_REFUND),
}
NEVER_AUTO_WAYS = {3: "exchange", 4: "resend", 5: "repair"}
PRICE_PROTECTION = 1

# Refund status: 10 waiting for the seller (11 as PLATFORMS.md has it), 12 seller refused, 20
# dispute, 30 waiting for the return, 40 returned, 45 seller shipped, 50 agreed and being paid
# out, 60 refunded, 70 closed.
AWAITING_SELLER = frozenset({10, 11})
NEGOTIATE_AWAITING_SELLER = 1
DONE = frozenset({50, 60})
CLOSED = 70

ORDER_STATUS = {
    30: str(OrderStatus.PENDING_SHIPMENT),
    40: str(OrderStatus.SHIPPED),
    50: str(OrderStatus.RECEIVED),
    70: str(OrderStatus.COMPLETED),
}

PLATFORM = "kuaishou"


class Unreadable(ValueError):
    pass


def _int(data: dict[str, Any], key: str) -> int:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise Unreadable(f"{key} is {value!r}")
    return value


def _optional_int(data: dict[str, Any], key: str) -> int | None:
    value = data.get(key)
    if value is None or value == 0:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise Unreadable(f"{key} is {value!r}")
    return value


def snapshot_of(refund: dict[str, Any]) -> Snapshot:
    """The fields of a refund detail the channel checks before acting."""
    refund_id = refund.get("refundId")
    status = _int(refund, "status")
    negotiate = refund.get("negotiateStatus")
    way = refund.get("handlingWay")
    return Snapshot(
        aftersale_id="" if refund_id is None else str(refund_id),
        status=status,
        awaiting_seller=status in AWAITING_SELLER and negotiate == NEGOTIATE_AWAITING_SELLER,
        handling=HANDLING.get(way, "") if isinstance(way, int) else "",
        amount=fen_to_yuan(_int(refund, "refundFee")),
        version=_optional_int(refund, "updateTime") or 0,
        done=status in DONE,
    )


def fetched_from_kuaishou(refund: dict[str, Any], order: dict[str, Any] | None) -> Fetched:
    """The request in a refund detail and its order detail (``order`` None: not needed, the
    request is reviewed by hand anyway)."""
    refund_id = str(refund.get("refundId", ""))
    payload = {"refund": refund, "order": order}
    try:
        snapshot = snapshot_of(refund)
    except (Unreadable, ValueError) as exc:
        snapshot = Snapshot(refund_id, 0, False, "", Decimal("0.00"), 0, False)
        return _manual(refund_id, snapshot, payload, MANUAL_UNREADABLE, detail=str(exc))

    way = refund.get("handlingWay")
    if refund.get("specialRefundType") == PRICE_PROTECTION:
        return _manual(refund_id, snapshot, payload, MANUAL_NOT_AUTO, kind="price_protection")
    if isinstance(way, int) and way in NEVER_AUTO_WAYS:
        return _manual(refund_id, snapshot, payload, MANUAL_NOT_AUTO, kind=NEVER_AUTO_WAYS[way])
    try:
        request = _request(refund, order or {}, snapshot)
    except (Unreadable, ValueError) as exc:
        return _manual(refund_id, snapshot, payload, MANUAL_UNREADABLE, detail=str(exc))
    return Fetched(refund_id, request, "", snapshot, payload)


def _manual(
    refund_id: str, snapshot: Snapshot, payload: dict[str, Any], code: str, **params: str
) -> Fetched:
    return Fetched(
        refund_id, None, code, snapshot, payload, manual_params={"platform": PLATFORM, **params}
    )


def _request(refund: dict[str, Any], order: dict[str, Any], snapshot: Snapshot) -> AfterSaleIn:
    if not snapshot.handling:
        raise Unreadable(f"handlingWay is {refund.get('handlingWay')!r}")
    if snapshot.amount <= 0:
        raise Unreadable("refundFee is not positive")
    order_id = refund.get("oid", order.get("oid"))
    if order_id is None:
        raise Unreadable("the refund names no order (oid)")
    if order.get("oid") is not None and str(order["oid"]) != str(order_id):
        raise Unreadable(f"the order detail is {order['oid']}, not {order_id}")
    buyer = (
        refund.get("buyerOpenId")
        or refund.get("buyerId")
        or order.get("buyerOpenId")
        or order.get("buyerId")
    )
    if not buyer:
        raise Unreadable("no buyer (buyerOpenId, buyerId)")
    applied = _optional_int(refund, "submitTime") or _int(refund, "createTime")
    reason_text = refund.get("refundReasonDesc")
    # The merchant's deadline to answer (ms); optional: a refund without one has none.
    expire = _optional_int(refund, "expireTime")
    return AfterSaleIn(
        aftersale_id=str(refund["refundId"]),
        buyer_id=str(buyer),
        type=snapshot.handling,
        reason=reason_from_text(reason_text if isinstance(reason_text, str) else None),
        amount=snapshot.amount,
        applied_at=from_millis(applied),
        risk_flag=False,
        order=_order(order, str(order_id)),
        deadline=from_millis(expire) if expire else None,
    )


def _order(order: dict[str, Any], order_id: str) -> OrderIn:
    status_code = _int(order, "status")
    status = ORDER_STATUS.get(status_code)
    if status is None:
        raise Unreadable(f"order status {status_code} is not one ATOM decides on")
    paid = _int(order, "payTime")
    sent = _optional_int(order, "sendTime")
    products = order.get("orderProductInfoList")
    if not isinstance(products, list) or not products:
        raise Unreadable("the order has no items (orderProductInfoList)")
    items = []
    for product in products:
        if not isinstance(product, dict):
            raise Unreadable("an order item is not an object")
        quantity = _int(product, "num")
        if quantity < 1:
            raise Unreadable(f"item quantity {quantity}")
        items.append(
            ItemIn(
                product_id=str(_int(product, "itemId")),
                title=str(product.get("itemTitle") or "")[:200],
                quantity=quantity,
                price=fen_to_yuan(_int(product, "price")),
            )
        )
    shipped_at: dt.datetime | None = from_millis(sent) if sent else None
    return OrderIn(
        order_id=order_id,
        status=status,
        paid_at=from_millis(paid),
        shipped_at=shipped_at,
        received_at=None,  # no receipt time is documented in the order detail
        tags=[],
        items=items,
    )
