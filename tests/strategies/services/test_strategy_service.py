"""The strategy services: every rule the database cannot hold, with field keys."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from strategies.models import DailyLedger, Shop, Strategy
from strategies.services.shops import shop_create
from strategies.services.strategies import (
    strategies_move,
    strategies_reorder,
    strategy_create,
    strategy_create_from_template,
    strategy_delete,
    strategy_set_status,
    strategy_update,
)
from tests.factories import make_product, make_strategy

pytestmark = pytest.mark.django_db


def _errors(excinfo: pytest.ExceptionInfo) -> set[str]:
    return set(excinfo.value.message_dict)


def test_it_creates_inactive_strategies_at_the_end_of_their_scenario(shop):
    first = strategy_create(shop=shop, scenario="post_shipment_refund", name="A")
    second = strategy_create(shop=shop, scenario="post_shipment_refund", name="B")
    other = strategy_create(shop=shop, scenario="pre_shipment_refund", name="C")
    assert (first.position, second.position, other.position) == (1, 2, 1)
    assert first.status == "inactive"
    assert first.daily_cap == Decimal("50000.00")


def test_it_refuses_an_eleventh_strategy_in_a_scenario(shop):
    for i in range(10):
        strategy_create(shop=shop, scenario="post_shipment_refund", name=f"S{i}")
    with pytest.raises(ValidationError) as excinfo:
        strategy_create(shop=shop, scenario="post_shipment_refund", name="S11")
    assert _errors(excinfo) == {"scenario"}
    assert Strategy.objects.filter(shop=shop).count() == 10
    # Other scenarios and shops have their own room.
    strategy_create(shop=shop, scenario="pre_shipment_refund", name="other scenario")


def test_it_refuses_products_of_another_shop(shop, other_shop):
    foreign = make_product(shop=other_shop, product_id="P9")
    with pytest.raises(ValidationError) as excinfo:
        strategy_create(shop=shop, scenario="post_shipment_refund", name="X", products=[foreign])
    assert _errors(excinfo) == {"products"}
    assert not Strategy.objects.exists()


def test_it_sets_the_shops_products(shop):
    mine = make_product(shop=shop, product_id="P1")
    strategy = strategy_create(
        shop=shop, scenario="post_shipment_refund", name="X", products=[mine]
    )
    assert list(strategy.products.all()) == [mine]


def test_it_refuses_products_where_the_scenario_has_none(shop):
    mine = make_product(shop=shop, product_id="P1")
    with pytest.raises(ValidationError) as excinfo:
        strategy_create(shop=shop, scenario="tagged_refund_no_return", name="X", products=[mine])
    assert _errors(excinfo) == {"products"}


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"daily_cap": Decimal("100.00"), "per_request_cap": Decimal("100.01")}, "per_request_cap"),
        ({"daily_cap": Decimal("0.00")}, "daily_cap"),
        ({"per_request_cap": Decimal("-1.00")}, "per_request_cap"),
        ({"window_start": dt.time(8), "window_end": dt.time(8)}, "window_end"),
        ({"window_start": dt.time(8)}, "window_end"),
        ({"shipped_min_days": 5, "shipped_max_days": 2}, "shipped_max_days"),
        ({"received_min_days": 5, "received_max_days": 2}, "received_max_days"),
        ({"reasons": ["no_longer_needed", "because"]}, "reasons"),
        ({"max_per_buyer_30d": 0}, "max_per_buyer_30d"),
        ({"max_hours_since_payment": 0}, "max_hours_since_payment"),
        ({"covers_shipped": False, "covers_received": False}, "covers_received"),
        ({"status": "paused"}, "status"),
        ({"name": ""}, "name"),
        ({"daily_cap": Decimal("1.001")}, "daily_cap"),
        ({"template": "small_amount"}, "per_request_cap"),
        ({"template": "small_amount", "per_request_cap": Decimal("20.01")}, "per_request_cap"),
    ],
)
def test_it_gives_a_field_error_for_bad_settings(shop, fields, field):
    fields = {"name": "X", **fields}
    with pytest.raises(ValidationError) as excinfo:
        strategy_create(shop=shop, scenario="post_shipment_refund", **fields)
    assert field in _errors(excinfo)
    assert not Strategy.objects.exists()


def test_it_refuses_a_validity_that_ends_before_it_starts(shop):
    now = timezone.now()
    with pytest.raises(ValidationError) as excinfo:
        strategy_create(
            shop=shop, scenario="post_shipment_refund", name="X", valid_from=now, valid_until=now
        )
    assert _errors(excinfo) == {"valid_until"}


def test_a_window_may_cross_midnight(shop):
    strategy = strategy_create(
        shop=shop,
        scenario="post_shipment_refund",
        name="Night",
        window_start=dt.time(22),
        window_end=dt.time(8),
    )
    assert strategy.window_start > strategy.window_end


def test_the_small_amount_template_has_the_ready_made_settings(shop):
    strategy = strategy_create_from_template(shop=shop)
    assert strategy.scenario == "post_shipment_refund"
    assert strategy.template == "small_amount"
    assert strategy.status == "inactive"
    assert strategy.per_request_cap == Decimal("10.00")
    assert strategy.daily_cap == Decimal("100000.00")
    assert strategy.covers_shipped and strategy.covers_received
    assert strategy.risk_control is True
    assert strategy.products.count() == 0


def test_the_small_amount_template_allows_20_and_never_more(shop):
    assert strategy_create_from_template(shop=shop, per_request_cap=Decimal("20.00"))
    with pytest.raises(ValidationError) as excinfo:
        strategy_create_from_template(shop=shop, per_request_cap=Decimal("20.01"))
    assert _errors(excinfo) == {"per_request_cap"}
    strategy = Strategy.objects.get()
    with pytest.raises(ValidationError):
        strategy_update(strategy=strategy, per_request_cap=Decimal("20.01"))
    with pytest.raises(ValidationError):
        strategy_update(strategy=strategy, per_request_cap=None)
    strategy.refresh_from_db()
    assert strategy.per_request_cap == Decimal("20.00")


def test_update_changes_settings_and_keeps_the_rules(shop):
    strategy = strategy_create(shop=shop, scenario="post_shipment_refund", name="X")
    strategy_update(strategy=strategy, name="Y", per_request_cap=Decimal("30.00"))
    strategy.refresh_from_db()
    assert (strategy.name, strategy.per_request_cap) == ("Y", Decimal("30.00"))
    with pytest.raises(ValidationError) as excinfo:
        strategy_update(strategy=strategy, position=5)
    assert _errors(excinfo) == {"position"}


def test_set_status_is_harmless_when_repeated(shop):
    a = make_strategy(shop=shop)
    b = make_strategy(shop=shop)
    assert strategy_set_status(strategies=[a, b], status="active") == 2
    assert strategy_set_status(strategies=[a, b], status="active") == 0
    assert set(Strategy.objects.values_list("status", flat=True)) == {"active"}
    assert a.history.count() == 2  # created, activated: the repeat wrote nothing
    with pytest.raises(ValidationError):
        strategy_set_status(strategies=[a], status="on")


def test_delete_closes_the_gap(shop):
    a, b, c = (make_strategy(shop=shop) for _ in range(3))
    DailyLedger.objects.create(shop=shop, strategy=b, day=dt.date(2026, 1, 1))
    strategy_delete(strategy=b)
    assert list(Strategy.objects.order_by("position").values_list("id", "position")) == [
        (a.id, 1),
        (c.id, 2),
    ]
    # b has a ledger, a money record: it is archived, not deleted.
    assert Strategy.all_objects.get(pk=b.pk).archived_at is not None


def test_reorder_renumbers_one_to_n(shop):
    a, b, c = (make_strategy(shop=shop, position=p) for p in (3, 3, 7))
    strategies_reorder(shop=shop, scenario="post_shipment_refund", ordered_ids=[c.id, a.id, b.id])
    assert list(Strategy.objects.order_by("position").values_list("id", "position")) == [
        (c.id, 1),
        (a.id, 2),
        (b.id, 3),
    ]


def test_reorder_refuses_ids_of_another_shop_or_scenario_and_changes_nothing(shop, other_shop):
    a, b = make_strategy(shop=shop), make_strategy(shop=shop)
    foreign = make_strategy(shop=other_shop)
    elsewhere = make_strategy(shop=shop, scenario="pre_shipment_refund")
    for bad in ([b.id, foreign.id, a.id], [b.id, elsewhere.id, a.id]):
        with pytest.raises(PermissionDenied):
            strategies_reorder(shop=shop, scenario="post_shipment_refund", ordered_ids=bad)
    with pytest.raises(ValidationError):
        strategies_reorder(shop=shop, scenario="post_shipment_refund", ordered_ids=[b.id])
    with pytest.raises(ValidationError):
        strategies_reorder(shop=shop, scenario="post_shipment_refund", ordered_ids=[b.id, b.id])
    assert list(
        Strategy.objects.filter(shop=shop, scenario="post_shipment_refund")
        .order_by("position")
        .values_list("id", flat=True)
    ) == [a.id, b.id]
    assert Strategy.objects.get(pk=foreign.pk).position == 1


def test_move_applies_a_drag_and_renumbers(shop):
    a, b, c, d = (make_strategy(shop=shop) for _ in range(4))
    # Drag d to the top: the library posts the rows from the top to d's old place.
    strategies_move(
        shop=shop,
        scenario="post_shipment_refund",
        moves={str(d.id): 1, str(a.id): 2, str(b.id): 3, str(c.id): 4},
    )
    assert list(Strategy.objects.order_by("position").values_list("id", flat=True)) == [
        d.id,
        a.id,
        b.id,
        c.id,
    ]
    # A partial drag (c above b) leaves the rest in place.
    strategies_move(shop=shop, scenario="post_shipment_refund", moves={c.id: 3, b.id: 4})
    assert list(Strategy.objects.order_by("position").values_list("id", "position")) == [
        (d.id, 1),
        (a.id, 2),
        (c.id, 3),
        (b.id, 4),
    ]


def test_shop_create_generates_a_secret(db):
    _shop, secret = shop_create(
        code="new-shop", name="New", timezone="Asia/Shanghai", phone="", email=""
    )
    assert len(secret) >= 40
    assert Shop.objects.get(code="new-shop").api_secret == secret
    given = "s3cret-given-0123456789abcdefghij"  # 32 characters, the least API.md accepts
    _other, other_secret = shop_create(code="given", name="Given", secret=given)
    assert other_secret == given
    with pytest.raises(ValidationError) as excinfo:
        shop_create(code="bad", name="Bad", timezone="Mars/Olympus")
    assert set(excinfo.value.message_dict) == {"timezone"}
