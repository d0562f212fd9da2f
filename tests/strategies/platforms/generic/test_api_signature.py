"""RELIABILITY.md scenario 20: every API call is signed, and a key never reaches another shop."""

from __future__ import annotations

import pytest

from strategies.models import AfterSaleRequest
from strategies.platforms.generic import auth as selectors_api
from strategies.platforms.generic.signing import sign, signed_headers
from tests.factories import make_request, make_shop
from tests.strategies.platforms.generic.api_client import (
    CREATE_URL,
    detail_url,
    encode,
    get_signed,
    headers_for,
    payload,
    post_signed,
)

# A known vector, computed independently with
#   printf '%s' "1700000000.$BODY" | openssl dgst -sha256 -hmac 'vector-secret-2026'
VECTOR_SECRET = "vector-secret-2026"
VECTOR_TIMESTAMP = 1700000000
VECTOR_BODY = (
    b'{"aftersale_id":"ASV1","buyer_id":"B1","type":"refund_only","reason":"no_longer_needed",'
    b'"amount":"9.90","applied_at":"2023-11-14T22:13:20+00:00","risk_flag":false,'
    b'"order":{"order_id":"ODV1","status":"shipped","paid_at":"2023-11-12T09:00:00+08:00",'
    b'"shipped_at":"2023-11-13T08:00:00+08:00","received_at":null,"tags":[],'
    b'"items":[{"product_id":"P1001","title":"Phone case","quantity":1,"price":"9.90"}]}}'
)
VECTOR_SIGNATURE = "74dc8229478ade5f849583468f14bfaa982083e47d6ba3a8850f9b5781cfe1d5"
# The same key over a GET's path (API.md 1.1), computed the same way with
#   printf '%s' "1700000000.GET /api/v1/aftersales/ASV1" | openssl dgst -sha256 -hmac ...
VECTOR_GET_SIGNATURE = "a32aa42275a702b1f509c60f59f6718e4af6db0b3790a7d3596030f2aef438e9"


@pytest.fixture
def vector_shop(db):
    return make_shop(code="vector", api_secret=VECTOR_SECRET)


@pytest.fixture
def frozen_clock(monkeypatch):
    """The server clock at the vector's timestamp."""
    monkeypatch.setattr(selectors_api.time, "time", lambda: float(VECTOR_TIMESTAMP))


def vector_headers(signature: str = VECTOR_SIGNATURE) -> dict[str, str]:
    return {
        "X-Atom-Shop": "vector",
        "X-Atom-Timestamp": str(VECTOR_TIMESTAMP),
        "X-Atom-Signature": signature,
        "Accept-Language": "en",
    }


def test_it_signs_like_an_independent_implementation():
    assert sign(secret=VECTOR_SECRET, timestamp="1700000000", body=VECTOR_BODY) == VECTOR_SIGNATURE
    get = signed_headers(
        shop_code="vector",
        secret=VECTOR_SECRET,
        method="GET",
        path="/api/v1/aftersales/ASV1",
        timestamp=VECTOR_TIMESTAMP,
    )
    assert get["X-Atom-Signature"] == VECTOR_GET_SIGNATURE


def test_it_accepts_the_known_vector(client, vector_shop, frozen_clock):
    response = client.post(
        CREATE_URL, data=VECTOR_BODY, content_type="application/json", headers=vector_headers()
    )
    assert response.status_code == 202, response.content
    assert response.json() == {"aftersale_id": "ASV1", "status": "received"}
    assert AfterSaleRequest.objects.filter(shop=vector_shop, aftersale_id="ASV1").exists()


def test_it_accepts_the_known_vector_for_a_get(client, vector_shop, frozen_clock):
    response = client.get(detail_url("ASV1"), headers=vector_headers(VECTOR_GET_SIGNATURE))
    # Authenticated: the shop simply has no such request yet.
    assert response.status_code == 404
    assert response.json() == {"error": "Not found."}


@pytest.mark.parametrize("position", [0, 17, len(VECTOR_BODY) // 2, len(VECTOR_BODY) - 1])
def test_it_rejects_one_changed_byte_of_the_body(client, vector_shop, frozen_clock, position):
    tampered = bytearray(VECTOR_BODY)
    tampered[position] ^= 0x01
    response = client.post(
        CREATE_URL, data=bytes(tampered), content_type="application/json", headers=vector_headers()
    )
    assert response.status_code == 401
    assert response.json() == {"error": "Unknown shop or wrong signature."}
    assert not AfterSaleRequest.objects.exists()


def test_it_rejects_one_changed_character_of_the_signature(client, vector_shop, frozen_clock):
    wrong = VECTOR_SIGNATURE[:-1] + ("0" if VECTOR_SIGNATURE[-1] != "0" else "1")
    response = client.post(
        CREATE_URL, data=VECTOR_BODY, content_type="application/json", headers=vector_headers(wrong)
    )
    assert response.status_code == 401


def test_it_rejects_an_uppercase_or_truncated_signature(client, vector_shop, frozen_clock):
    for wrong in (VECTOR_SIGNATURE.upper(), VECTOR_SIGNATURE[:32], VECTOR_SIGNATURE + "00"):
        response = client.post(
            CREATE_URL,
            data=VECTOR_BODY,
            content_type="application/json",
            headers=vector_headers(wrong),
        )
        assert response.status_code == 401, wrong


@pytest.mark.parametrize(
    ("offset", "status"),
    [(-301, 401), (-300, 202), (-299, 202), (0, 202), (299, 202), (300, 202), (301, 401)],
)
def test_it_accepts_a_timestamp_only_within_300_seconds(client, shop, monkeypatch, offset, status):
    now = 1_900_000_000
    monkeypatch.setattr(selectors_api.time, "time", lambda: now + 0.75)
    body = encode(payload())
    response = post_signed(client, shop, body, timestamp=now + offset)
    assert response.status_code == status, response.content
    if status == 401:
        assert "300 seconds" in response.json()["error"]
        assert not AfterSaleRequest.objects.exists()


@pytest.mark.parametrize("timestamp", ["", "abc", "-5", "1.5", "1e9", "１７００００００００"])
def test_it_rejects_a_timestamp_that_is_not_unix_seconds(client, shop, timestamp):
    body = encode(payload())
    headers = headers_for(shop, body)
    headers["X-Atom-Timestamp"] = timestamp
    response = client.post(CREATE_URL, data=body, content_type="application/json", headers=headers)
    assert response.status_code == 401
    assert response.json()["error"]


@pytest.mark.parametrize("missing", ["X-Atom-Shop", "X-Atom-Timestamp", "X-Atom-Signature"])
def test_it_rejects_a_call_missing_a_header(client, shop, missing):
    body = encode(payload())
    headers = headers_for(shop, body)
    del headers[missing]
    response = client.post(CREATE_URL, data=body, content_type="application/json", headers=headers)
    assert response.status_code == 401
    assert response.json() == {"error": f"Missing header {missing}."}
    assert not AfterSaleRequest.objects.exists()


@pytest.mark.parametrize("missing", ["X-Atom-Shop", "X-Atom-Timestamp", "X-Atom-Signature"])
def test_it_rejects_a_get_missing_a_header(client, shop, missing):
    make_request(shop=shop, aftersale_id="AS1")
    headers = headers_for(shop, get=detail_url("AS1"))
    del headers[missing]
    response = client.get(detail_url("AS1"), headers=headers)
    assert response.status_code == 401
    assert "AS1" not in response.content.decode()


@pytest.mark.parametrize("code", ["nobody", "shop-a'--", "shop a", "x" * 65, "shop-\u00e9"])
def test_it_rejects_an_unknown_shop(client, shop, code):
    body = encode(payload())
    headers = headers_for(shop, body)
    headers["X-Atom-Shop"] = code
    response = client.post(CREATE_URL, data=body, content_type="application/json", headers=headers)
    assert response.status_code == 401
    # The same answer as a wrong signature: the API does not tell which shop codes exist.
    assert response.json() == {"error": "Unknown shop or wrong signature."}


def test_it_rejects_a_shop_code_signed_with_another_shops_key(client, shop, other_shop):
    body = encode(payload())
    response = post_signed(client, shop, body, secret=other_shop.api_secret)
    assert response.status_code == 401
    assert not AfterSaleRequest.objects.exists()


def test_it_rejects_a_get_signed_with_another_shops_key(client, shop, other_shop):
    make_request(shop=shop, aftersale_id="AS-A")
    response = get_signed(client, shop, "AS-A", secret=other_shop.api_secret)
    assert response.status_code == 401
    assert "AS-A" not in response.content.decode()


def test_it_answers_404_for_another_shops_request_exactly_as_for_an_unknown_one(
    client, shop, other_shop
):
    make_request(shop=shop, aftersale_id="AS-OF-A")
    foreign = get_signed(client, other_shop, "AS-OF-A")
    unknown = get_signed(client, other_shop, "AS-NEVER-SEEN")
    assert foreign.status_code == unknown.status_code == 404
    assert foreign.json() == unknown.json() == {"error": "Not found."}
    assert foreign.content.replace(b"AS-OF-A", b"") == unknown.content.replace(
        b"AS-NEVER-SEEN", b""
    )
    # Shop A itself still sees it.
    assert get_signed(client, shop, "AS-OF-A").status_code == 200


def test_it_keeps_the_same_aftersale_id_apart_between_shops(client, shop, other_shop):
    body = encode(payload(aftersale_id="AS-SAME"))
    assert post_signed(client, shop, body).status_code == 202
    # Shop B posting the same id with a different payload is no conflict: its own namespace.
    other = payload(aftersale_id="AS-SAME", amount="1.00")
    assert post_signed(client, other_shop, other).status_code == 202
    assert AfterSaleRequest.objects.filter(aftersale_id="AS-SAME").count() == 2
    assert get_signed(client, other_shop, "AS-SAME").json()["status"] == "received"


def test_it_verifies_the_signature_before_parsing_the_body(client, shop):
    # Invalid JSON with a wrong signature is a 401, not a 400: nothing reads unsigned bytes.
    body = b"{not json"
    response = post_signed(client, shop, body, secret="not-the-key")
    assert response.status_code == 401
    assert post_signed(client, shop, body).status_code == 400


@pytest.mark.parametrize("aftersale_id", ["a%00b", "%ED%A0%80", "A" * 65, "%F0%9F%98%80"])
def test_it_answers_404_for_an_id_that_could_never_be_stored(client, shop, aftersale_id):
    path = f"{CREATE_URL}/{aftersale_id}"  # as written: the test is what the id decodes to
    response = client.get(path, headers=headers_for(shop, get=path))
    assert response.status_code == 404
    assert response.json() == {"error": "Not found."}
