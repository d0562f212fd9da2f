"""The daily ledger: lazy rows, the conditional reservation, the one-time release, roll-over."""

import datetime as dt
import threading
from decimal import Decimal

import pytest
from django.db import connection

from strategies.models import DailyLedger
from strategies.pipeline.execute import decision_fail
from strategies.pipeline.ledger import (
    ledger_for_day,
    ledger_release,
    ledger_reserve,
    ledgers_roll_over,
)
from tests.factories import make_decision, make_request, make_shop, make_strategy

DAY = dt.date(2026, 11, 22)


def test_it_creates_the_row_of_a_day_once(shop):
    strategy = make_strategy(shop=shop, status="active")
    first = ledger_for_day(strategy=strategy, day=DAY)
    again = ledger_for_day(strategy=strategy, day=DAY)
    assert first.pk == again.pk
    assert first.consumed == Decimal("0.00")
    assert DailyLedger.objects.filter(strategy=strategy).count() == 1


def test_it_reserves_up_to_the_cap_exactly_and_not_a_cent_more(shop):
    strategy = make_strategy(shop=shop, status="active", daily_cap=Decimal("100.00"))
    ledger = ledger_for_day(strategy=strategy, day=DAY)
    cap = strategy.daily_cap
    assert ledger_reserve(ledger_id=ledger.pk, amount=Decimal("60.00"), cap=cap) == Decimal("60.00")
    assert ledger_reserve(ledger_id=ledger.pk, amount=Decimal("40.01"), cap=cap) is None
    assert ledger_reserve(ledger_id=ledger.pk, amount=Decimal("40.00"), cap=cap) == cap
    assert ledger_reserve(ledger_id=ledger.pk, amount=Decimal("0.01"), cap=cap) is None
    ledger.refresh_from_db()
    assert (ledger.consumed, ledger.approved_count) == (Decimal("100.00"), 2)


@pytest.mark.django_db(transaction=True)
def test_it_never_overshoots_under_concurrent_reservations():
    shop = make_shop()
    strategy = make_strategy(shop=shop, status="active", daily_cap=Decimal("1000.00"))
    ledger = ledger_for_day(strategy=strategy, day=DAY)
    start = threading.Barrier(16)
    wins: list[Decimal] = []

    def reserve() -> None:
        try:
            start.wait()
            for _ in range(10):
                if ledger_reserve(
                    ledger_id=ledger.pk, amount=Decimal("7.77"), cap=strategy.daily_cap
                ):
                    wins.append(Decimal("7.77"))
        finally:
            connection.close()

    threads = [threading.Thread(target=reserve) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ledger.refresh_from_db()
    assert ledger.consumed == sum(wins) <= strategy.daily_cap
    assert strategy.daily_cap - ledger.consumed < Decimal("7.77")  # filled
    assert ledger.approved_count == len(wins) == 128


def test_it_releases_a_failed_approval_once(shop):
    strategy = make_strategy(shop=shop, status="active")
    decision = make_decision(request=make_request(shop=shop, amount="30.00"), strategy=strategy)
    ledger = decision.ledger
    assert ledger_release(decision_id=decision.pk) is False  # not failed: keeps its money
    assert decision_fail(decision_id=decision.pk, reason="refused") is True
    assert decision_fail(decision_id=decision.pk, reason="refused") is False
    assert ledger_release(decision_id=decision.pk) is False
    ledger.refresh_from_db()
    assert (ledger.consumed, ledger.approved_count) == (Decimal("0.00"), 0)
    decision.refresh_from_db()
    assert decision.released_at is not None
    assert decision.request.status == "failed"


def test_roll_over_creates_each_shops_local_today_for_active_and_trial_only(db):
    shanghai = make_shop(timezone="Asia/Shanghai")
    la = make_shop(timezone="America/Los_Angeles")
    active = make_strategy(shop=shanghai, status="active")
    trial = make_strategy(shop=la, status="trial")
    make_strategy(shop=la, status="inactive")
    now = dt.datetime(2026, 11, 22, 17, 0, tzinfo=dt.UTC)  # Shanghai 23rd 01:00, LA 22nd 09:00
    assert ledgers_roll_over(now=now) == 2
    assert ledgers_roll_over(now=now) == 0  # repeated: changes nothing
    rows = dict(DailyLedger.objects.values_list("strategy_id", "day"))
    assert rows == {active.pk: dt.date(2026, 11, 23), trial.pk: dt.date(2026, 11, 22)}
