"""RELIABILITY 13 (the alert part): an alert belongs to the shop-local day of its ledger, so the
same strategy alerts again on the next local day, at each shop's own midnight (DST included)."""

import datetime as dt
from decimal import Decimal

import pytest

from notifications.models import Alert
from notifications.services import alerts_check_ledger, alerts_sweep
from strategies.selectors import shop_today
from tests.factories import make_ledger, make_shop, make_strategy

UTC = dt.UTC


def _at(*args: float) -> dt.datetime:
    whole = dt.datetime(*[int(a) for a in args[:6]], tzinfo=UTC)
    return whole + dt.timedelta(seconds=args[6] if len(args) > 6 else 0)


@pytest.mark.django_db
def test_shanghai_days_split_at_16_00_utc():
    shop = make_shop(timezone="Asia/Shanghai", phone="13800000000")
    strategy = make_strategy(shop=shop, daily_cap=Decimal("100.00"))
    before = _at(2024, 5, 1, 15, 59, 59, 0.9)
    after = _at(2024, 5, 1, 16, 0, 0, 0.1)
    day1, day2 = shop_today(shop=shop, now=before), shop_today(shop=shop, now=after)
    assert (day1, day2) == (dt.date(2024, 5, 1), dt.date(2024, 5, 2))

    first = make_ledger(strategy=strategy, day=day1, consumed="96.00")
    assert [a.day for a in alerts_check_ledger(ledger_id=first.pk)] == [day1]
    # The new day starts at 0: nothing to alert until it crosses the line again.
    second = make_ledger(strategy=strategy, day=day2, consumed="0.00")
    assert alerts_check_ledger(ledger_id=second.pk) == []
    second.consumed = Decimal("95.00")
    second.save()
    assert [a.day for a in alerts_check_ledger(ledger_id=second.pk)] == [day2]

    assert sorted(Alert.objects.values_list("day", "level")) == [(day1, 95), (day2, 95)]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("local_midnight_utc", "old_day", "new_day"),
    [
        # Spring forward: 2024-03-10 has 23 hours; 2024-03-11 starts at 07:00 UTC (PDT).
        (_at(2024, 3, 11, 7, 0, 0), dt.date(2024, 3, 10), dt.date(2024, 3, 11)),
        # Fall back: 2024-11-03 has 25 hours; 2024-11-04 starts at 08:00 UTC (PST).
        (_at(2024, 11, 4, 8, 0, 0), dt.date(2024, 11, 3), dt.date(2024, 11, 4)),
    ],
)
def test_los_angeles_rolls_over_at_its_own_midnight(local_midnight_utc, old_day, new_day):
    la = make_shop(timezone="America/Los_Angeles", phone="12025550100")
    shanghai = make_shop(timezone="Asia/Shanghai", phone="13800000000")
    la_strategy = make_strategy(shop=la, daily_cap=Decimal("100.00"))
    sh_strategy = make_strategy(shop=shanghai, daily_cap=Decimal("100.00"))
    before = local_midnight_utc - dt.timedelta(milliseconds=100)
    after = local_midnight_utc + dt.timedelta(milliseconds=100)
    make_ledger(strategy=la_strategy, day=old_day, consumed="97.00")
    make_ledger(strategy=la_strategy, day=new_day, consumed="97.00")
    sh_day = shop_today(shop=shanghai, now=before)
    assert sh_day == shop_today(shop=shanghai, now=after)  # Shanghai's day does not move here
    make_ledger(strategy=sh_strategy, day=sh_day, consumed="99.00")

    alerts_sweep(now=before)
    assert set(Alert.objects.values_list("strategy_id", "day")) == {
        (la_strategy.pk, old_day),
        (sh_strategy.pk, sh_day),
    }

    alerts_sweep(now=after)
    assert set(Alert.objects.values_list("strategy_id", "day")) == {
        (la_strategy.pk, old_day),
        (la_strategy.pk, new_day),
        (sh_strategy.pk, sh_day),
    }
    alerts_sweep(now=after)
    assert Alert.objects.count() == 3
