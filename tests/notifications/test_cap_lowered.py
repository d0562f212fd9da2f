"""RELIABILITY 11 (the alert part): a cap lowered below the day's consumption raises each level
at most once, however many checks and sweeps follow: no alert storm."""

from decimal import Decimal

import pytest

from notifications.models import Alert, Delivery, Notice
from notifications.services import alerts_check_ledger, alerts_sweep
from tests.factories import make_ledger, make_shop, make_strategy


@pytest.mark.django_db
def test_a_cap_lowered_below_consumption_alerts_once_per_level(published):
    shop = make_shop(phone="13800000000", alert_email="alerts@shop.example")
    strategy = make_strategy(shop=shop, daily_cap=Decimal("1000.00"))
    ledger = make_ledger(strategy=strategy, consumed="800.00")
    assert alerts_check_ledger(ledger_id=ledger.pk) == []

    strategy.daily_cap = Decimal("500.00")
    strategy.save()
    raised = alerts_check_ledger(ledger_id=ledger.pk)
    for _ in range(20):
        alerts_check_ledger(ledger_id=ledger.pk)
        alerts_sweep()

    # Both levels are claimed in one jump; only the 100% one is announced (one SMS, one mail).
    assert [(a.level, a.cap) for a in raised] == [(95, Decimal("500.00")), (100, Decimal("500.00"))]
    assert Alert.objects.count() == 2
    assert list(Notice.objects.values_list("alert__level", flat=True)) == [100]
    assert sorted(Delivery.objects.values_list("alert__level", "channel")) == [
        (100, "email"),
        (100, "sms"),
    ]


@pytest.mark.django_db
def test_a_cap_raised_again_does_not_repeat_the_alerts():
    strategy = make_strategy(shop=make_shop(phone="1"), daily_cap=Decimal("100.00"))
    ledger = make_ledger(strategy=strategy, consumed="100.00")
    alerts_check_ledger(ledger_id=ledger.pk)
    strategy.daily_cap = Decimal("104.00")  # 96%: already alerted at 95% today
    strategy.save()

    assert alerts_check_ledger(ledger_id=ledger.pk) == []
    assert Alert.objects.count() == 2
