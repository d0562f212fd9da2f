"""Demo traffic: realistic after-sales requests, and a paced, signed HTTP sender for them.

``TrafficGenerator`` is pure and seedable: the same seed, catalogue and sequence of ``now``
values give the same bodies byte for byte, so tests can pin what it produces. It never touches
the database. ``send_traffic`` posts what it generates to the intake API (API.md), signing the
exact bytes it sends with :func:`strategies.platforms.generic.signing.signed_headers`;
``get_signed`` reads a request's status back, signed over the path it sends.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import threading
import time
import zoneinfo
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from typing import Any

import requests
from django.utils.translation import ngettext

from strategies.platforms.generic.signing import aftersale_path, signed_headers

CENT = Decimal("0.01")
INTAKE_PATH = "/api/v1/aftersales"


@dataclass(frozen=True)
class CatalogItem:
    product_id: str
    title: str
    price: Decimal


# Used when the shop has no products: cheap items mostly, a few dear ones (the amount tail).
DEFAULT_CATALOG: tuple[CatalogItem, ...] = (
    CatalogItem("P1001", "Phone case", Decimal("9.90")),
    CatalogItem("P1002", "USB-C cable 1 m", Decimal("6.50")),
    CatalogItem("P1003", "Screen protector (2 pack)", Decimal("12.80")),
    CatalogItem("P1004", "Socks (5 pairs)", Decimal("19.90")),
    CatalogItem("P1005", "Hair clips", Decimal("4.99")),
    CatalogItem("P1006", "Notebook A5", Decimal("8.80")),
    CatalogItem("P1007", "Ceramic mug", Decimal("25.00")),
    CatalogItem("P1008", "Wireless earbuds", Decimal("129.00")),
    CatalogItem("P1009", "Running shoes", Decimal("299.00")),
    CatalogItem("P1010", "Down jacket", Decimal("599.00")),
    CatalogItem("P1011", "Tea sampler", Decimal("39.90")),
    CatalogItem("P1012", "Mechanical keyboard", Decimal("459.00")),
)

# Weights of the order states, and per state the types and reasons a buyer plausibly picks.
ORDER_STATES: tuple[tuple[str, int], ...] = (
    ("pending_shipment", 25),
    ("shipped", 35),
    ("received", 30),
    ("completed", 10),
)
REASONS_BY_STATE: dict[str, tuple[tuple[str, int], ...]] = {
    "pending_shipment": (
        ("no_longer_needed", 55),
        ("not_shipped_on_time", 30),
        ("other", 15),
    ),
    "shipped": (
        ("not_received", 35),
        ("no_longer_needed", 25),
        ("quality_issue", 10),
        ("wrong_or_missing_item", 10),
        ("seven_day_no_reason", 10),
        ("other", 10),
    ),
    "received": (
        ("quality_issue", 25),
        ("not_as_described", 20),
        ("wrong_or_missing_item", 15),
        ("seven_day_no_reason", 25),
        ("no_longer_needed", 10),
        ("other", 5),
    ),
}
REASONS_BY_STATE["completed"] = REASONS_BY_STATE["received"]

TAG_REFUND_NO_RETURN = "refund_no_return"


def _pick(rng: random.Random, weighted: Sequence[tuple[str, int]]) -> str:
    return rng.choices([v for v, _w in weighted], weights=[w for _v, w in weighted])[0]


def _iso(moment: dt.datetime) -> str:
    return moment.isoformat(timespec="seconds")


def _money(value: Decimal) -> str:
    return str(value.quantize(CENT))


def encode(payload: dict) -> bytes:
    """The exact bytes sent (and signed): compact JSON, UTF-8."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


@dataclass
class _Order:
    order: dict
    buyer_id: str
    total: Decimal


@dataclass
class TrafficGenerator:
    """Yields after-sales request bodies as API.md defines them.

    - types, reasons and order states in plausible mixes; completed orders now and then;
    - amounts: usually one item's price, sometimes the whole order, sometimes part of it
      (always ≤ the order total, 2 decimals, > 0); the catalogue gives the long tail;
    - paid/shipped/received times consistent with the order state, before ``now``;
    - some orders tagged ``refund_no_return``, some requests risk-flagged;
    - repeat buyers (a few buyers send a large share) and follow-up requests on an order
      already seen; ``retry_rate`` of the bodies are an exact copy of an earlier one (a platform
      retry: same id, same bytes).
    """

    seed: int
    catalog: Sequence[CatalogItem] = DEFAULT_CATALOG
    zone: zoneinfo.ZoneInfo = field(default_factory=lambda: zoneinfo.ZoneInfo("Asia/Shanghai"))
    id_prefix: str = "SIM"
    retry_rate: float = 0.03
    follow_up_rate: float = 0.05
    risk_rate: float = 0.05
    tag_rate: float = 0.2
    buyers: int = 300

    def __post_init__(self) -> None:
        if not self.catalog:
            raise ValueError("the catalogue is empty")
        self._rng = random.Random(self.seed)
        # Cheap items sell (and come back) far more often than dear ones.
        self._weights = [10 if item.price <= 50 else 1 for item in self.catalog]
        self._seq = 0
        self._order_seq = 0
        self._orders: list[_Order] = []
        self._sent: list[bytes] = []

    # --- public -------------------------------------------------------------------------
    def next_body(self, now: dt.datetime) -> bytes:
        """The next body to send at ``now`` (aware): a new request or, rarely, a retry."""
        if now.tzinfo is None:
            raise ValueError("now must be aware")
        if self._sent and self._rng.random() < self.retry_rate:
            return self._rng.choice(self._sent[-50:])
        body = encode(self._new_request(now.astimezone(self.zone)))
        self._sent.append(body)
        del self._sent[:-200]
        return body

    def bodies(self, *, count: int, now: dt.datetime, step: dt.timedelta) -> Iterator[bytes]:
        """``count`` bodies as if sent ``step`` apart from ``now`` on."""
        for i in range(count):
            yield self.next_body(now + step * i)

    # --- generation -----------------------------------------------------------------------
    def _buyer(self) -> str:
        rng = self._rng
        # A fifth of the traffic comes from ten regulars: the per-buyer limit gets exercised.
        if rng.random() < 0.2:
            return f"B{rng.randrange(10):05d}"
        return f"B{rng.randrange(10, self.buyers):05d}"

    def _new_request(self, now: dt.datetime) -> dict:
        rng = self._rng
        self._seq += 1
        if self._orders and rng.random() < self.follow_up_rate:
            placed = rng.choice(self._orders[-100:])
        else:
            placed = self._new_order(now)
            self._orders.append(placed)
            del self._orders[:-500]
        order = placed.order
        state = order["status"]
        tagged = TAG_REFUND_NO_RETURN in order["tags"]
        if state == "pending_shipment":
            kind = "refund_only"
        elif tagged and rng.random() < 0.6:
            kind = "refund_no_return"
        else:
            kind = _pick(rng, (("refund_only", 55), ("return_refund", 45)))
        reason = _pick(rng, REASONS_BY_STATE[state])
        latest = max(
            dt.datetime.fromisoformat(t)
            for t in (order["paid_at"], order["shipped_at"], order["received_at"])
            if t
        )
        applied = min(now, latest + dt.timedelta(minutes=rng.randint(1, 600)))
        applied = max(applied, latest)
        return {
            "aftersale_id": f"AS{self.id_prefix}{self._seq:07d}",
            "buyer_id": placed.buyer_id,
            "type": kind,
            "reason": reason,
            "amount": _money(self._amount(placed)),
            "applied_at": _iso(applied),
            "risk_flag": rng.random() < self.risk_rate,
            "order": order,
        }

    def _amount(self, placed: _Order) -> Decimal:
        rng = self._rng
        items = placed.order["items"]
        roll = rng.random()
        if roll < 0.6:
            item = rng.choice(items)
            amount = Decimal(item["price"]) * item["quantity"]
        elif roll < 0.85:
            amount = placed.total
        else:
            fraction = Decimal(rng.randint(10, 90)) / 100
            amount = (placed.total * fraction).quantize(CENT, ROUND_DOWN)
        return min(max(amount, CENT), placed.total)

    def _new_order(self, now: dt.datetime) -> _Order:
        rng = self._rng
        state = _pick(rng, ORDER_STATES)
        hour = dt.timedelta(hours=1)
        shipped_at = received_at = None
        if state == "pending_shipment":
            paid_at = now - hour * rng.uniform(0.2, 60)
        elif state == "shipped":
            shipped_at = now - hour * rng.uniform(2, 24 * 8)
            paid_at = shipped_at - hour * rng.uniform(1, 48)
        else:
            received_at = now - hour * rng.uniform(1, 24 * (6 if state == "received" else 20))
            if state == "completed":
                received_at -= dt.timedelta(days=7)
            shipped_at = received_at - hour * rng.uniform(12, 24 * 4)
            paid_at = shipped_at - hour * rng.uniform(1, 48)
        items: list[dict[str, Any]] = []
        total = Decimal("0")
        for _ in range(rng.choices((1, 2, 3), weights=(70, 22, 8))[0]):
            if rng.random() < 0.05:
                # A product ATOM never saw (not in the shop's catalogue).
                product = CatalogItem(
                    f"P9{rng.randrange(1000):03d}", "Other item", Decimal("15.00")
                )
            else:
                product = rng.choices(self.catalog, weights=self._weights)[0]
            quantity = rng.choices((1, 2), weights=(85, 15))[0]
            items.append(
                {
                    "product_id": product.product_id,
                    "title": product.title,
                    "quantity": quantity,
                    "price": _money(product.price),
                }
            )
            total += product.price.quantize(CENT) * quantity
        tags = (
            [TAG_REFUND_NO_RETURN]
            if state in ("shipped", "received") and rng.random() < self.tag_rate
            else []
        )
        self._order_seq += 1
        order = {
            "order_id": f"OD{self.id_prefix}{self._order_seq:07d}",
            "status": state,
            "paid_at": _iso(paid_at),
            "shipped_at": _iso(shipped_at) if shipped_at else None,
            "received_at": _iso(received_at) if received_at else None,
            "tags": tags,
            "items": items,
        }
        return _Order(order=order, buyer_id=self._buyer(), total=total)


# --- sending -----------------------------------------------------------------------------
@dataclass
class TrafficReport:
    """Responses by HTTP status code (``error`` for a request that got no response)."""

    counts: Counter = field(default_factory=Counter)
    sent: int = 0
    started: float = field(default_factory=time.monotonic)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, key: str) -> None:
        with self.lock:
            self.counts[key] += 1

    def summary(self) -> str:
        with self.lock:
            elapsed = max(time.monotonic() - self.started, 1e-9)
            parts = ", ".join(f"{code}: {n}" for code, n in sorted(self.counts.items()))
            done = sum(self.counts.values())
        return ngettext(
            "%(n)d request in %(seconds).1f s (%(rate).1f/s) by status: %(parts)s",
            "%(n)d requests in %(seconds).1f s (%(rate).1f/s) by status: %(parts)s",
            done,
        ) % {"n": done, "seconds": elapsed, "rate": done / elapsed, "parts": parts or "-"}

    def all_unauthorized(self) -> bool:
        """Every answer was 401: the shop code or its secret is wrong (nothing was stored)."""
        with self.lock:
            return bool(self.counts) and set(self.counts) == {"401"}


def post_signed(
    *,
    session: requests.Session,
    url: str,
    shop_code: str,
    secret: str,
    body: bytes,
    timeout: float = 10.0,
) -> requests.Response:
    """POSTs ``body`` as is, with the headers API.md asks for over exactly these bytes."""
    headers = signed_headers(shop_code=shop_code, secret=secret, body=body)
    headers["Content-Type"] = "application/json"
    return session.post(url, data=body, headers=headers, timeout=timeout)


def get_signed(
    *,
    session: requests.Session,
    base_url: str,
    shop_code: str,
    secret: str,
    aftersale_id: str,
    timeout: float = 10.0,
) -> requests.Response:
    """Reads one request's status (``GET /api/v1/aftersales/{id}``), signed over its path."""
    path = aftersale_path(aftersale_id)
    headers = signed_headers(shop_code=shop_code, secret=secret, method="GET", path=path)
    # requests sends an already-quoted path unchanged: the path signed is the path sent.
    return session.get(base_url.rstrip("/") + path, headers=headers, timeout=timeout)


def send_traffic(
    *,
    generator: TrafficGenerator,
    base_url: str,
    shop_code: str,
    secret: str,
    rate: float,
    duration: float | None,
    concurrency: int = 4,
    stop: threading.Event | None = None,
    on_progress: Callable[[TrafficReport], None] | None = None,
    progress_every: float = 10.0,
) -> TrafficReport:
    """Sends ``rate`` requests per second for ``duration`` seconds (None: until ``stop``).

    Paced on a fixed schedule (request i leaves at ``i / rate``), with up to ``concurrency``
    requests in flight so a slow answer does not slow the offered rate.
    """
    if rate <= 0:
        raise ValueError("rate must be above zero")
    stop = stop or threading.Event()
    url = base_url.rstrip("/") + INTAKE_PATH
    report = TrafficReport()
    local = threading.local()

    def one(body: bytes) -> None:
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
        try:
            response = post_signed(
                session=session, url=url, shop_code=shop_code, secret=secret, body=body
            )
            report.add(str(response.status_code))
        except requests.RequestException:
            report.add("error")

    start = time.monotonic()
    next_progress = start + progress_every
    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        i = 0
        while not stop.is_set():
            offset = i / rate
            # Compare the offset itself: (start + offset) - start can round below the duration.
            if duration is not None and offset >= duration:
                break
            due = start + offset
            now = time.monotonic()
            if due > now and stop.wait(due - now):
                break
            body = generator.next_body(dt.datetime.now(dt.UTC))
            pool.submit(one, body)
            report.sent += 1
            i += 1
            if on_progress is not None and time.monotonic() >= next_progress:
                on_progress(report)
                next_progress += progress_every
    return report


def catalog_for(products: Sequence[tuple[str, str]]) -> list[CatalogItem]:
    """A catalogue for a shop's (product_id, title) pairs.

    The shop's products carry no price: the demo's ids take the default catalogue's price, any
    other id a stable price derived from it (cheap mostly, a few dear ones).
    """
    known = {item.product_id: item for item in DEFAULT_CATALOG}
    catalog = []
    for product_id, title in products:
        if product_id in known:
            catalog.append(
                CatalogItem(product_id, title or known[product_id].title, known[product_id].price)
            )
            continue
        digest = sum(product_id.encode("utf-8")) * 7919
        price = Decimal(3 + digest % 40) + Decimal("0.90")
        if digest % 9 == 0:
            price *= 10
        catalog.append(CatalogItem(product_id, title, price))
    return catalog
