"""RELIABILITY.md scenario 22: amounts that are not a plain positive 2-decimal string → 400."""

from __future__ import annotations

from decimal import Decimal

import pytest

from strategies.models import AfterSaleRequest, Order
from tests.strategies.platforms.generic.api_client import payload, post_signed

# The example order's total is 9.90 (one item at 9.90); a dearer order for the large cases.
DEAR_ORDER = {
    "items": [
        {"product_id": "P1", "title": "Gold", "quantity": 2, "price": "999999999999.99"},
    ]
}


@pytest.mark.parametrize(
    ("amount", "message"),
    [
        ("0", "Must be greater than 0."),
        ("0.00", "Must be greater than 0."),
        ("-1.00", "Must be greater than 0."),
        ("-0.01", "Must be greater than 0."),
        ("NaN", 'Must be a decimal string such as "9.90".'),
        ("nan", 'Must be a decimal string such as "9.90".'),
        ("Infinity", 'Must be a decimal string such as "9.90".'),
        ("-Infinity", 'Must be a decimal string such as "9.90".'),
        ("1e3", 'Must be a decimal string such as "9.90".'),
        ("1E-2", 'Must be a decimal string such as "9.90".'),
        ("9.999", "At most 2 decimal places."),
        ("0.001", "At most 2 decimal places."),
        ("9.90 ", 'Must be a decimal string such as "9.90".'),
        ("+9.90", 'Must be a decimal string such as "9.90".'),
        ("9,90", 'Must be a decimal string such as "9.90".'),
        (".5", 'Must be a decimal string such as "9.90".'),
        ("", 'Must be a decimal string such as "9.90".'),
        ("٩.٩٠", 'Must be a decimal string such as "9.90".'),  # Arabic-Indic digits
        (9.9, 'Must be a decimal string such as "9.90".'),  # a JSON number, not a string
        (10, 'Must be a decimal string such as "9.90".'),
        (True, 'Must be a decimal string such as "9.90".'),
        (None, "This field may not be null."),
        ("9.91", "Must not be more than the order's total (9.90)."),
        ("10", "Must not be more than the order's total (9.90)."),
    ],
)
def test_it_rejects_an_amount(client, shop, amount, message):
    response = post_signed(client, shop, payload(amount=amount))
    assert response.status_code == 400
    assert response.json()["errors"] == {"amount": [message]}
    assert not AfterSaleRequest.objects.exists()
    assert not Order.objects.exists()


@pytest.mark.parametrize(
    "amount",
    ["1000000000000.00", "1" + "0" * 40, "9" * 5000, "999999999999999999.99"],
)
def test_it_rejects_an_absurdly_large_amount(client, shop, amount):
    response = post_signed(client, shop, payload(amount=amount, order=DEAR_ORDER))
    assert response.status_code == 400
    assert response.json()["errors"] == {"amount": ["Too large: at most 999999999999.99."]}
    assert not AfterSaleRequest.objects.exists()


def test_it_rejects_the_json_literals_nan_and_infinity(client, shop):
    for literal in (b"NaN", b"Infinity", b"-Infinity", b"1e400"):
        raw = (
            b'{"aftersale_id": "AS1", "amount": '
            + literal
            + b', "buyer_id": "B", "type": "refund_only"}'
        )
        response = post_signed(client, shop, raw)
        assert response.status_code == 400, literal
        errors = response.json()["errors"]
        assert "amount" in errors or "body" in errors, errors


@pytest.mark.parametrize(
    ("amount", "stored"),
    [("9.90", "9.90"), ("9.9", "9.90"), ("9", "9.00"), ("0.01", "0.01"), ("009.90", "9.90")],
)
def test_it_accepts_a_positive_amount_with_up_to_two_decimals(client, shop, amount, stored):
    response = post_signed(client, shop, payload(amount=amount))
    assert response.status_code == 202, response.content
    assert AfterSaleRequest.objects.get().amount == Decimal(stored)


def test_it_accepts_exactly_the_order_total_summed_over_quantities(client, shop):
    order = {
        "items": [
            {"product_id": "P1", "title": "A", "quantity": 3, "price": "10.01"},
            {"product_id": "P2", "title": "B", "quantity": 2, "price": "0.50"},
            {"product_id": "P3", "title": "Gift", "quantity": 1, "price": "0"},
        ]
    }
    assert post_signed(client, shop, payload(amount="31.04", order=order)).status_code == 400
    response = post_signed(client, shop, payload(amount="31.03", order=order))
    assert response.status_code == 202, response.content


def test_it_accepts_the_largest_amount_the_database_holds(client, shop):
    response = post_signed(client, shop, payload(amount="999999999999.99", order=DEAR_ORDER))
    assert response.status_code == 202, response.content
    assert AfterSaleRequest.objects.get().amount == Decimal("999999999999.99")


@pytest.mark.parametrize(
    ("price", "message"),
    [
        ("-0.01", "Must not be negative."),
        ("1.005", "At most 2 decimal places."),
        ("NaN", 'Must be a decimal string such as "9.90".'),
        (9.9, 'Must be a decimal string such as "9.90".'),
        ("1000000000000", "Too large: at most 999999999999.99."),
    ],
)
def test_it_rejects_an_item_price(client, shop, price, message):
    order = {"items": [{"product_id": "P1", "title": "A", "quantity": 1, "price": price}]}
    response = post_signed(client, shop, payload(order=order))
    assert response.status_code == 400
    assert response.json()["errors"] == {"order.items.0.price": [message]}
    assert not Order.objects.exists()


@pytest.mark.parametrize("quantity", [0, -1, 1.0, "1", None, True, 2**31, 10**30])
def test_it_rejects_an_item_quantity(client, shop, quantity):
    order = {"items": [{"product_id": "P1", "title": "A", "quantity": quantity, "price": "9.90"}]}
    response = post_signed(client, shop, payload(order=order))
    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["order.items.0.quantity"]
