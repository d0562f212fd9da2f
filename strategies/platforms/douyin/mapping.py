"""A Douyin after-sales request and its order, as the request ATOM decides.

From ``/afterSale/Detail`` (``data.process_info.after_sale_info``, ``data.order_info``) and
``/order/orderDetail`` (``data.shop_order_detail``), field names as the official Go SDK has them:

| ATOM | Douyin |
|---|---|
| ``aftersale_id`` | ``after_sale_id`` |
| ``order.order_id`` | ``order_info.shop_order_id`` |
| ``buyer_id`` | the order's ``doudian_open_id`` (else ``open_id``) |
| ``type`` | ``after_sale_type`` 2 (pre-shipment refund) and 1 (shipped, refund only) → refund only,
  0 → return and refund; 3 exchange, 4/5 cancelled, 6 price protection, 7 resend, 8 repair are
  never decided automatically |
| ``amount`` | ``refund_total_amount`` (fen) / 100 |
| ``reason`` | ``reason`` by ``platforms.reasons`` |
| ``applied_at`` | ``apply_time`` (Unix s) |
| order | ``order_status`` 105 paid / 2 preparing → pending shipment, 101 partly / 3 shipped →
  shipped, 5 finished → completed; ``pay_time``, ``ship_time``, the latest
  ``confirm_receipt_time``; ``sku_order_list`` (``product_id``, ``product_name``, ``item_num``,
  ``origin_amount`` in fen) |
| ``risk_flag`` | false |

The request's status: 6 waiting for the seller, 7 return under way, 11 shipped back (waiting for
the seller's second agreement), 12 succeeded, 27/28/29 refused or failed, 51/53 closed;
``refund_status`` 2 refunding, 3 refunded.
"""

from __future__ import annotations

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
    from_seconds,
)
from strategies.platforms.reasons import reason_from_text

PLATFORM = "douyin"
AWAITING_SELLER = 6
SUCCEEDED = 12
REFUNDING = frozenset({2, 3})

HANDLING = {
    2: str(AfterSaleType.REFUND_ONLY),
    1: str(AfterSaleType.REFUND_ONLY),
    0: str(AfterSaleType.RETURN_REFUND),
}
NEVER_AUTO = {
    3: "exchange",
    4: "system_cancelled",
    5: "buyer_cancelled",
    6: "price_protection",
    7: "resend",
    8: "repair",
}
ORDER_STATUS = {
    105: str(OrderStatus.PENDING_SHIPMENT),
    2: str(OrderStatus.PENDING_SHIPMENT),
    101: str(OrderStatus.SHIPPED),
    3: str(OrderStatus.SHIPPED),
    5: str(OrderStatus.COMPLETED),
}


class Unreadable(ValueError):
    pass


def _int(data: dict[str, Any], key: str) -> int:
    value = data.get(key)
    if isinstance(value, str) and value.isdigit():
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise Unreadable(f"{key} is {value!r}")
    return value


def info_of(detail: dict[str, Any]) -> dict[str, Any]:
    info = (detail.get("process_info") or {}).get("after_sale_info")
    if not isinstance(info, dict):
        raise Unreadable("no process_info.after_sale_info")
    return info


def snapshot_of(detail: dict[str, Any]) -> Snapshot:
    info = info_of(detail)
    status = _int(info, "after_sale_status")
    kind = info.get("after_sale_type")
    refund_status = info.get("refund_status")
    return Snapshot(
        aftersale_id=str(info.get("after_sale_id", "")),
        status=status,
        awaiting_seller=status == AWAITING_SELLER,
        handling=HANDLING.get(kind, "") if isinstance(kind, int) else "",
        amount=fen_to_yuan(_int(info, "refund_total_amount")),
        version=_int(info, "update_time"),
        done=status == SUCCEEDED or refund_status in REFUNDING,
    )


def fetched_from_douyin(detail: dict[str, Any], order: dict[str, Any] | None) -> Fetched:
    payload = {"detail": detail, "order": order}
    try:
        info = info_of(detail)
        aftersale_id = str(info.get("after_sale_id", ""))
        snapshot = snapshot_of(detail)
    except (Unreadable, ValueError) as exc:
        empty = Snapshot("", 0, False, "", Decimal("0.00"), 0, False)
        return _manual("", empty, payload, MANUAL_UNREADABLE, detail=str(exc))
    kind = info.get("after_sale_type")
    if isinstance(kind, int) and kind in NEVER_AUTO:
        return _manual(aftersale_id, snapshot, payload, MANUAL_NOT_AUTO, kind=NEVER_AUTO[kind])
    try:
        request = _request(info, detail, (order or {}).get("shop_order_detail") or {}, snapshot)
    except (Unreadable, ValueError) as exc:
        return _manual(aftersale_id, snapshot, payload, MANUAL_UNREADABLE, detail=str(exc))
    return Fetched(aftersale_id, request, "", snapshot, payload)


def _manual(
    aftersale_id: str, snapshot: Snapshot, payload: dict[str, Any], code: str, **params: str
) -> Fetched:
    return Fetched(
        aftersale_id, None, code, snapshot, payload, manual_params={"platform": PLATFORM, **params}
    )


def _request(
    info: dict[str, Any], detail: dict[str, Any], order: dict[str, Any], snapshot: Snapshot
) -> AfterSaleIn:
    if not snapshot.handling:
        raise Unreadable(f"after_sale_type is {info.get('after_sale_type')!r}")
    if snapshot.amount <= 0:
        raise Unreadable("refund_total_amount is not positive")
    order_id = (detail.get("order_info") or {}).get("shop_order_id")
    if order_id is None:
        raise Unreadable("no order_info.shop_order_id")
    if order.get("order_id") is not None and str(order["order_id"]) != str(order_id):
        raise Unreadable(f"the order detail is {order['order_id']}, not {order_id}")
    buyer = order.get("doudian_open_id") or order.get("open_id")
    if not buyer:
        raise Unreadable("no buyer (doudian_open_id)")
    reason = info.get("reason")
    # The merchant's deadline to answer (unix seconds); optional, and 0 means none.
    deadline = info.get("status_deadline")
    return AfterSaleIn(
        aftersale_id=snapshot.aftersale_id,
        buyer_id=str(buyer),
        type=snapshot.handling,
        reason=reason_from_text(reason if isinstance(reason, str) else None),
        amount=snapshot.amount,
        applied_at=from_seconds(_int(info, "apply_time")),
        risk_flag=False,
        order=_order(order, str(order_id)),
        deadline=from_seconds(deadline) if isinstance(deadline, int) and deadline > 0 else None,
    )


def _order(order: dict[str, Any], order_id: str) -> OrderIn:
    if not order:
        raise Unreadable("no order detail")
    code = _int(order, "order_status")
    status = ORDER_STATUS.get(code)
    if status is None:
        raise Unreadable(f"order status {code} is not one ATOM decides on")
    skus = order.get("sku_order_list")
    if not isinstance(skus, list) or not skus:
        raise Unreadable("the order has no items (sku_order_list)")
    items = []
    received = 0
    for sku in skus:
        if not isinstance(sku, dict):
            raise Unreadable("an order item is not an object")
        quantity = _int(sku, "item_num")
        if quantity < 1:
            raise Unreadable(f"item quantity {quantity}")
        items.append(
            ItemIn(
                product_id=str(_int(sku, "product_id")),
                title=str(sku.get("product_name") or "")[:200],
                quantity=quantity,
                price=fen_to_yuan(_int(sku, "origin_amount")),
            )
        )
        receipt = sku.get("confirm_receipt_time")
        if isinstance(receipt, int) and receipt > received:
            received = receipt
    shipped = order.get("ship_time")
    return OrderIn(
        order_id=order_id,
        status=status,
        paid_at=from_seconds(_int(order, "pay_time")),
        shipped_at=from_seconds(shipped) if isinstance(shipped, int) and shipped > 0 else None,
        received_at=from_seconds(received) if received else None,
        tags=[],
        items=items,
    )
