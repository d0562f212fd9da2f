"""Helpers for the API tests: a valid payload and signed calls through Django's test client."""

from __future__ import annotations

import copy
import json
import time
from typing import Any

from django.http import HttpResponse
from django.test import Client

from strategies.models import Shop
from strategies.platforms.generic.signing import aftersale_path, signed_headers

CREATE_URL = "/api/v1/aftersales"

VALID_PAYLOAD: dict[str, Any] = {
    "aftersale_id": "AS20261122000001",
    "buyer_id": "B7781",
    "type": "refund_only",
    "reason": "no_longer_needed",
    "amount": "9.90",
    "applied_at": "2026-11-22T10:15:00+08:00",
    "risk_flag": False,
    "order": {
        "order_id": "OD20261120000009",
        "status": "shipped",
        "paid_at": "2026-11-20T09:00:00+08:00",
        "shipped_at": "2026-11-21T08:00:00+08:00",
        "received_at": None,
        "tags": [],
        "items": [{"product_id": "P1001", "title": "Phone case", "quantity": 1, "price": "9.90"}],
    },
}


def payload(**overrides: Any) -> dict[str, Any]:
    """A deep copy of API.md's example; ``order=`` overrides are merged into the order."""
    result = copy.deepcopy(VALID_PAYLOAD)
    order = overrides.pop("order", None)
    result.update(overrides)
    if order is not None:
        result["order"].update(order)
    return result


def encode(data: Any) -> bytes:
    return json.dumps(data).encode("utf-8")


def detail_url(aftersale_id: str) -> str:
    return aftersale_path(aftersale_id)


def headers_for(
    shop: Shop,
    body: bytes = b"",
    *,
    secret: str | None = None,
    timestamp: int | None = None,
    get: str | None = None,
) -> dict[str, str]:
    """Signed headers for a POST of ``body``, or for a GET of the path ``get``."""
    headers = signed_headers(
        shop_code=shop.code,
        secret=shop.api_secret if secret is None else secret,
        body=body,
        method="POST" if get is None else "GET",
        path=get or "",
        timestamp=int(time.time()) if timestamp is None else timestamp,
    )
    # English messages, so tests can read them (the default language is zh-hans).
    headers["Accept-Language"] = "en"
    return headers


def post_signed(client: Client, shop: Shop, body: bytes | dict, **sign: Any) -> HttpResponse:
    raw = encode(body) if isinstance(body, dict) else body
    return client.post(
        CREATE_URL,
        data=raw,
        content_type="application/json",
        headers=headers_for(shop, raw, **sign),
    )


def get_signed(client: Client, shop: Shop, aftersale_id: str, **sign: Any) -> HttpResponse:
    path = detail_url(aftersale_id)
    return client.get(path, headers=headers_for(shop, get=path, **sign))
