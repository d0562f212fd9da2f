"""RELIABILITY.md scenario 24 (intake half): ids that are path tricks are refused (API.md 1.1).

Ids are 1 to 64 characters of ``A-Z a-z 0-9 _ - . :`` starting with a letter or digit: an id
goes into the gateway's URL and the GET path, so ``.``, ``..``, ``a/b`` or ``%2F`` never get in.
"""

from __future__ import annotations

import pytest

from strategies.models import AfterSaleRequest, Order, Product
from tests.strategies.platforms.generic.api_client import encode, headers_for, payload, post_signed

ID_FIELDS = ["aftersale_id", "buyer_id", "order.order_id", "order.items.0.product_id"]
CHARSET = "Only A-Z, a-z, 0-9, “_”, “-”, “.” and “:”, starting with a letter or digit."


def with_id(field: str, value: object) -> dict:
    body = payload()
    if field == "order.order_id":
        body["order"]["order_id"] = value
    elif field == "order.items.0.product_id":
        body["order"]["items"][0]["product_id"] = value
    else:
        body[field] = value
    return body


@pytest.mark.parametrize("field", ID_FIELDS)
@pytest.mark.parametrize(
    "value",
    [
        ".",
        "..",
        "a/b",
        "AS%2F1",
        "%2F",
        "-AS1",
        "_AS1",
        ":AS1",
        ".AS1",
        "AS 1",
        "AS1\n",
        "AS\u00e91",
        "ＡＳ１",
        "AS1?x=1",
        "AS#1",
        "AS\\1",
        "AS+1",
        "AS@1",
    ],
)
def test_it_refuses_an_id_outside_the_contract(client, shop, field, value):
    response = post_signed(client, shop, with_id(field, value))
    assert response.status_code == 400, response.content
    assert response.json()["errors"] == {field: [CHARSET]}
    assert not AfterSaleRequest.objects.exists()
    assert not Order.objects.exists() and not Product.objects.exists()


@pytest.mark.parametrize("field", ID_FIELDS)
def test_it_refuses_an_empty_or_too_long_id(client, shop, field):
    empty = post_signed(client, shop, with_id(field, ""))
    assert empty.status_code == 400
    assert empty.json()["errors"] == {field: ["Must not be empty."]}
    long = post_signed(client, shop, with_id(field, "A" * 65))
    assert long.status_code == 400
    assert long.json()["errors"] == {field: ["At most 64 characters."]}
    assert not AfterSaleRequest.objects.exists()


@pytest.mark.parametrize("field", ID_FIELDS)
@pytest.mark.parametrize("value", ["A", "9", "a.b:c-d_e", "AS..1", "x" * 64, "0:"])
def test_it_accepts_any_id_of_the_contract(client, shop, field, value):
    body = with_id(field, value)
    if field != "aftersale_id":
        body["aftersale_id"] = f"AS-{field}-{len(value)}-{value[:20]}"
    response = post_signed(client, shop, body)
    assert response.status_code == 202, response.content
    assert AfterSaleRequest.objects.count() == 1


def test_it_says_so_in_chinese_by_default(client, shop):
    raw = encode(with_id("aftersale_id", ".."))
    headers = headers_for(shop, raw)
    del headers["Accept-Language"]
    response = client.post(
        "/api/v1/aftersales", data=raw, content_type="application/json", headers=headers
    )
    assert response.status_code == 400
    [message] = response.json()["errors"]["aftersale_id"]
    assert message != CHARSET and "A-Z" in message
