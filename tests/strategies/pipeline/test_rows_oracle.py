"""The plain-SQL loaders of ``strategies.pipeline.rows`` read exactly what the ORM reads of the
same rows (``tests/strategies/orm_oracle.py``), over generated data: several shops in zones
from UTC-10 to UTC+14, strategies of every scenario and status with and without products,
windows, reasons and caps, several history rows, ledgers today and yesterday, orders of up to
a dozen items (a product twice, or none), approvals counted and released.
"""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

import pytest

from strategies.matching import scenarios_for
from strategies.models import (
    SCENARIO_ORDER,
    AfterSaleRequest,
    AfterSaleType,
    DailyLedger,
    Decision,
    OrderStatus,
    Reason,
    Shop,
    Strategy,
    StrategyStatus,
)
from strategies.pipeline.rows import request_lock_and_load, shop_by_code, strategies_load
from strategies.selectors import shop_today
from strategies.services.shops import shop_secret_rotate
from tests.factories import make_order, make_product, make_request, make_shop, make_strategy
from tests.strategies.orm_oracle import oracle_request, oracle_strategies

# Just after midnight UTC: the shops' local days differ (Honolulu is still on the 21st,
# Kiritimati already on the 23rd).
NOW = dt.datetime(2026, 11, 22, 0, 30, tzinfo=dt.UTC)
ZONES = ("Pacific/Honolulu", "UTC", "Asia/Shanghai", "Pacific/Kiritimati", "America/New_York")


def money(rng: random.Random, low: int, high: int) -> Decimal:
    return Decimal(rng.randint(low * 100, high * 100)) / 100


def build_shop(rng: random.Random, index: int) -> Shop:
    shop = make_shop(code=f"oracle-{index}", timezone=ZONES[index % len(ZONES)])
    zone = shop.zone
    today = shop_today(shop=shop, now=NOW)
    products = [make_product(shop=shop, product_id=f"P{n}") for n in range(rng.randint(1, 8))]
    for n in range(rng.randint(2, 9)):
        # The first strategy of a shop holds the rarer cases, so every world has them.
        first = n == 0
        # At least one order status covered (the database's own rule), either or both.
        covers_shipped = rng.random() < 0.7
        covers_received = rng.random() < 0.7 or not covers_shipped
        strategy = make_strategy(
            shop=shop,
            scenario=rng.choice(SCENARIO_ORDER),
            status=rng.choice(StrategyStatus.values),
            name=f"S{index}-{n}",
            valid_from=rng.choice([None, NOW - dt.timedelta(days=3)]),
            valid_until=rng.choice([None, NOW + dt.timedelta(days=3, minutes=7)]),
            covers_shipped=covers_shipped,
            covers_received=covers_received,
            shipped_max_days=rng.choice([None, 3, 10]),
            received_min_days=rng.choice([None, 0, 1]),
            daily_cap=money(rng, 50, 5000),
            per_request_cap=rng.choice([None, Decimal("10.00"), Decimal("49.99")]),
            max_hours_since_payment=rng.choice([None, 24, 720]),
            reasons=rng.sample(Reason.values, rng.randint(0, 3)),
            risk_control=rng.random() < 0.5,
            max_per_buyer_30d=5 if first else rng.choice([None, None, 1]),
            **(
                {"window_start": dt.time(22), "window_end": dt.time(8, 30)}
                if first or rng.random() < 0.3
                else {}
            ),
        )
        if first or rng.random() < 0.4:
            strategy.products.add(*rng.sample(products, rng.randint(1, len(products))))
        for _ in range(rng.randint(0, 2)):  # more history rows: the latest is the version
            strategy.remark = f"edited {rng.random():.6f}"
            strategy.save()
        for day in (today, today - dt.timedelta(days=1)):
            if first or rng.random() < 0.5:
                DailyLedger.objects.create(
                    shop=shop,
                    strategy=strategy,
                    day=day,
                    consumed=money(rng, 0, 50),
                    approved_count=rng.randint(0, 9),
                    cap_refused_at=NOW if first else rng.choice([None, NOW]),
                )
    for n in range(rng.randint(2, 4)):
        status = rng.choice(OrderStatus.values)
        paid = NOW.astimezone(zone) - dt.timedelta(days=rng.randint(1, 9), minutes=n)
        received = status in ("received", "completed")
        order = make_order(
            shop=shop,
            order_id=f"OD-{index}-{n}",
            status=status,
            paid_at=paid,
            shipped_at=None if status == "pending_shipment" else paid + dt.timedelta(hours=20),
            received_at=paid + dt.timedelta(days=1) if received else None,
            tags=rng.choice([[], ["refund_no_return"], ["refund_no_return", "vip"]]),
            items=[
                (rng.choice([*(p.product_id for p in products), "X1"]), rng.randint(1, 3), "9.99")
                for _ in range(rng.randint(1, 12))
            ],
        )
        if n == 1:
            order.items.all().delete()  # an order without items: no products, no total
        for m in range(rng.randint(2, 4)):
            request = make_request(
                shop=shop,
                order=order,
                aftersale_id=f"AS-{index}-{n}-{m}",
                amount=str(money(rng, 1, 80)),
                type=rng.choice(AfterSaleType.values),
                reason=rng.choice(Reason.values),
                buyer_id=f"B{rng.randint(1, 3)}",
                applied_at=NOW.astimezone(zone) - dt.timedelta(minutes=rng.randint(0, 600)),
                risk_flag=rng.random() < 0.3,
            )
            # Decided before: an approval counted on the order, one released, a manual review;
            # the last request, if a fourth, is still to decide.
            if m < 3:
                approved = m < 2
                Decision.objects.create(
                    request=request,
                    shop=shop,
                    aftersale_id=request.aftersale_id,
                    order_id=order.order_id,
                    reason=request.reason,
                    outcome="approved" if approved else "manual_review",
                    action="approve_refund" if approved else "",
                    amount=request.amount,
                    buyer_id=request.buyer_id,
                    decided_at=NOW - dt.timedelta(hours=1),
                    released_at=NOW if approved and m == 1 else None,
                )
    return shop


@pytest.fixture(params=range(4), ids=lambda seed: f"seed{seed}")
def world(request, db) -> list[Shop]:
    rng = random.Random(request.param)
    return [build_shop(rng, index) for index in range(4)]


def test_the_request_loader_reads_what_the_orm_reads(world):
    requests = AfterSaleRequest.objects.filter(shop__in=world).order_by("pk")
    assert requests.count() >= 4
    for request in requests:
        assert request_lock_and_load(request_id=request.pk) == oracle_request(request.pk)


def test_the_strategies_loader_reads_what_the_orm_reads(world):
    queries = set()
    for request in AfterSaleRequest.objects.filter(shop__in=world).select_related("shop", "order"):
        today = shop_today(shop=request.shop, now=NOW)
        scenarios = scenarios_for(oracle_request(request.pk).snapshot)
        for chosen in (scenarios, SCENARIO_ORDER, SCENARIO_ORDER[3:4]):
            for day in (today, today - dt.timedelta(days=1)):
                queries.add((request.shop.pk, tuple(chosen), day, request.order.order_id))
    compared = 0
    for shop_id, scenarios, day, order_id in sorted(queries):
        query = {"shop_id": shop_id, "scenarios": scenarios, "day": day, "order_id": order_id}
        loaded = strategies_load(**query)
        assert loaded == oracle_strategies(**query), query
        compared += len(loaded[0])
    assert compared > 0


def test_the_generated_data_covers_what_the_loaders_must_get_right(world):
    """The comparisons above mean something only if the data holds every case."""
    strategies = Strategy.objects.filter(shop__in=world)
    assert strategies.filter(products__isnull=False).exists()
    assert strategies.filter(products__isnull=True).exists()
    assert strategies.filter(window_start__isnull=False).exists()
    assert strategies.filter(max_per_buyer_30d__isnull=False).exists()
    ledgers = DailyLedger.objects.filter(shop__in=world)
    assert ledgers.filter(cap_refused_at__isnull=False).exists()
    assert len({(ledger.shop.timezone, ledger.day) for ledger in ledgers}) > 2
    assert AfterSaleRequest.objects.filter(shop__in=world, order__items__isnull=True).exists()
    decisions = Decision.objects.filter(shop__in=world, outcome="approved")
    assert decisions.filter(released_at__isnull=True).exists()
    assert decisions.filter(released_at__isnull=False).exists()


def test_an_unknown_request_raises_does_not_exist(db):
    with pytest.raises(AfterSaleRequest.DoesNotExist):
        request_lock_and_load(request_id=987654321)


def test_the_apis_shop_is_the_instance_the_orm_gives(db):
    plain = make_shop(code="plain-shop")
    rotated = make_shop(code="rotated-shop")
    shop_secret_rotate(shop=rotated, grace_seconds=3600)  # a previous secret and its deadline
    rotated.refresh_from_db()
    for shop in (plain, rotated):
        fast = shop_by_code(shop.code)
        orm = Shop.objects.filter(code=shop.code).first()
        assert type(fast) is Shop and fast.pk == orm.pk
        for field in Shop._meta.concrete_fields:
            assert getattr(fast, field.attname) == getattr(orm, field.attname), field.name
        assert fast._state.adding is False and fast._state.db == "default"
    assert rotated.api_secret_previous_until is not None
    assert shop_by_code("no-such-shop") is None
