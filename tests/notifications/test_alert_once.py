"""RELIABILITY 15 (the claim): however many callers and replays, one alert per strategy, level
and shop-local day; only the winner creates the notice and the deliveries."""

import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from django.db import connection

from notifications import tasks
from notifications.models import Alert, Delivery, Notice
from notifications.services import alerts_check_ledger
from tests.factories import make_ledger, make_shop, make_strategy

CALLERS = 100
THREADS = 20  # the shared PostgreSQL allows 100 connections in all


def _alerting_shop(**fields):
    fields.setdefault("phone", "13800000000")
    fields.setdefault("alert_email", "alerts@shop.example")
    return make_shop(**fields)


@pytest.mark.django_db(transaction=True)
def test_it_raises_exactly_one_alert_for_100_concurrent_callers(published):
    shop = _alerting_shop()
    strategy = make_strategy(shop=shop, daily_cap=Decimal("1000.00"))
    ledger = make_ledger(strategy=strategy, consumed="960.00", approved_count=96)
    barrier = threading.Barrier(THREADS)

    def caller(calls: int) -> int:
        try:
            barrier.wait(timeout=10)
            return sum(len(alerts_check_ledger(ledger_id=ledger.pk)) for _ in range(calls))
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        won = sum(pool.map(caller, [CALLERS // THREADS] * THREADS))

    assert won == 1
    alert = Alert.objects.get()
    assert (alert.level, alert.consumed, alert.cap) == (95, Decimal("960.00"), Decimal("1000.00"))
    assert Notice.objects.filter(alert=alert).count() == 1
    assert sorted(Delivery.objects.values_list("channel", "recipient")) == [
        ("email", "alerts@shop.example"),
        ("sms", "13800000000"),
    ]
    # One send per delivery was published, and only after the winner committed.
    assert sorted(args[0] for args, _ in published) == sorted(
        Delivery.objects.values_list("pk", flat=True)
    )


@pytest.mark.django_db
def test_it_replays_the_task_without_a_second_alert(published, django_capture_on_commit_callbacks):
    shop = _alerting_shop()
    strategy = make_strategy(shop=shop, daily_cap=Decimal("1000.00"))
    ledger = make_ledger(strategy=strategy, consumed="950.00")

    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.check_ledger_alerts.run(ledger.pk) == 1
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.check_ledger_alerts.run(ledger.pk) == 0
        assert tasks.check_ledger_alerts.run(ledger.pk) == 0

    assert Alert.objects.count() == 1
    assert Notice.objects.count() == 1
    assert Delivery.objects.count() == 2
    assert len(published) == 2


@pytest.mark.django_db
def test_it_raises_nothing_below_95_percent():
    strategy = make_strategy(shop=_alerting_shop(), daily_cap=Decimal("1000.00"))
    ledger = make_ledger(strategy=strategy, consumed="949.99")

    assert alerts_check_ledger(ledger_id=ledger.pk) == []
    assert not Alert.objects.exists()
    assert not Notice.objects.exists()


@pytest.mark.django_db
def test_it_alerts_once_more_when_the_cap_is_reached():
    strategy = make_strategy(shop=_alerting_shop(), daily_cap=Decimal("1000.00"))
    ledger = make_ledger(strategy=strategy, consumed="960.00")
    assert [a.level for a in alerts_check_ledger(ledger_id=ledger.pk)] == [95]

    ledger.consumed = Decimal("1000.00")
    ledger.save()
    assert [a.level for a in alerts_check_ledger(ledger_id=ledger.pk)] == [100]
    assert alerts_check_ledger(ledger_id=ledger.pk) == []

    assert sorted(Alert.objects.values_list("level", flat=True)) == [95, 100]
    assert Notice.objects.count() == 2
    assert Delivery.objects.filter(alert__level=100).count() == 2


@pytest.mark.django_db
def test_it_sends_no_email_where_the_shop_has_no_alert_address():
    shop = _alerting_shop(alert_email="")
    ledger = make_ledger(
        strategy=make_strategy(shop=shop, daily_cap=Decimal("100.00")), consumed="99.00"
    )

    alerts_check_ledger(ledger_id=ledger.pk)

    assert list(Delivery.objects.values_list("channel", flat=True)) == ["sms"]
    assert Notice.objects.count() == 1


@pytest.mark.django_db
def test_it_ignores_a_ledger_that_no_longer_exists():
    assert alerts_check_ledger(ledger_id=987654321) == []


@pytest.mark.django_db
def test_it_writes_the_messages_from_the_templates(settings):
    settings.LANGUAGE_CODE = "en"
    shop = _alerting_shop(name="Tea House")
    strategy = make_strategy(shop=shop, name="Small refunds", daily_cap=Decimal("2000.00"))
    ledger = make_ledger(strategy=strategy, consumed="1920.00")

    alerts_check_ledger(ledger_id=ledger.pk)

    notice = Notice.objects.get()
    assert "96.00% of the daily cap used: Small refunds" in notice.title
    assert "1,920.00 of 2,000.00" in notice.body  # one money format (issue 12)
    sms = Delivery.objects.get(channel="sms")
    assert 'Tea House: strategy "Small refunds" has used 96.00%' in sms.body
    email = Delivery.objects.get(channel="email")
    assert email.subject == "96.00% of the daily cap used: Small refunds"
    assert "Hello Tea House," in email.body
    assert "&quot;" not in email.body + sms.body


def test_the_tasks_are_registered_under_the_names_other_apps_send():
    from atomsite.celery import app

    app.loader.import_default_modules()
    for name in (
        "notifications.check_ledger_alerts",
        "notifications.send_delivery",
        "notifications.sweep_alerts",
        "notifications.purge_old_attempts",
    ):
        assert name in app.tasks
    from strategies.pipeline.decide import ALERT_TASK

    assert ALERT_TASK == "notifications.check_ledger_alerts"
