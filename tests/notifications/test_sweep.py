"""The beat sweep heals lost messages: a ledger over the line without its alert, a delivery
whose send was never published or whose worker died."""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from notifications import tasks
from notifications.models import Alert, Delivery, DeliveryAttempt
from notifications.services import alerts_check_ledger, alerts_sweep, delivery_attempts_purge
from strategies.models import DailyLedger
from strategies.selectors import shop_today
from tests.factories import make_ledger, make_shop, make_strategy


@pytest.mark.django_db
def test_it_raises_an_alert_whose_message_was_lost():
    strategy = make_strategy(shop=make_shop(phone="1"), daily_cap=Decimal("100.00"))
    make_ledger(strategy=strategy, consumed="95.00")

    assert tasks.sweep_alerts.run()["ledgers_checked"] == 1
    assert tasks.sweep_alerts.run()["ledgers_checked"] == 0
    assert Alert.objects.get().level == 95


@pytest.mark.django_db
def test_it_leaves_quiet_ledgers_and_older_days_alone():
    shop = make_shop(phone="1")
    today = shop_today(shop=shop)
    make_ledger(
        strategy=make_strategy(shop=shop, daily_cap=Decimal("100")),
        day=today - dt.timedelta(days=2),
        consumed="99.00",
    )
    make_ledger(strategy=make_strategy(shop=shop, daily_cap=Decimal("100")), consumed="94.99")
    make_ledger(
        strategy=make_strategy(shop=shop, daily_cap=Decimal("100")),
        day=today - dt.timedelta(days=1),
        consumed="94.99",
    )

    assert alerts_sweep() == {"ledgers_checked": 0, "deliveries_enqueued": 0}
    assert not Alert.objects.exists()


@pytest.mark.django_db
def test_it_raises_yesterdays_alert_lost_just_before_midnight():
    shop = make_shop(phone="1", timezone="Asia/Shanghai")
    strategy = make_strategy(shop=shop, daily_cap=Decimal("100.00"))
    # Crossed 95% at 23:59:50 Shanghai on 10 March; the alert task was lost.
    make_ledger(strategy=strategy, day=dt.date(2026, 3, 10), consumed="96.00")
    just_after = dt.datetime(2026, 3, 10, 16, 0, 30, tzinfo=dt.UTC)  # 00:00:30 on the 11th
    late_beat = dt.datetime(2026, 3, 11, 15, 59, 0, tzinfo=dt.UTC)  # 23:59 on the 11th

    assert alerts_sweep(now=just_after)["ledgers_checked"] == 1
    assert alerts_sweep(now=late_beat)["ledgers_checked"] == 0
    alert = Alert.objects.get()
    assert (alert.level, alert.day) == (95, dt.date(2026, 3, 10))
    assert alert.notice.body


@pytest.mark.django_db
def test_the_grace_window_is_one_day():
    shop = make_shop(phone="1", timezone="America/Los_Angeles")
    strategy = make_strategy(shop=shop, daily_cap=Decimal("100.00"))
    make_ledger(strategy=strategy, day=dt.date(2026, 3, 10), consumed="96.00")
    # 00:00:30 on 12 March in Los Angeles (PDT since the 8th, UTC-7).
    two_days_on = dt.datetime(2026, 3, 12, 7, 0, 30, tzinfo=dt.UTC)

    assert alerts_sweep(now=two_days_on)["ledgers_checked"] == 0
    assert not Alert.objects.exists()


@pytest.mark.django_db
def test_it_raises_the_100_alert_of_a_ledger_refused_for_the_cap():
    strategy = make_strategy(shop=make_shop(phone="1"), daily_cap=Decimal("100.00"))
    # 80.00 approved, then a 30.00 request passed over for the cap: its alert task was lost.
    ledger = make_ledger(strategy=strategy, consumed="80.00")
    DailyLedger.objects.filter(pk=ledger.pk).update(cap_refused_at=timezone.now())

    assert alerts_sweep()["ledgers_checked"] == 1
    assert alerts_sweep()["ledgers_checked"] == 0
    assert sorted(Alert.objects.values_list("level", flat=True)) == [95, 100]
    assert list(Delivery.objects.values_list("alert__level", flat=True)) == [100]


@pytest.mark.django_db
def test_it_re_enqueues_due_and_abandoned_deliveries_only(
    published, django_capture_on_commit_callbacks
):
    strategy = make_strategy(
        shop=make_shop(phone="1", alert_email="a@shop.example"), daily_cap=Decimal("100.00")
    )
    ledger = make_ledger(strategy=strategy, consumed="96.00")
    alerts_check_ledger(ledger_id=ledger.pk)
    DailyLedger.objects.filter(pk=ledger.pk).update(consumed=Decimal("100.00"))
    alerts_check_ledger(ledger_id=ledger.pk)
    sms95, mail95, sms100, mail100 = Delivery.objects.order_by("alert__level", "channel")
    now = timezone.now()
    Delivery.objects.filter(pk=sms95.pk).update(status="sent")
    Delivery.objects.filter(pk=mail95.pk).update(status="failed")
    Delivery.objects.filter(pk=sms100.pk).update(
        status="sending", lease_until=now - dt.timedelta(seconds=1)
    )
    Delivery.objects.filter(pk=mail100.pk).update(next_attempt_at=now - dt.timedelta(seconds=1))
    published.clear()

    with django_capture_on_commit_callbacks(execute=True):
        assert alerts_sweep(now=now)["deliveries_enqueued"] == 2
    assert sorted(args[0] for args, _ in published) == sorted([sms100.pk, mail100.pk])


@pytest.mark.django_db
def test_it_purges_attempts_older_than_90_days():
    strategy = make_strategy(shop=make_shop(phone="1"), daily_cap=Decimal("100.00"))
    alerts_check_ledger(ledger_id=make_ledger(strategy=strategy, consumed="96.00").pk)
    delivery = Delivery.objects.get()
    now = timezone.now()
    old = DeliveryAttempt.objects.create(delivery=delivery, at=now - dt.timedelta(days=91))
    recent = DeliveryAttempt.objects.create(delivery=delivery, at=now - dt.timedelta(days=89))

    assert delivery_attempts_purge(now=now) == 1
    assert list(DeliveryAttempt.objects.values_list("pk", flat=True)) == [recent.pk]
    assert old.pk != recent.pk
    assert tasks.purge_old_attempts.run() == 0
