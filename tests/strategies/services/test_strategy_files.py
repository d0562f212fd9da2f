"""Strategy files (API.md): export, import all-or-nothing, round trip."""

import copy
import datetime as dt
import zoneinfo
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from strategies.models import Product, Strategy
from strategies.services.strategy_files import strategies_export, strategies_import
from tests.factories import make_product, make_shop, make_strategy

pytestmark = pytest.mark.django_db

ENTRY = {
    "name": "Small refunds",
    "scenario": "post_shipment_refund",
    "status": "inactive",
    "valid_from": None,
    "valid_until": "2027-01-01T00:00:00+08:00",
    "window": {"start": "22:00", "end": "08:00"},
    "products": ["P1001", "P1002"],
    "order_status": {"shipped": {"min_days": None, "max_days": 7}, "received": {}},
    "daily_cap": "100000.00",
    "per_request_cap": "20.00",
    "max_hours_since_payment": None,
    "reasons": ["no_longer_needed", "not_received"],
    "risk_control": True,
    "max_per_buyer_30d": 3,
    "remark": "",
}


def entry(**overrides):
    data = copy.deepcopy(ENTRY)
    data.update(overrides)
    return data


def test_it_exports_exactly_the_documented_format(shop):
    p1, p2 = (
        make_product(shop=shop, product_id="P1002"),
        make_product(shop=shop, product_id="P1001"),
    )
    strategy = make_strategy(
        shop=shop,
        name="Small refunds",
        valid_until=dt.datetime(2026, 12, 31, 16, 0, tzinfo=dt.UTC),
        window_start=dt.time(22),
        window_end=dt.time(8),
        covers_shipped=True,
        shipped_max_days=7,
        covers_received=True,
        daily_cap=Decimal("100000"),
        per_request_cap=Decimal("20"),
        reasons=["no_longer_needed", "not_received"],
        max_per_buyer_30d=3,
    )
    strategy.products.set([p1, p2])
    assert strategies_export(shop=shop) == [ENTRY]


def test_it_exports_by_scenario_order_then_priority(shop):
    make_strategy(shop=shop, scenario="post_shipment_refund", name="refund 1")
    make_strategy(shop=shop, scenario="tagged_refund_no_return", name="tagged 1")
    make_strategy(shop=shop, scenario="post_shipment_refund", name="refund 2")
    make_strategy(shop=shop, scenario="post_shipment_refund", name="refund 0", position=0)
    names = [e["name"] for e in strategies_export(shop=shop)]
    assert names == ["tagged 1", "refund 0", "refund 1", "refund 2"]


def test_the_times_are_in_the_shops_zone(db):
    la = make_shop(code="la", timezone="America/Los_Angeles")
    make_strategy(shop=la, valid_from=dt.datetime(2026, 7, 1, 7, 0, tzinfo=dt.UTC))
    assert strategies_export(shop=la)[0]["valid_from"] == "2026-07-01T00:00:00-07:00"


def test_a_round_trip_copies_strategies_to_another_shop(shop, other_shop):
    strategies_import(
        shop=shop,
        entries=[
            entry(),
            entry(name="Tagged", scenario="tagged_refund_no_return", products=[], status="active"),
            entry(
                name="Second",
                window=None,
                order_status={"received": {"min_days": 1, "max_days": 3}},
                status="trial",
            ),
        ],
    )
    exported = strategies_export(shop=shop)
    strategies_import(shop=other_shop, entries=exported)
    assert strategies_export(shop=other_shop) == exported
    # Unknown product ids became products of the receiving shop.
    assert set(Product.objects.filter(shop=other_shop).values_list("product_id", flat=True)) == {
        "P1001",
        "P1002",
    }
    second = Strategy.objects.get(shop=other_shop, name="Second")
    assert (second.covers_shipped, second.covers_received, second.status) == (False, True, "trial")


def test_imported_strategies_come_after_the_existing_ones(shop):
    existing = make_strategy(shop=shop, name="Existing")
    created = strategies_import(shop=shop, entries=[entry(name="New 1"), entry(name="New 2")])
    assert [s.position for s in created] == [2, 3]
    assert Strategy.objects.get(pk=existing.pk).position == 1


def test_the_existing_products_are_reused(shop):
    product = make_product(shop=shop, product_id="P1001", title="Phone case")
    strategy = strategies_import(shop=shop, entries=[entry()])[0]
    assert product in strategy.products.all()
    assert Product.objects.filter(shop=shop).count() == 2


@pytest.mark.parametrize(
    ("bad", "key"),
    [
        ({"per_request_cap": "100000.01"}, "[1].per_request_cap"),
        ({"daily_cap": 100.5}, "[1].daily_cap"),
        ({"daily_cap": "1.001"}, "[1].daily_cap"),
        ({"daily_cap": "NaN"}, "[1].daily_cap"),
        ({"window": {"start": "08:00", "end": "08:00"}}, "[1].window"),
        ({"window": {"start": "25:00", "end": "08:00"}}, "[1].window.start"),
        ({"valid_until": "2027-01-01T00:00:00"}, "[1].valid_until"),
        ({"valid_from": "2028-01-01T00:00:00+08:00"}, "[1].valid_until"),
        ({"reasons": ["because"]}, "[1].reasons"),
        ({"status": "on"}, "[1].status"),
        ({"scenario": "everything"}, "[1].scenario"),
        (
            {"order_status": {"shipped": {"min_days": 5, "max_days": 1}}},
            "[1].order_status.shipped.max_days",
        ),
        ({"order_status": {"delivered": {}}}, "[1].order_status.delivered"),
        ({"max_per_buyer_30d": 0}, "[1].max_per_buyer_30d"),
        ({"risk_control": "yes"}, "[1].risk_control"),
        ({"colour": "red"}, "[1].colour"),
        ({"remark": 5}, "[1].remark"),
        ({"products": ["P1"], "scenario": "tagged_refund_no_return"}, "[1].products"),
    ],
)
def test_an_invalid_entry_stores_nothing_and_is_named(shop, bad, key):
    with pytest.raises(ValidationError) as excinfo:
        strategies_import(shop=shop, entries=[entry(name="Good"), entry(name="Bad one", **bad)])
    assert key in excinfo.value.message_dict
    message = " ".join(excinfo.value.message_dict[key])
    assert "Bad one" in message and "1" in message
    assert not Strategy.objects.exists()
    assert not Product.objects.exists()


def test_an_import_may_not_overfill_a_scenario(shop):
    for _ in range(9):
        make_strategy(shop=shop)
    with pytest.raises(ValidationError) as excinfo:
        strategies_import(shop=shop, entries=[entry(name="tenth"), entry(name="eleventh")])
    assert set(excinfo.value.message_dict) == {"[1].scenario"}
    assert Strategy.objects.count() == 9


def test_a_file_that_is_not_a_list_is_refused(shop):
    with pytest.raises(ValidationError):
        strategies_import(shop=shop, entries={"name": "x"})
    with pytest.raises(ValidationError) as excinfo:
        strategies_import(shop=shop, entries=["x"])
    assert "[0].entry" in excinfo.value.message_dict


def test_the_small_amount_default_cap_survives_in_decimal(shop):
    created = strategies_import(
        shop=shop, entries=[entry(daily_cap=Decimal("500"), per_request_cap=5)]
    )[0]
    assert created.daily_cap == Decimal("500.00") and created.per_request_cap == Decimal("5.00")
    assert zoneinfo.ZoneInfo(shop.timezone)
