"""RELIABILITY 15 (the sending): a real SMTP server and a real local HTTP server standing in for
the SMS provider receive exactly one message each; a provider failure is retried, a permanent
one is recorded and shown."""

import datetime as dt
import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from notifications import tasks
from notifications.models import Delivery, DeliveryAttempt, Notice
from notifications.services import alerts_check_ledger, delivery_send, retry_delay
from tests.factories import make_ledger, make_shop, make_strategy


def _alert(*, phone="13800000000", email="alerts@shop.example", consumed="960.00"):
    shop = make_shop(phone=phone, alert_email=email, name="Tea House")
    strategy = make_strategy(shop=shop, name="Small refunds", daily_cap=Decimal("1000.00"))
    ledger = make_ledger(strategy=strategy, consumed=consumed)
    (alert,) = alerts_check_ledger(ledger_id=ledger.pk)
    return alert


@pytest.mark.django_db(transaction=True)
def test_it_sends_one_email_and_one_sms_for_100_concurrent_callers_and_replays(
    smtp_server, sms_provider, published
):
    shop = make_shop(phone="13800000000", alert_email="alerts@shop.example", name="Tea House")
    strategy = make_strategy(shop=shop, name="Small refunds", daily_cap=Decimal("1000.00"))
    ledger = make_ledger(strategy=strategy, consumed="960.00")
    barrier = threading.Barrier(20)

    def caller(_: int) -> None:
        try:
            barrier.wait(timeout=10)
            for _ in range(5):
                tasks.check_ledger_alerts.run(ledger.pk)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=20) as pool:
        list(pool.map(caller, range(20)))

    # Every published send runs, each twice (a redelivered message), some at the same moment.
    sends = [args[0] for args, _ in published] * 2
    assert len(sends) == 4

    def sender(delivery_id: int) -> str:
        try:
            return tasks.send_delivery.run(delivery_id)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(sender, sends))

    assert len(smtp_server.handler.messages) == 1
    mail_from, rcpt_tos, content = smtp_server.handler.messages[0]
    assert mail_from == settings.DEFAULT_FROM_EMAIL
    assert rcpt_tos == ["alerts@shop.example"]
    assert "Small refunds" in content

    assert len(sms_provider.received) == 1
    sms = sms_provider.received[0]
    assert sms["authorization"] == "Bearer sms-test-token"
    assert sms["content_type"] == "application/json"
    delivery = Delivery.objects.get(channel="sms")
    assert sms["json"] == {
        "phone": "13800000000",
        "message": delivery.body,
        "idempotency_key": str(delivery.idempotency_key),
    }
    assert set(Delivery.objects.values_list("status", "attempts")) == {("sent", 1)}
    assert DeliveryAttempt.objects.filter(ok=True).count() == 2
    assert Notice.objects.count() == 1


@pytest.mark.django_db
def test_it_retries_a_provider_5xx_and_sends_once(sms_provider, published):
    sms_provider.script = [503]
    alert = _alert(email="")
    delivery = alert.deliveries.get()
    now = timezone.now()

    first = delivery_send(delivery_id=delivery.pk, now=now)
    assert (first.status, first.retry_in) == ("pending", retry_delay(attempts=1))
    # Not due yet: a replayed message does nothing.
    assert delivery_send(delivery_id=delivery.pk, now=now).claimed is False

    later = now + dt.timedelta(seconds=first.retry_in)
    assert delivery_send(delivery_id=delivery.pk, now=later).status == "sent"
    assert delivery_send(delivery_id=delivery.pk, now=later).claimed is False

    assert len(sms_provider.received) == 2
    keys = {r["json"]["idempotency_key"] for r in sms_provider.received}
    assert keys == {str(delivery.idempotency_key)}
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("sent", 2)
    log = list(delivery.attempt_log.values_list("ok", "permanent"))
    assert log == [(False, False), (True, False)]
    assert "503" in delivery.attempt_log.first().error


@pytest.mark.django_db
def test_the_task_schedules_the_retry_with_back_off(sms_provider, published):
    sms_provider.script = [500, 502]
    delivery = _alert(email="").deliveries.get()
    published.clear()

    assert tasks.send_delivery.run(delivery.pk) == "pending"

    assert published == [([delivery.pk], {"countdown": retry_delay(attempts=1)})]
    assert retry_delay(attempts=1) < retry_delay(attempts=2) <= retry_delay(attempts=50) == 600


@pytest.mark.django_db
def test_it_records_a_provider_4xx_as_a_permanent_failure(sms_provider, admin_client):
    sms_provider.script = [400]
    delivery = _alert(email="").deliveries.get()

    result = delivery_send(delivery_id=delivery.pk)
    later = timezone.now() + dt.timedelta(hours=1)
    assert delivery_send(delivery_id=delivery.pk, now=later).claimed is False

    assert result.status == "failed" and result.retry_in is None
    assert len(sms_provider.received) == 1
    delivery.refresh_from_db()
    assert delivery.status == "failed"
    assert "HTTP 400" in delivery.last_error
    assert list(delivery.attempt_log.values_list("ok", "permanent")) == [(False, True)]
    # Shown to the operator: the list marks it failed for good, the detail lists the attempt.
    listing = admin_client.get(
        "/admin/notifications/delivery/", HTTP_ACCEPT_LANGUAGE="en"
    ).content.decode()
    assert "Failed for good" in listing and "HTTP 400" in listing
    detail = admin_client.get(f"/admin/notifications/delivery/{delivery.pk}/change/")
    assert detail.status_code == 200
    assert "HTTP 400" in detail.content.decode()


@pytest.mark.django_db
def test_it_gives_up_after_the_last_temporary_failure(sms_provider, settings):
    settings.ATOM_NOTIFY_MAX_ATTEMPTS = 2
    sms_provider.script = [500, 500, 500]
    delivery = _alert(email="").deliveries.get()
    now = timezone.now()

    assert delivery_send(delivery_id=delivery.pk, now=now).status == "pending"
    final = delivery_send(delivery_id=delivery.pk, now=now + dt.timedelta(hours=1))

    assert final.status == "failed"
    delivery.refresh_from_db()
    assert "gave up after 2 attempts" in delivery.last_error
    assert len(sms_provider.received) == 2


@pytest.mark.django_db
def test_an_unreachable_provider_is_a_temporary_failure(settings):
    from tests.notifications.conftest import free_port

    settings.ATOM_SMS_BACKEND = "http"
    settings.ATOM_SMS_URL = f"http://127.0.0.1:{free_port()}/sms"
    settings.ATOM_SMS_TOKEN = "t"
    delivery = _alert(email="").deliveries.get()

    result = delivery_send(delivery_id=delivery.pk)

    assert result.status == "pending" and result.retry_in
    delivery.refresh_from_db()
    assert "unreachable" in delivery.last_error


@pytest.mark.django_db
def test_an_smtp_5xx_is_permanent(smtp_server):
    smtp_server.handler.reject_rcpt = "550 No such mailbox"
    delivery = _alert(phone="").deliveries.get()

    assert delivery_send(delivery_id=delivery.pk).status == "failed"
    delivery.refresh_from_db()
    assert "550" in delivery.last_error
    assert smtp_server.handler.messages == []


@pytest.mark.django_db
def test_an_smtp_4xx_is_retried(smtp_server):
    smtp_server.handler.reject_rcpt = "451 Try again later"
    delivery = _alert(phone="").deliveries.get()
    now = timezone.now()

    assert delivery_send(delivery_id=delivery.pk, now=now).status == "pending"
    smtp_server.handler.reject_rcpt = None
    assert delivery_send(delivery_id=delivery.pk, now=now + dt.timedelta(hours=1)).status == "sent"
    assert len(smtp_server.handler.messages) == 1


@pytest.mark.django_db
def test_an_smtp_server_that_is_down_is_a_temporary_failure(settings):
    from tests.notifications.conftest import free_port

    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = free_port()
    delivery = _alert(phone="").deliveries.get()

    assert delivery_send(delivery_id=delivery.pk).status == "pending"


@pytest.mark.django_db
def test_a_worker_killed_mid_send_is_retried_after_its_lease(sms_provider, settings):
    delivery = _alert(email="").deliveries.get()
    now = timezone.now()
    # A worker claimed it and died: the delivery stays `sending` with a lease.
    Delivery.objects.filter(pk=delivery.pk).update(
        status="sending", lease_until=now + dt.timedelta(seconds=120), attempts=1
    )

    assert delivery_send(delivery_id=delivery.pk, now=now).claimed is False
    assert sms_provider.received == []
    after = now + dt.timedelta(seconds=121)
    assert delivery_send(delivery_id=delivery.pk, now=after).status == "sent"
    assert len(sms_provider.received) == 1


@pytest.mark.django_db
def test_a_sent_email_is_logged_in_one_readable_line(smtp_server, caplog):
    delivery = _alert(phone="").deliveries.get()
    with caplog.at_level("INFO", logger="notifications.transports"):
        assert delivery_send(delivery_id=delivery.pk).status == "sent"
    [line] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("E-mail to ")]
    assert delivery.recipient in line and delivery.subject in line
