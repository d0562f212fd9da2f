"""Strategy files (API.md 1.1): export, import all-or-nothing and inactive, round trip, and an
error naming entry and field (``1.daily_cap``) in the interface language for any bad input."""

import copy
import datetime as dt
import zoneinfo
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.utils import translation

from strategies.models import STRATEGY_CREATE_SETTINGS, STRATEGY_SETTINGS, Product, Strategy
from strategies.services.strategies import strategy_create_from_template
from strategies.services.strategy_files import (
    FILE_PATH,
    StrategyEntry,
    strategies_export,
    strategies_import,
    strategies_import_summary,
)
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
    "template": None,
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
        keep_status=True,
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
    strategies_import(shop=other_shop, entries=exported, keep_status=True)
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
        ({"per_request_cap": "100000.01"}, "1.per_request_cap"),
        ({"daily_cap": 100.5}, "1.daily_cap"),
        ({"daily_cap": "1.001"}, "1.daily_cap"),
        ({"daily_cap": "NaN"}, "1.daily_cap"),
        ({"daily_cap": "-5.00"}, "1.daily_cap"),
        ({"daily_cap": Decimal("1e30")}, "1.daily_cap"),
        ({"daily_cap": "1e30"}, "1.daily_cap"),
        ({"daily_cap": 10**30}, "1.daily_cap"),
        ({"window": {"start": "08:00", "end": "08:00"}}, "1.window"),
        ({"window": {"start": "25:00", "end": "08:00"}}, "1.window.start"),
        ({"window": {"start": "22:00", "end": "08:00+08:00"}}, "1.window.end"),
        ({"window": {"start": "22:00"}}, "1.window.end"),
        ({"valid_until": "2027-01-01T00:00:00"}, "1.valid_until"),
        ({"valid_until": 1767225600}, "1.valid_until"),
        ({"valid_from": "2028-01-01T00:00:00+08:00"}, "1.valid_until"),
        ({"valid_until": "9999-12-31T23:59:59-08:00"}, "1.valid_until"),
        ({"valid_until": "2100-01-01T00:00:00+08:00"}, "1.valid_until"),
        ({"valid_from": "0001-01-01T00:00:00+08:00"}, "1.valid_from"),
        ({"valid_from": "1999-12-31T23:59:59+08:00"}, "1.valid_from"),
        ({"reasons": ["because"]}, "1.reasons.0"),
        ({"reasons": ["other", "other"]}, "1.reasons"),
        ({"status": "on"}, "1.status"),
        ({"scenario": "everything"}, "1.scenario"),
        (
            {"order_status": {"shipped": {"min_days": 5, "max_days": 1}}},
            "1.order_status.shipped.max_days",
        ),
        ({"order_status": {"delivered": {}}}, "1.order_status.delivered"),
        ({"order_status": {}}, "1.order_status"),
        ({"max_per_buyer_30d": 0}, "1.max_per_buyer_30d"),
        ({"max_per_buyer_30d": 2**31}, "1.max_per_buyer_30d"),
        ({"max_hours_since_payment": "24"}, "1.max_hours_since_payment"),
        ({"risk_control": "yes"}, "1.risk_control"),
        ({"colour": "red"}, "1.colour"),
        ({"remark": 5}, "1.remark"),
        ({"remark": "x" * 201}, "1.remark"),
        ({"name": "x" * 61}, "1.name"),
        ({"name": "Bad one\x00"}, "1.name"),
        ({"products": ["P1"], "scenario": "tagged_refund_no_return"}, "1.products"),
        ({"products": ["P" * 65]}, "1.products.0"),
        ({"products": ["P1", "P\x00"]}, "1.products.1"),
        ({"products": ["..", "P1"]}, "1.products.0"),
        ({"products": ["P1", "P1"]}, "1.products"),
        ({"template": "big_amount"}, "1.template"),
        ({"template": "small_amount", "per_request_cap": "20.01"}, "1.per_request_cap"),
        ({"template": "small_amount", "per_request_cap": None}, "1.per_request_cap"),
        ({"window": [[[[[]]]]]}, "1.window"),
    ],
)
def test_an_invalid_entry_stores_nothing_and_is_named(shop, bad, key):
    with translation.override("en"), pytest.raises(ValidationError) as excinfo:
        strategies_import(
            shop=shop, entries=[entry(name="Good"), entry(**{"name": "Bad one", **bad})]
        )
    assert key in excinfo.value.message_dict, excinfo.value.message_dict
    message = " ".join(excinfo.value.message_dict[key])
    assert message.startswith("entry 1 “")
    assert "Bad one" in message or "name" in bad
    assert not Strategy.objects.exists()
    assert not Product.objects.exists()


def test_an_import_may_not_overfill_a_scenario(shop):
    for _ in range(9):
        make_strategy(shop=shop)
    with pytest.raises(ValidationError) as excinfo:
        strategies_import(shop=shop, entries=[entry(name="tenth"), entry(name="eleventh")])
    assert set(excinfo.value.message_dict) == {"1.scenario"}
    assert Strategy.objects.count() == 9


def test_a_file_that_is_not_a_list_is_refused(shop):
    with pytest.raises(ValidationError):
        strategies_import(shop=shop, entries={"name": "x"})
    with pytest.raises(ValidationError) as excinfo:
        strategies_import(shop=shop, entries=["x"])
    assert set(excinfo.value.message_dict) == {"0"}


def test_the_small_amount_default_cap_survives_in_decimal(shop):
    created = strategies_import(
        shop=shop, entries=[entry(daily_cap=Decimal("500"), per_request_cap=5)]
    )[0]
    assert created.daily_cap == Decimal("500.00") and created.per_request_cap == Decimal("5.00")
    assert zoneinfo.ZoneInfo(shop.timezone)


def test_imports_arrive_inactive_unless_the_status_is_kept(shop, other_shop):
    live = [entry(name="On", status="active"), entry(name="Trying", status="trial")]
    created = strategies_import(shop=shop, entries=live)
    assert {s.status for s in created} == {"inactive"}
    kept = strategies_import(shop=other_shop, entries=live, keep_status=True)
    assert [s.status for s in kept] == ["active", "trial"]


def test_the_small_amount_template_and_its_ceiling_survive_a_round_trip(shop, other_shop):
    strategy_create_from_template(shop=shop, per_request_cap=Decimal("12.00"))
    exported = strategies_export(shop=shop)
    assert exported[0]["template"] == "small_amount"
    assert exported[0]["per_request_cap"] == "12.00"
    copy = strategies_import(shop=other_shop, entries=exported)[0]
    assert copy.template == "small_amount" and copy.per_request_cap == Decimal("12.00")
    # The ceiling holds after import too: a file cannot lift it.
    with translation.override("en"), pytest.raises(ValidationError) as excinfo:
        strategies_import(
            shop=other_shop,
            entries=[{**exported[0], "name": "Another", "per_request_cap": "500.00"}],
        )
    assert "at most 20.00" in " ".join(excinfo.value.message_dict["0.per_request_cap"])
    # template is optional on import (API.md): a 1.0 file without it is a custom strategy.
    without = {k: v for k, v in exported[0].items() if k != "template"} | {"name": "1.0 file"}
    assert strategies_import(shop=other_shop, entries=[without])[0].template == ""


def test_a_validity_date_is_bounded_in_the_shops_own_time(db):
    la = make_shop(code="la", timezone="America/Los_Angeles")
    # 2099-12-31 23:59 in Los Angeles is already 2100 in Shanghai: fine for this shop.
    last = entry(valid_until="2099-12-31T23:59:59-08:00")
    stored = strategies_import(shop=la, entries=[last])[0]
    stored.refresh_from_db()
    assert stored.valid_until == dt.datetime(2100, 1, 1, 7, 59, 59, tzinfo=dt.UTC)
    with translation.override("en"), pytest.raises(ValidationError) as excinfo:
        strategies_import(shop=la, entries=[entry(valid_until="2100-01-01T00:00:00-08:00")])
    assert "2000-01-01 and 2099-12-31" in " ".join(excinfo.value.message_dict["0.valid_until"])


def test_every_error_is_in_the_interface_language(shop):
    bad = [entry(name="坏的", daily_cap="1.001", colour="red", window={"start": "x", "end": 1})]
    with translation.override("zh-hans"), pytest.raises(ValidationError) as excinfo:
        strategies_import(shop=shop, entries=bad)
    errors = excinfo.value.message_dict
    assert set(errors) == {"0.daily_cap", "0.colour", "0.window.start", "0.window.end"}
    text = " ".join(m for messages in errors.values() for m in messages)
    assert "第 0 项" in text and "坏的" in text
    for english in ("Unknown key", "decimal places", "time of day", "Give a text", "Input"):
        assert english not in text


def test_the_summary_says_they_are_inactive_in_singular_and_plural(shop):
    with translation.override("en"):
        one = strategies_import_summary(count=1, shop=shop, kept_status=False)
        many = strategies_import_summary(count=19, shop=shop, kept_status=False)
        kept = strategies_import_summary(count=2, shop=shop, kept_status=True)
    assert one == "1 strategy imported into shop-a, inactive: switch it on after checking."
    assert many == (
        "19 strategies imported into shop-a, all inactive: switch them on after checking."
    )
    assert "with the statuses the file gives" in kept
    with translation.override("zh-hans"):
        chinese = strategies_import_summary(count=19, shop=shop, kept_status=False)
    assert "19" in chinese and "未生效" in chinese


def test_archived_strategies_are_not_exported(shop):
    from strategies.services.strategies import strategy_delete
    from tests.factories import make_decision, make_request

    used = make_strategy(shop=shop, name="Used")
    make_decision(request=make_request(shop=shop), strategy=used)
    make_strategy(shop=shop, name="Kept")
    assert strategy_delete(strategy=used) == used
    assert [e["name"] for e in strategies_export(shop=shop)] == ["Kept"]


def test_the_file_format_covers_every_setting_once():
    # The one list of settings (STRATEGY_SETTING_GROUPS) and the file's schema agree: every
    # setting has its place in a file, and every key of the file holds settings (or the
    # scenario, which places the strategy).
    settings = (*STRATEGY_SETTINGS, *STRATEGY_CREATE_SETTINGS)
    assert set(FILE_PATH) == set(settings)
    top_keys = {path.split(".")[0] for path in FILE_PATH.values()} | {"scenario"}
    assert top_keys == set(StrategyEntry.model_fields)
    assert list(ENTRY) == list(StrategyEntry.model_fields)  # API.md's order of keys


def test_a_file_longer_than_any_shop_may_hold_is_refused_at_once(shop):
    with pytest.raises(ValidationError) as excinfo:
        strategies_import(shop=shop, entries=[entry(name=f"S{i}") for i in range(51)])
    assert set(excinfo.value.message_dict) == {"file"}
    assert not Strategy.objects.exists()
