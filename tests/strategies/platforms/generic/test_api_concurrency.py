"""Two posts of one aftersale_id at the same moment: one row, and the loser answers as a retry
(same payload) or a conflict (another payload), never a 5xx. Claim, then act: the unique
(shop, aftersale_id) decides, not a check before the insert."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from django.db import connections, transaction

from strategies.models import AfterSaleRequest, Order
from strategies.pipeline.intake import PayloadConflict
from strategies.platforms.generic.intake import aftersale_receive
from tests.concurrency import someone_waits_on_a_lock
from tests.strategies.platforms.generic.api_client import payload

pytestmark = pytest.mark.usefixtures("redis_broker")


def _race(shop, first: dict, second: dict) -> dict[str, Any]:
    """``first`` inserts and holds its transaction open; ``second`` runs into it; then the first
    commits. Returns what the second got (a receipt or an exception)."""
    inserted, release = threading.Event(), threading.Event()
    outcome: dict[str, Any] = {}

    def run_first() -> None:
        try:
            with transaction.atomic():
                outcome["first"] = aftersale_receive(shop=shop, payload=first)
                inserted.set()
                release.wait(10)
        finally:
            connections.close_all()

    def run_second() -> None:
        try:
            outcome["second"] = aftersale_receive(shop=shop, payload=second)
        except Exception as exc:
            outcome["second"] = exc
        finally:
            connections.close_all()

    one = threading.Thread(target=run_first)
    one.start()
    assert inserted.wait(10)
    two = threading.Thread(target=run_second)
    two.start()
    deadline = time.monotonic() + 10
    while not someone_waits_on_a_lock():  # the second is blocked behind the first's rows
        assert time.monotonic() < deadline, "the second post never reached the first's lock"
        time.sleep(0.02)
    release.set()
    one.join(10)
    two.join(10)
    return outcome


@pytest.mark.django_db(transaction=True)
def test_it_stores_one_row_for_two_identical_posts_at_the_same_moment(shop):
    outcome = _race(shop, payload(), payload())

    assert outcome["first"].created is True
    assert outcome["second"].created is False  # answered as a retry: 200
    assert outcome["second"].request.pk == outcome["first"].request.pk
    assert AfterSaleRequest.objects.count() == 1
    assert Order.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_it_rejects_a_different_payload_racing_the_first_as_a_conflict(shop):
    outcome = _race(shop, payload(), payload(amount="1.00", order={"status": "received"}))

    assert isinstance(outcome["second"], PayloadConflict)
    stored = AfterSaleRequest.objects.get()
    assert str(stored.amount) == "9.90"
    assert Order.objects.get().status == "shipped"  # the loser's order update rolled back


@pytest.mark.django_db(transaction=True)
def test_a_request_behind_another_on_the_same_order_replaces_the_items_it_committed(shop):
    # The second waits for the first's lock on the order, then must see (and delete) the items
    # the first committed meanwhile: in one statement, its snapshot would predate them.
    first = payload(aftersale_id="AS-FIRST")
    first["order"]["items"] = [
        {"product_id": "P-A", "title": "A", "quantity": 1, "price": "5.00"},
        {"product_id": "P-B", "title": "B", "quantity": 1, "price": "4.90"},
    ]
    second = payload(aftersale_id="AS-SECOND", amount="3.00", order={"status": "received"})
    second["order"]["items"] = [{"product_id": "P-C", "title": "C", "quantity": 3, "price": "1.00"}]
    outcome = _race(shop, first, second)

    assert outcome["first"].created is True
    assert outcome["second"].created is True, outcome["second"]
    order = Order.objects.get()
    assert order.status == "received"  # the latest payload wins
    assert list(order.items.values_list("product_id", "quantity")) == [("P-C", 3)]
    assert AfterSaleRequest.objects.count() == 2
