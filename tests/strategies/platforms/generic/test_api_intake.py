"""POST /api/v1/aftersales and GET /api/v1/aftersales/{id} as API.md specifies them."""

from __future__ import annotations

import datetime as dt
import io
import json
from decimal import Decimal

import pytest
from django.core.handlers.wsgi import WSGIRequest
from django.db import connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext

from strategies.models import (
    AfterSaleRequest,
    Decision,
    Order,
    OrderItem,
    Product,
    RequestStatus,
)
from strategies.pipeline.intake import payload_digest
from strategies.platforms.generic import api
from tests.factories import make_product, make_request, make_shop, make_strategy
from tests.strategies.platforms.generic.api_client import (
    CREATE_URL,
    detail_url,
    encode,
    get_signed,
    headers_for,
    payload,
    post_signed,
)


def test_it_accepts_a_new_request_with_202_and_stores_it(client, shop):
    body = payload()
    response = post_signed(client, shop, body)

    assert response.status_code == 202
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"aftersale_id": "AS20261122000001", "status": "received"}
    request = AfterSaleRequest.objects.get(shop=shop, aftersale_id="AS20261122000001")
    assert request.status == RequestStatus.RECEIVED
    assert request.buyer_id == "B7781"
    assert request.type == "refund_only"
    assert request.reason == "no_longer_needed"
    assert request.amount == Decimal("9.90")
    assert request.applied_at == dt.datetime(2026, 11, 22, 2, 15, tzinfo=dt.UTC)
    assert request.risk_flag is False
    assert request.payload == body
    assert request.payload_digest == payload_digest(body)
    order = request.order
    assert (order.shop, order.order_id, order.status) == (shop, "OD20261120000009", "shipped")
    assert order.paid_at == dt.datetime(2026, 11, 20, 1, 0, tzinfo=dt.UTC)
    assert order.shipped_at == dt.datetime(2026, 11, 21, 0, 0, tzinfo=dt.UTC)
    assert order.received_at is None
    assert order.tags == []
    items = list(order.items.values_list("product_id", "title", "quantity", "price"))
    assert items == [("P1001", "Phone case", 1, Decimal("9.90"))]
    assert list(Product.objects.filter(shop=shop).values_list("product_id", "title")) == [
        ("P1001", "Phone case")
    ]


def test_it_answers_a_retry_with_200_and_the_current_status(client, shop):
    body = payload()
    assert post_signed(client, shop, body).status_code == 202
    # The same data with other key order and spacing is the same payload.
    again = json.dumps(body, indent=2, sort_keys=True).encode()
    response = post_signed(client, shop, again)

    assert response.status_code == 200
    assert response.json() == {
        "aftersale_id": "AS20261122000001",
        "status": "received",
        "decision": None,
        "explanations": [],
        "review": None,
    }
    assert AfterSaleRequest.objects.count() == 1


def test_it_answers_a_retry_after_the_decision_with_the_decision(client, shop):
    assert post_signed(client, shop, payload()).status_code == 202
    request = AfterSaleRequest.objects.get()
    AfterSaleRequest.objects.filter(pk=request.pk).update(status=RequestStatus.MANUAL_REVIEW)
    Decision.objects.create(
        request=request,
        shop=shop,
        aftersale_id=request.aftersale_id,
        order_id=request.order.order_id,
        reason=request.reason,
        outcome="manual_review",
        scenario="post_shipment_refund",
        amount=request.amount,
        buyer_id=request.buyer_id,
        decided_at=dt.datetime(2026, 11, 22, 2, 15, 1, tzinfo=dt.UTC),
    )
    response = post_signed(client, shop, payload())
    assert response.status_code == 200
    assert response.json()["status"] == "manual_review"
    assert response.json()["decision"]["outcome"] == "manual_review"


def test_it_rejects_the_same_id_with_a_different_payload_with_409_and_changes_nothing(client, shop):
    assert post_signed(client, shop, payload()).status_code == 202
    before = AfterSaleRequest.objects.get()
    order_before = Order.objects.values().get()

    changed = payload(amount="5.00", order={"status": "received", "tags": ["refund_no_return"]})
    response = post_signed(client, shop, changed)

    assert response.status_code == 409
    assert response.json() == {
        "error": "This aftersale_id was already received with a different payload."
    }
    after = AfterSaleRequest.objects.get()
    assert (after.amount, after.payload, after.payload_digest) == (
        before.amount,
        before.payload,
        before.payload_digest,
    )
    assert Order.objects.values().get() == order_before
    assert OrderItem.objects.count() == 1


def test_it_updates_the_order_from_the_latest_payload(client, shop):
    first = payload(aftersale_id="AS1")
    assert post_signed(client, shop, first).status_code == 202
    later = payload(
        aftersale_id="AS2",
        amount="30.00",
        order={
            "status": "received",
            "received_at": "2026-11-23T12:00:00+08:00",
            "tags": ["refund_no_return"],
            "items": [
                {"product_id": "P2001", "title": "Charger", "quantity": 2, "price": "15.00"},
                {"product_id": "P1001", "title": "Phone case", "quantity": 1, "price": "9.90"},
            ],
        },
    )
    assert post_signed(client, shop, later).status_code == 202

    order = Order.objects.get()  # one order, updated in place
    assert order.status == "received"
    assert order.received_at == dt.datetime(2026, 11, 23, 4, 0, tzinfo=dt.UTC)
    assert order.tags == ["refund_no_return"]
    assert sorted(order.items.values_list("product_id", "quantity", "price")) == [
        ("P1001", 1, Decimal("9.90")),
        ("P2001", 2, Decimal("15.00")),
    ]
    assert OrderItem.objects.count() == 2  # replaced, not appended
    assert set(AfterSaleRequest.objects.values_list("order_id", flat=True)) == {order.pk}
    assert sorted(Product.objects.filter(shop=shop).values_list("product_id", flat=True)) == [
        "P1001",
        "P2001",
    ]


def test_it_keeps_an_existing_product_as_it_is(client, shop):
    make_product(shop=shop, product_id="P1001", title="Named by the merchant")
    assert post_signed(client, shop, payload()).status_code == 202
    assert Product.objects.get(shop=shop, product_id="P1001").title == "Named by the merchant"


def test_it_keeps_orders_of_two_shops_apart(client, shop, other_shop):
    assert post_signed(client, shop, payload()).status_code == 202
    assert post_signed(client, other_shop, payload(order={"status": "received"})).status_code == 202
    assert Order.objects.get(shop=shop).status == "shipped"
    assert Order.objects.get(shop=other_shop).status == "received"


def test_it_rejects_a_body_over_64_kib_with_413(client, shop):
    body = encode(payload(padding="x" * (64 * 1024)))
    assert len(body) > 64 * 1024
    response = post_signed(client, shop, body)
    assert response.status_code == 413
    assert "65536" in response.json()["error"]
    assert not AfterSaleRequest.objects.exists()


def test_it_accepts_a_body_of_exactly_64_kib(client, shop):
    base = encode(payload(padding=""))
    body = encode(payload(padding="x" * (64 * 1024 - len(base))))
    assert len(body) == 64 * 1024
    assert post_signed(client, shop, body).status_code == 202


def test_it_answers_413_from_the_declared_length_without_reading_the_body(shop):
    stream = io.BytesIO(b"{" + b" " * (10 * 1024 * 1024))
    environ = RequestFactory().post(CREATE_URL, data=b"", content_type="application/json").META
    environ.update(
        {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers_for(shop, b"{").items()}
    )
    environ.update({"CONTENT_LENGTH": str(10 * 1024 * 1024 + 1), "wsgi.input": stream})

    response = api.aftersale_create(WSGIRequest(environ))

    assert response.status_code == 413
    assert stream.tell() == 0


def test_it_rejects_invalid_json_with_400(client, shop):
    for body in (b"", b"{", b"[1, 2]", b'"text"', b"null", b"\xff\xfe{}", b"NaN", b"{} {}"):
        response = post_signed(client, shop, body)
        assert response.status_code == 400, body
        assert set(response.json()["errors"]) == {"body"}, body
    assert not AfterSaleRequest.objects.exists()


def test_it_reports_every_invalid_field_by_its_path(client, shop):
    body = payload(
        type="refund_later",
        reason=None,
        risk_flag="no",
        applied_at="2026-11-22T10:15:00",
        order={
            "order_id": "",
            "status": "lost",
            "paid_at": "yesterday",
            "tags": ["refund_no_return", 7],
            "items": [
                {"product_id": "P1", "title": "A", "quantity": 0, "price": "1.00"},
                {"product_id": "P2", "title": "B", "quantity": True, "price": 2},
            ],
        },
    )
    del body["buyer_id"]
    response = post_signed(client, shop, body)

    assert response.status_code == 400
    errors = response.json()["errors"]
    assert set(errors) == {
        "buyer_id",
        "type",
        "reason",
        "risk_flag",
        "applied_at",
        "order.order_id",
        "order.status",
        "order.paid_at",
        "order.tags.1",
        "order.items.0.quantity",
        "order.items.1.quantity",
        "order.items.1.price",
    }
    assert errors["buyer_id"] == ["This field is required."]
    assert errors["reason"] == ["This field may not be null."]
    assert errors["applied_at"] == ["Must include a UTC offset, such as +08:00."]
    assert errors["order.items.1.price"] == ['Must be a decimal string such as "9.90".']
    assert all(messages and all(messages) for messages in errors.values())
    assert not AfterSaleRequest.objects.exists()
    assert not Order.objects.exists()
    assert not Product.objects.exists()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("aftersale_id", "A" * 65),
        ("aftersale_id", "   "),
        ("aftersale_id", 12),
        ("aftersale_id", "AS/1"),  # GET /api/v1/aftersales/AS/1 could never find it
        ("aftersale_id", "AS\n1"),
        ("buyer_id", "B\x001"),
        ("buyer_id", ""),
        ("order.order_id", None),
        ("order.items", []),
        ("order.items", {"product_id": "P1"}),
        ("order.tags", "refund_no_return"),
        ("order.shipped_at", "2026-11-21"),
        ("order.received_at", 1700000000),
        ("order.paid_at", "1969-12-31T23:59:59+00:00"),
        ("order.paid_at", "2100-01-01T08:00:00+08:00Z"),
        ("order.paid_at", "9999-12-31T23:59:59-14:00"),
        ("order", []),
        ("amount", None),
    ],
)
def test_it_rejects_a_wrong_value(client, shop, field, value):
    body = payload()
    target, key = (body["order"], field[6:]) if field.startswith("order.") else (body, field)
    target[key] = value
    response = post_signed(client, shop, body)
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert field in errors, errors
    assert not AfterSaleRequest.objects.exists() and not Order.objects.exists()


def test_it_accepts_null_shipment_dates_and_other_valid_variants(client, shop):
    body = payload(
        type="return_refund",
        reason="quality_issue",
        applied_at="2026-11-22T02:15:00Z",
        risk_flag=True,
        extra_platform_field={"kept": True},  # unknown keys are ignored, and kept
        order={
            "status": "pending_shipment",
            "shipped_at": None,
            "received_at": None,
            "tags": ["refund_no_return", "vip"],
            "items": [{"product_id": "P9", "title": "", "quantity": 3, "price": "10"}],
        },
        amount="30",
    )
    response = post_signed(client, shop, body)
    assert response.status_code == 202, response.content
    request = AfterSaleRequest.objects.get()
    assert request.amount == Decimal("30.00")
    assert request.payload["extra_platform_field"] == {"kept": True}
    assert request.order.shipped_at is None


def test_it_rejects_what_postgresql_could_not_store_anywhere_in_the_body(client, shop):
    for extra in ({"note": "a\u0000b"}, {"k\u0000": 1}, {"deep": [[[[]]]] * 1}):
        body = payload(**extra)
        if "deep" in extra:
            nested: list = []
            for _ in range(40):
                nested = [nested]
            body["deep"] = nested
        response = post_signed(client, shop, body)
        assert response.status_code == 400, extra
    # A lone surrogate, escaped in JSON.
    raw = encode(payload()).replace(b'"Phone case"', b'"\\ud800"')
    response = post_signed(client, shop, raw)
    assert response.status_code == 400
    assert "order.items.0.title" in response.json()["errors"]
    # Numbers beyond what JSON can carry (1e400 parses as infinity).
    raw = encode(payload())[:-1] + b', "big": 1e400}'
    assert post_signed(client, shop, raw).status_code == 400
    assert not AfterSaleRequest.objects.exists()


def test_it_answers_405_in_json_for_other_methods(client, shop):
    for method in ("get", "put", "patch", "delete"):
        # The messages follow Accept-Language (Chinese by default); this pins the English ones.
        response = getattr(client, method)(CREATE_URL, HTTP_ACCEPT_LANGUAGE="en")
        assert response.status_code == 405, method
        assert response["Allow"] == "POST"
        assert response.json() == {"error": "Method not allowed."}
    response = client.post(detail_url("AS1"), data=b"{}", content_type="application/json")
    assert response.status_code == 405
    assert response["Allow"] == "GET"


def test_it_answers_unknown_api_paths_with_json_404(client):
    for path in ("/api/v1/", "/api/v1/aftersales/", "/api/v1/nope", "/api/v1/aftersales/a/b"):
        response = client.get(path, HTTP_ACCEPT_LANGUAGE="en")
        assert response.status_code == 404, path
        assert response.json() == {"error": "Not found."}


def test_it_answers_get_for_a_request_not_yet_decided(client, shop):
    make_request(shop=shop, aftersale_id="AS1")
    response = get_signed(client, shop, "AS1")
    assert response.status_code == 200
    assert response.json() == {
        "aftersale_id": "AS1",
        "status": "received",
        "decision": None,
        "explanations": [],
        "review": None,
    }


def test_it_answers_get_with_the_decision_in_the_shops_offset(client, db):
    shop = make_shop(code="la", timezone="America/Los_Angeles")
    strategy = make_strategy(shop=shop, name="Small refunds")
    request = make_request(shop=shop, aftersale_id="AS20261122000001", amount="9.9")
    AfterSaleRequest.objects.filter(pk=request.pk).update(status=RequestStatus.EXECUTED)
    explanations = [
        {
            "scenario": "post_shipment_no_return",
            "strategy": {"id": 9, "name": "Lost parcels"},
            "code": "over_per_request_cap",
            "message": "Amount 9.90 is over the per-request cap 5.00",
            "params": {"amount": "9.90", "cap": "5.00"},
        }
    ]
    Decision.objects.create(
        request=request,
        shop=shop,
        aftersale_id=request.aftersale_id,
        order_id=request.order.order_id,
        reason=request.reason,
        outcome="approved",
        scenario="post_shipment_refund",
        strategy=strategy,
        strategy_name="Small refunds",
        action="approve_refund",
        amount=Decimal("9.90"),
        explanations=explanations,
        buyer_id=request.buyer_id,
        decided_at=dt.datetime(2026, 11, 22, 18, 15, 0, 120000, tzinfo=dt.UTC),
    )

    with CaptureQueriesContext(connection) as queries:
        response = get_signed(client, shop, "AS20261122000001")

    assert response.status_code == 200
    assert response.json() == {
        "aftersale_id": "AS20261122000001",
        "status": "executed",
        "decision": {
            "outcome": "approved",
            "scenario": "post_shipment_refund",
            "strategy": {"id": strategy.pk, "name": "Small refunds"},
            "action": "approve_refund",
            "amount": "9.90",
            "decided_at": "2026-11-22T10:15:00.120-08:00",
            "reason": None,  # only a manual review with no strategy to try has one
        },
        "explanations": explanations,
        "review": None,  # an automatic approval: no review, and no query for one
    }
    # The shop by its code, then the request with its decision: no more.
    assert len(queries) == 2, [q["sql"] for q in queries]


def test_it_answers_get_for_a_manual_review_with_nulls_where_nothing_applied(client, shop):
    request = make_request(shop=shop, aftersale_id="AS1")
    AfterSaleRequest.objects.filter(pk=request.pk).update(status=RequestStatus.MANUAL_REVIEW)
    Decision.objects.create(
        request=request,
        shop=shop,
        aftersale_id="AS1",
        order_id=request.order.order_id,
        reason=request.reason,
        outcome="manual_review",
        scenario="",
        amount=request.amount,
        buyer_id=request.buyer_id,
        decided_at=dt.datetime(2026, 11, 22, 2, 15, tzinfo=dt.UTC),
    )
    decision = get_signed(client, shop, "AS1").json()["decision"]
    assert decision == {
        "outcome": "manual_review",
        "scenario": None,
        "strategy": None,
        "action": None,
        "amount": "9.90",
        "decided_at": "2026-11-22T10:15:00.000+08:00",
        "reason": None,
    }


def test_it_posts_in_few_queries(client, shop, django_assert_max_num_queries):
    # shop, existing?, savepoint, order upsert, item delete, items, products, request, release
    with django_assert_max_num_queries(10):
        assert post_signed(client, shop, payload()).status_code == 202
