"""A transport that raises something other than TransportError (a bug, an unforeseen library
error) is a temporary failure recorded on the attempt; after ATOM_NOTIFY_MAX_ATTEMPTS the
delivery fails for good instead of staying `sending`, re-claimed on every lease expiry."""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from notifications import transports
from notifications.models import Delivery
from notifications.services import alerts_check_ledger, delivery_send
from tests.factories import make_ledger, make_shop, make_strategy


@pytest.fixture
def delivery():
    strategy = make_strategy(shop=make_shop(phone="1"), daily_cap=Decimal("100.00"))
    alerts_check_ledger(ledger_id=make_ledger(strategy=strategy, consumed="96.00").pk)
    return Delivery.objects.get()


@pytest.fixture
def crashing_sms(monkeypatch):
    def boom(self, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(transports.ConsoleSms, "notify", boom)


@pytest.mark.django_db
def test_an_unexpected_error_is_a_temporary_failure_then_fails_for_good(
    delivery, crashing_sms, settings
):
    settings.ATOM_NOTIFY_MAX_ATTEMPTS = 2
    now = timezone.now()

    first = delivery_send(delivery_id=delivery.pk, now=now)
    assert (first.status, first.claimed) == ("pending", True) and first.retry_in
    delivery.refresh_from_db()
    assert "RuntimeError: boom" in delivery.last_error
    assert delivery.lease_until is None

    assert delivery_send(delivery_id=delivery.pk, now=now + dt.timedelta(hours=1)).status == (
        "failed"
    )
    assert delivery_send(delivery_id=delivery.pk, now=now + dt.timedelta(hours=2)).claimed is False
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("failed", 2)
    assert "gave up after 2 attempts" in delivery.last_error
    attempts = list(delivery.attempt_log.order_by("at").values_list("ok", "permanent", "error"))
    assert [(ok, permanent) for ok, permanent, _ in attempts] == [(False, False), (False, True)]
    assert all("RuntimeError: boom" in error for _, _, error in attempts)


@pytest.mark.django_db
def test_a_delivery_whose_workers_keep_dying_fails_once_its_attempts_are_used_up(
    delivery, settings
):
    settings.ATOM_NOTIFY_MAX_ATTEMPTS = 3
    now = timezone.now()
    # The third worker claimed it and was killed: no result, the lease expired.
    Delivery.objects.filter(pk=delivery.pk).update(
        status="sending", lease_until=now - dt.timedelta(seconds=1), attempts=3
    )

    result = delivery_send(delivery_id=delivery.pk, now=now)

    assert (result.status, result.claimed) == ("failed", False)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.lease_until) == ("failed", 3, None)
    assert "gave up after 3 attempts" in delivery.last_error
