"""Intake's writes on PostgreSQL (two statements, ``rows.intake_store``) store exactly what the
ORM's path (the demo's, on SQLite) stores, and give back a request as the ORM would."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from strategies.models import AfterSaleRequest, Order, OrderItem, Product
from strategies.pipeline import intake
from strategies.pipeline.intake import PayloadConflict
from strategies.platforms.generic.intake import aftersale_receive
from strategies.platforms.generic.schema import aftersale_payload_clean
from tests.factories import make_product, make_shop
from tests.strategies.platforms.generic.api_client import payload

pytestmark = pytest.mark.django_db


def items(*specs: tuple[str, str, int, str]) -> list[dict]:
    return [
        {"product_id": pid, "title": title, "quantity": quantity, "price": price}
        for pid, title, quantity, price in specs
    ]


FIRST_ITEMS = items(("P2", "Two", 1, "5.00"), ("P1", "One", 2, "1.10"))

# A shop's life: a new order, a second request on it with other items (replaced, a product
# named twice, the first title kept), a third with an existing product, and a replay.
SEQUENCE = [
    payload(
        aftersale_id="AS-1",
        amount="7.20",
        order={"order_id": "OD-1", "items": FIRST_ITEMS},
    ),
    payload(
        aftersale_id="AS-2",
        amount="3.30",
        order={
            "order_id": "OD-1",
            "status": "received",
            "received_at": "2026-11-22T08:00:00+08:00",
            "tags": ["refund_no_return"],
            "items": items(
                ("P9", "Nine", 1, "3.30"), ("P3", "Three", 1, "0.00"), ("P9", "Nine bis", 2, "3.30")
            ),
        },
    ),
    payload(
        aftersale_id="AS-3",
        order={"order_id": "OD-2", "items": items(("KNOWN", "Another title", 1, "9.90"))},
    ),
    payload(
        aftersale_id="AS-1",
        amount="7.20",
        order={"order_id": "OD-1", "items": FIRST_ITEMS},
    ),
]


def stored_rows(shop) -> dict:
    orders = {
        o.order_id: (o.status, o.paid_at, o.shipped_at, o.received_at, o.tags)
        for o in Order.objects.filter(shop=shop)
    }
    order_items = [
        (i.order.order_id, i.product_id, i.title, i.quantity, i.price)
        for i in OrderItem.objects.filter(order__shop=shop).select_related("order").order_by("id")
    ]
    products = sorted(Product.objects.filter(shop=shop).values_list("product_id", "title"))
    requests = [
        (
            r.aftersale_id,
            r.order.order_id,
            r.buyer_id,
            r.type,
            r.reason,
            r.amount,
            r.applied_at,
            r.risk_flag,
            r.platform_deadline,
            r.payload,
            r.payload_digest,
            r.status,
        )
        for r in AfterSaleRequest.objects.filter(shop=shop).select_related("order").order_by("id")
    ]
    return {"orders": orders, "items": order_items, "products": products, "requests": requests}


def receive_all(shop, store) -> list:
    make_product(shop=shop, product_id="KNOWN", title="Kept as it is")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(intake, "_store", store)
        return [aftersale_receive(shop=shop, payload=p) for p in SEQUENCE]


def test_postgresql_is_where_the_two_statements_run():
    assert connection.vendor == "postgresql"  # the suite's database; the demo tests SQLite


def test_the_two_statements_store_what_the_orm_stores():
    by_orm, by_sql = make_shop(code="by-orm"), make_shop(code="by-sql")
    orm_receipts = receive_all(by_orm, intake._store_orm)
    sql_receipts = receive_all(by_sql, intake._store_postgresql)

    assert [r.created for r in sql_receipts] == [r.created for r in orm_receipts]
    assert [r.created for r in sql_receipts] == [True, True, True, False]
    assert stored_rows(by_sql) == stored_rows(by_orm)
    rows = stored_rows(by_sql)
    # The second request's items replaced the first's; products once, the first title kept.
    assert [i[1:] for i in rows["items"] if i[0] == "OD-1"] == [
        ("P9", "Nine", 1, Decimal("3.30")),
        ("P3", "Three", 1, Decimal("0.00")),
        ("P9", "Nine bis", 2, Decimal("3.30")),
    ]
    assert rows["products"] == [
        ("KNOWN", "Kept as it is"),
        ("P1", "One"),
        ("P2", "Two"),
        ("P3", "Three"),
        ("P9", "Nine"),
    ]
    assert rows["orders"]["OD-1"][0] == "received"


@pytest.mark.parametrize("dispatch", ["celery", "postgres"])
def test_they_are_two_statements_whatever_the_number_of_items(settings, dispatch):
    # With the request row as the queue, the NOTIFY rides in the first statement (issue 16).
    settings.ATOM_DISPATCH = dispatch
    shop = make_shop()
    for n, count in enumerate((1, 7)):
        body = payload(
            aftersale_id=f"AS-{n}",
            amount="1.00",
            order={"items": items(*[(f"P{i}", "T", 1, "1.00") for i in range(count)])},
        )
        with CaptureQueriesContext(connection) as queries:
            aftersale_receive(shop=shop, payload=body)
        statements = [q["sql"] for q in queries if "SAVEPOINT" not in q["sql"]]
        assert len(statements) == 2, statements
        assert OrderItem.objects.filter(order__order_id=body["order"]["order_id"]).count() == count


def test_the_request_given_back_is_the_stored_row():
    shop = make_shop()
    receipt = aftersale_receive(shop=shop, payload=payload())
    given = receipt.request
    stored = AfterSaleRequest.objects.get(shop=shop, aftersale_id=payload()["aftersale_id"])

    assert receipt.created is True
    assert given.pk == stored.pk and not given._state.adding
    for field in AfterSaleRequest._meta.concrete_fields:
        assert getattr(given, field.attname) == getattr(stored, field.attname), field.name
    assert given.order.pk == stored.order_id and not given.order._state.adding
    assert given.order.order_id == stored.order.order_id
    assert given.shop == shop
    given.refresh_from_db()  # a usable model instance


def test_a_conflict_changes_nothing_of_the_order_its_items_or_products():
    shop = make_shop()
    aftersale_receive(shop=shop, payload=payload())
    before = stored_rows(shop)
    other = payload(
        amount="1.00",
        order={"status": "received", "items": items(("NEW", "New", 1, "1.00"))},
    )
    with pytest.raises(PayloadConflict):
        aftersale_receive(shop=shop, payload=other)
    assert stored_rows(shop) == before


def test_the_first_statement_fails_on_the_requests_unique_constraint_by_name():
    shop = make_shop()
    aftersale_receive(shop=shop, payload=payload())
    data = aftersale_payload_clean(payload())
    with pytest.raises(IntegrityError) as excinfo, transaction.atomic():
        intake._store_postgresql(
            shop=shop, data=data, payload=payload(), digest="0" * 64, notify=None
        )
    assert intake._violated_constraint(excinfo.value) == intake.REQUEST_UNIQUE_CONSTRAINT
