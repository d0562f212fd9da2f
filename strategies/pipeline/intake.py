"""Intake: an after-sales request pushed by the platform is stored once and queued for a decision.

- **One transaction**: the order is upserted by (shop, order_id) (the latest request's payload
  updates its status, times and tags and replaces its items), the products seen are created if
  new (``ON CONFLICT DO NOTHING``) and the request is inserted with its raw payload and the
  payload's digest. Any failure stores nothing.
- **Idempotent by the unique (shop, aftersale_id)**: a retry with the same digest changes
  nothing and returns the stored request (``created=False``); a different digest raises
  ``PayloadConflict`` and changes nothing. There is no look-up before the insert: a retry, a
  conflict or a second identical post at the same moment loses the insert, its transaction
  is rolled back whole, and it is answered from the stored row (claim, then act).
- **Two statements on PostgreSQL** (``rows.intake_store``): the order upsert with the request
  insert, then the items' replacement with the new products; not one, as a statement's
  snapshot predates the order's row lock it may wait for (rows.py says why). SQLite (the demo)
  takes the ORM's path: the order upsert, the items in plain SQL (``rows``: the ORM cost twice
  as much there, bench/decide/statements.py), new products and the request.
- **Queued on commit** (``dispatch``: a Celery message, or a ``NOTIFY`` to the deciders): a
  rollback sends nothing, and a broker error never fails the request (it stays ``received`` and
  the sweeper enqueues it later).
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, connection, transaction

from strategies.models import AfterSaleRequest, Order, OrderItem, Product, Shop
from strategies.pipeline.dispatch import notify_channel_at_intake, request_dispatch_on_commit
from strategies.pipeline.rows import ORDER_UPDATED, intake_store, order_items_replace
from strategies.platforms.base import AfterSaleIn

logger = logging.getLogger(__name__)

REQUEST_UNIQUE_CONSTRAINT = "aftersale_unique_per_shop"


def payload_digest(payload: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON of ``payload``: the same data gives the same digest,
    whatever the key order or white space of the body it came from."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


class PayloadConflict(Exception):
    """The ``aftersale_id`` is already stored with a different payload."""

    def __init__(self, request: AfterSaleRequest) -> None:
        super().__init__(request.aftersale_id)
        self.request = request


@dataclass(frozen=True)
class Receipt:
    request: AfterSaleRequest
    created: bool  # False: a retry of a request already stored with the same payload


def request_receive(*, shop: Shop, request: AfterSaleIn, payload: dict[str, Any]) -> Receipt:
    """Stores ``request`` for ``shop`` with the platform's ``payload`` it came from, and queues
    its decision. Raises ``PayloadConflict`` (nothing changed) for a known id whose payload
    differs."""
    digest = payload_digest(payload)
    # No look-up first: a new request (the common case) is one transaction; a retry or a
    # conflict loses the insert on the unique (shop, aftersale_id), is rolled back whole and is
    # answered from the stored row.
    try:
        with transaction.atomic():
            notify = notify_channel_at_intake()
            stored = _store(shop=shop, data=request, payload=payload, digest=digest, notify=notify)
            if notify is None:
                request_dispatch_on_commit(stored.pk)
    except IntegrityError as exc:
        if _violated_constraint(exc) != REQUEST_UNIQUE_CONSTRAINT:
            raise
        # Stored before (a retry, a conflict) or by a concurrent post of the same id.
        existing = _stored(shop=shop, aftersale_id=request.aftersale_id)
        if existing is None:  # pragma: no cover - the winner's row is committed by now
            raise
        return _replay(existing, digest)
    return Receipt(request=stored, created=True)


def _stored(*, shop: Shop, aftersale_id: str) -> AfterSaleRequest | None:
    return (
        AfterSaleRequest.objects.filter(shop=shop, aftersale_id=aftersale_id)
        .defer("payload")
        .first()
    )


def _replay(existing: AfterSaleRequest, digest: str) -> Receipt:
    if existing.payload_digest != digest:
        raise PayloadConflict(existing)
    return Receipt(request=existing, created=False)


def _store(
    *, shop: Shop, data: AfterSaleIn, payload: Any, digest: str, notify: str | None
) -> AfterSaleRequest:
    """PostgreSQL: two statements (``rows.intake_store``), the first NOTIFYing ``notify`` if
    given; SQLite (the demo): the ORM's five."""
    if connection.vendor == "postgresql":
        return _store_postgresql(
            shop=shop, data=data, payload=payload, digest=digest, notify=notify
        )
    return _store_orm(shop=shop, data=data, payload=payload, digest=digest)


def _unsaved(
    *, shop: Shop, data: AfterSaleIn, payload: Any, digest: str
) -> tuple[Order, AfterSaleRequest, list[OrderItem], list[Product]]:
    placed = data.order
    order = Order(
        shop_id=shop.pk,
        order_id=placed.order_id,
        status=placed.status,
        paid_at=placed.paid_at,
        shipped_at=placed.shipped_at,
        received_at=placed.received_at,
        tags=placed.tags,
    )
    items = [
        OrderItem(
            product_id=item.product_id, title=item.title, quantity=item.quantity, price=item.price
        )
        for item in placed.items
    ]
    # New products by id, in a fixed order (no deadlock between concurrent inserts).
    titles: dict[str, str] = {}
    for item in placed.items:
        titles.setdefault(item.product_id, item.title)
    products = [
        Product(shop_id=shop.pk, product_id=pid, title=titles[pid]) for pid in sorted(titles)
    ]
    request = AfterSaleRequest(
        shop=shop,
        aftersale_id=data.aftersale_id,
        buyer_id=data.buyer_id,
        type=data.type,
        reason=data.reason,
        amount=data.amount,
        applied_at=data.applied_at,
        risk_flag=data.risk_flag,
        platform_deadline=data.deadline,
        payload=payload,
        payload_digest=digest,
    )
    return order, request, items, products


def _store_postgresql(
    *, shop: Shop, data: AfterSaleIn, payload: Any, digest: str, notify: str | None
) -> AfterSaleRequest:
    order, request, items, products = _unsaved(shop=shop, data=data, payload=payload, digest=digest)
    intake_store(
        order=order, request=request, items=items, products=products, notify_channel=notify
    )
    return request


def _store_orm(
    *, shop: Shop, data: AfterSaleIn, payload: Any, digest: str, notify: str | None = None
) -> AfterSaleRequest:
    if notify is not None:  # PostgreSQL dispatch goes through rows.intake_store only
        raise ValueError("the ORM's intake cannot NOTIFY")
    order, request, items, products = _unsaved(shop=shop, data=data, payload=payload, digest=digest)
    # The latest payload wins; the row lock the upsert takes serializes concurrent requests on
    # one order until COMMIT.
    (order,) = Order.objects.bulk_create(
        [order],
        update_conflicts=True,
        unique_fields=["shop", "order_id"],
        update_fields=ORDER_UPDATED,
    )
    for item in items:
        item.order_id = order.pk
    order_items_replace(order_id=order.pk, items=items)
    Product.objects.bulk_create(products, ignore_conflicts=True)
    request.order = order
    request.save(force_insert=True)
    return request


def _violated_constraint(exc: IntegrityError) -> str | None:
    cause = exc.__cause__
    diag = getattr(cause, "diag", None)
    name = getattr(diag, "constraint_name", None)
    if name:
        return str(name)
    # SQLite (the demo) names the columns, not the constraint.
    if "aftersalerequest.shop_id, strategies_aftersalerequest.aftersale_id" in str(exc):
        return REQUEST_UNIQUE_CONSTRAINT
    return None
