"""The traffic generator (pure, seedable) and the simulator posting signed requests."""

import datetime as dt
import json
import re
import threading
from collections import Counter
from decimal import Decimal

import pytest
import requests
from django.core.management import call_command

from strategies.demo.traffic import (
    DEFAULT_CATALOG,
    TrafficGenerator,
    catalog_for,
    get_signed,
    post_signed,
    send_traffic,
)
from strategies.models import AfterSaleRequest
from strategies.platforms.generic.schema import aftersale_payload_clean, payload_parse
from strategies.platforms.generic.signing import sign
from tests.factories import make_product

NOW = dt.datetime(2026, 11, 22, 2, 15, tzinfo=dt.UTC)
STEP = dt.timedelta(milliseconds=200)


def bodies(seed: int, count: int = 500) -> list[bytes]:
    return list(TrafficGenerator(seed=seed).bodies(count=count, now=NOW, step=STEP))


def test_it_generates_the_same_bytes_for_the_same_seed():
    assert bodies(7) == bodies(7)
    assert bodies(7) != bodies(8)


def test_it_generates_only_bodies_the_intake_accepts():
    for body in bodies(3, count=800):
        cleaned = aftersale_payload_clean(payload_parse(body))  # raises PayloadInvalid if not
        assert cleaned.amount <= cleaned.order.total


def test_its_amounts_times_and_states_are_plausible():
    payloads = [json.loads(b) for b in bodies(11, count=1000)]
    for p in payloads:
        amount = Decimal(p["amount"])
        total = sum(Decimal(i["price"]) * i["quantity"] for i in p["order"]["items"])
        assert Decimal("0.01") <= amount <= total
        assert amount == amount.quantize(Decimal("0.01")) and len(p["amount"].split(".")[1]) == 2
        order = p["order"]
        times = [order["paid_at"], order["shipped_at"], order["received_at"], p["applied_at"]]
        parsed = [dt.datetime.fromisoformat(t) for t in times if t]
        assert all(t.utcoffset() == dt.timedelta(hours=8) for t in parsed)  # Asia/Shanghai
        assert parsed == sorted(parsed), p  # paid ≤ shipped ≤ received ≤ applied
        assert dt.datetime.fromisoformat(p["applied_at"]) <= NOW + STEP * 1000
        if order["status"] == "pending_shipment":
            assert order["shipped_at"] is None and p["type"] == "refund_only"
        else:
            assert order["shipped_at"] is not None
        if order["status"] in ("received", "completed"):
            assert order["received_at"] is not None
        if p["type"] == "refund_no_return":
            assert "refund_no_return" in order["tags"]

    amounts = sorted(Decimal(p["amount"]) for p in payloads)
    assert amounts[len(amounts) // 2] <= Decimal("30")  # mostly small…
    assert amounts[-1] >= Decimal("300")  # …with a tail
    assert set(Counter(p["order"]["status"] for p in payloads)) == {
        "pending_shipment", "shipped", "received", "completed",
    }  # fmt: skip
    assert set(Counter(p["type"] for p in payloads)) == {
        "refund_only", "return_refund", "refund_no_return",
    }  # fmt: skip
    assert len({p["reason"] for p in payloads}) == 8
    assert 0 < sum(p["risk_flag"] for p in payloads) < 150
    buyers = Counter(p["buyer_id"] for p in payloads)
    assert buyers.most_common(1)[0][1] >= 5  # repeat buyers
    orders = Counter(p["order"]["order_id"] for p in payloads)
    assert orders.most_common(1)[0][1] >= 2  # several requests on one order


def test_it_retries_some_requests_with_the_exact_same_bytes():
    sent = bodies(5, count=1000)
    ids = Counter(json.loads(b)["aftersale_id"] for b in sent)
    repeated = [i for i, n in ids.items() if n > 1]
    assert 5 <= len(repeated) <= 80
    by_id: dict[str, set[bytes]] = {}
    for body in sent:
        by_id.setdefault(json.loads(body)["aftersale_id"], set()).add(body)
    assert all(len(v) == 1 for v in by_id.values())  # a retry never changes the payload


def test_it_prices_a_shops_own_products_stably():
    catalog = catalog_for([("P1001", "Case"), ("SKU-77", "Lamp")])
    assert catalog[0].price == DEFAULT_CATALOG[0].price and catalog[0].title == "Case"
    assert catalog == catalog_for([("P1001", "Case"), ("SKU-77", "Lamp")])
    assert catalog[1].price > 0


@pytest.mark.django_db(transaction=True)
def test_the_simulator_posts_signed_requests_that_are_stored(live_server, shop):
    make_product(shop=shop, product_id="P1001", title="Case")
    report = send_traffic(
        generator=TrafficGenerator(seed=1, id_prefix="T1", retry_rate=0),
        base_url=live_server.url,
        shop_code=shop.code,
        secret=shop.api_secret,
        rate=20,
        duration=0.5,
        concurrency=2,
    )
    assert report.counts == Counter({"202": 10})
    assert AfterSaleRequest.objects.filter(shop=shop).count() == 10


@pytest.mark.django_db(transaction=True)
def test_the_signature_covers_the_exact_bytes_sent(live_server, shop):
    body = TrafficGenerator(seed=2, id_prefix="T2").next_body(dt.datetime.now(dt.UTC))
    url = live_server.url + "/api/v1/aftersales"
    session = requests.Session()
    ok = post_signed(
        session=session, url=url, shop_code=shop.code, secret=shop.api_secret, body=body
    )
    assert ok.status_code == 202
    retry = post_signed(
        session=session, url=url, shop_code=shop.code, secret=shop.api_secret, body=body
    )
    assert retry.status_code == 200
    now = str(int(dt.datetime.now(dt.UTC).timestamp()))
    headers = {"X-Atom-Shop": shop.code, "Content-Type": "application/json"}

    def signed(timestamp: str) -> dict[str, str]:
        signature = sign(secret=shop.api_secret, timestamp=timestamp, body=body)
        return {**headers, "X-Atom-Timestamp": timestamp, "X-Atom-Signature": signature}

    # The same JSON with other whitespace is other bytes: the signature no longer matches.
    spaced = json.dumps(json.loads(body), indent=1).encode()
    assert session.post(url, data=spaced, headers=signed(now)).status_code == 401
    wrong = post_signed(session=session, url=url, shop_code=shop.code, secret="nope", body=body)
    assert wrong.status_code == 401
    stale = signed(str(int(now) - 3600))
    assert session.post(url, data=body, headers=stale).status_code == 401


@pytest.mark.django_db(transaction=True)
def test_the_simulator_reads_a_status_back_signed_over_the_path(live_server, shop):
    body = TrafficGenerator(seed=5, id_prefix="T5").next_body(dt.datetime.now(dt.UTC))
    aftersale_id = json.loads(body)["aftersale_id"]
    session = requests.Session()
    url = live_server.url + "/api/v1/aftersales"
    assert (
        post_signed(
            session=session, url=url, shop_code=shop.code, secret=shop.api_secret, body=body
        ).status_code
        == 202
    )
    read = get_signed(
        session=session,
        base_url=live_server.url,
        shop_code=shop.code,
        secret=shop.api_secret,
        aftersale_id=aftersale_id,
    )
    assert read.status_code == 200
    assert read.json()["aftersale_id"] == aftersale_id
    # The same headers on another request's path read nothing (API.md 1.1).
    replayed = session.get(f"{url}/{aftersale_id}X", headers=dict(read.request.headers))
    assert replayed.status_code == 401
    wrong = get_signed(
        session=session,
        base_url=live_server.url,
        shop_code=shop.code,
        secret="not-the-shops-secret-but-long-enough",
        aftersale_id=aftersale_id,
    )
    assert wrong.status_code == 401


@pytest.mark.django_db(transaction=True)
def test_the_command_reads_the_secret_from_the_shop(live_server, shop, capsys):
    call_command(
        "simulate_traffic", "--shop", shop.code, "--rate", "10", "--duration", "0.3",
        "--url", live_server.url, "--seed", "4",
    )  # fmt: skip
    out = capsys.readouterr().out
    # in the run's one language (Chinese by default): 3 requests, all answered 202
    assert re.search(r"(done, 3 requests|3 个请求)", out) and "202: 3" in out
    assert AfterSaleRequest.objects.filter(shop=shop).count() == 3


def test_send_traffic_stops_when_asked():
    stop = threading.Event()
    stop.set()
    report = send_traffic(
        generator=TrafficGenerator(seed=1),
        base_url="http://127.0.0.1:9",
        shop_code="x",
        secret="y",
        rate=5,
        duration=None,
        stop=stop,
    )
    assert report.sent == 0
