"""The 100% alert: the cap counts as reached once a request was passed over for it, and a jump
over both levels in one check sends one message (the 100% one), never two at once."""

from decimal import Decimal

import pytest
from django.utils import timezone

from notifications.models import Alert, Delivery, Notice
from notifications.services import alerts_check_ledger
from strategies.models import DailyLedger
from tests.factories import make_ledger, make_shop, make_strategy


def _strategy(cap="1000.00"):
    shop = make_shop(phone="13800000000", alert_email="alerts@shop.example")
    return make_strategy(shop=shop, daily_cap=Decimal(cap))


def _refused(ledger):
    DailyLedger.objects.filter(pk=ledger.pk).update(cap_refused_at=timezone.now())


@pytest.mark.django_db
def test_the_cap_is_reached_when_a_request_was_refused_for_it():
    ledger = make_ledger(strategy=_strategy(), consumed="960.00")
    assert [a.level for a in alerts_check_ledger(ledger_id=ledger.pk)] == [95]

    # 40.00 left; a 50.00 request is passed over for the cap: consumption stays at 96%.
    _refused(ledger)

    assert [a.level for a in alerts_check_ledger(ledger_id=ledger.pk)] == [100]
    assert alerts_check_ledger(ledger_id=ledger.pk) == []
    assert Delivery.objects.filter(alert__level=100).count() == 2
    assert Notice.objects.get(alert__level=100).alert.consumed == Decimal("960.00")


@pytest.mark.django_db
def test_a_jump_over_both_levels_sends_only_the_100_message():
    ledger = make_ledger(strategy=_strategy(), consumed="1000.00")

    raised = alerts_check_ledger(ledger_id=ledger.pk)

    assert [a.level for a in raised] == [95, 100]
    assert list(Notice.objects.values_list("alert__level", flat=True)) == [100]
    assert sorted(Delivery.objects.values_list("alert__level", "channel")) == [
        (100, "email"),
        (100, "sms"),
    ]


@pytest.mark.django_db
def test_a_refusal_below_95_percent_claims_95_so_it_never_fires_after_100():
    ledger = make_ledger(strategy=_strategy(), consumed="500.00")
    _refused(ledger)  # a 600.00 request would pass the cap

    assert [a.level for a in alerts_check_ledger(ledger_id=ledger.pk)] == [95, 100]
    # Smaller requests still fit and take the ledger past 95% later that day: no 95% message.
    DailyLedger.objects.filter(pk=ledger.pk).update(consumed=Decimal("980.00"))
    assert alerts_check_ledger(ledger_id=ledger.pk) == []
    assert Alert.objects.count() == 2
    assert set(Delivery.objects.values_list("alert__level", flat=True)) == {100}


@pytest.mark.django_db
def test_it_raises_nothing_without_a_refusal_below_95_percent():
    ledger = make_ledger(strategy=_strategy(), consumed="940.00")

    assert alerts_check_ledger(ledger_id=ledger.pk) == []
    assert not Alert.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("en", "Requests up to 40.00 can still be approved today; larger ones go to a person"),
        ("zh-hans", "40.00"),
    ],
)
def test_the_100_sms_says_what_is_left_and_that_larger_requests_go_to_a_person(
    settings, language, expected
):
    # Issue 12, 14: not "new requests go to manual review": smaller ones still fit.
    settings.LANGUAGE_CODE = language
    ledger = make_ledger(strategy=_strategy(), consumed="960.00")
    alerts_check_ledger(ledger_id=ledger.pk)
    _refused(ledger)
    alerts_check_ledger(ledger_id=ledger.pk)
    sms = Delivery.objects.get(alert__level=100, channel="sms").body
    assert expected in sms
    assert "left" in sms if language == "en" else "人工" in sms
