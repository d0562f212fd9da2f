"""Money records are never deleted (issue 11.6, PRODUCT.md): deleting a strategy that decided
anything archives it; decisions, daily ledgers, alerts and notices stay and still name it."""

from decimal import Decimal

import pytest
from django.db.models import ProtectedError
from django.utils import timezone

from notifications.models import Alert, Notice
from notifications.services import alerts_check_ledger
from strategies.models import MAX_STRATEGIES_PER_SCENARIO, DailyLedger, Decision, Strategy
from strategies.pipeline.decide import request_decide
from strategies.services.strategies import strategy_create, strategy_delete
from tests.factories import make_decision, make_request, make_strategy

pytestmark = pytest.mark.django_db


@pytest.fixture
def alerted(shop):
    """A strategy that approved 9.90 of its 10.00 cap today and raised its 95% alert."""
    strategy = make_strategy(shop=shop, name="Alerted", status="active", daily_cap="10.00")
    decision = make_decision(request=make_request(shop=shop, amount="9.90"), strategy=strategy)
    assert alerts_check_ledger(ledger_id=decision.ledger_id)
    return strategy


def test_a_strategy_that_decided_is_archived_and_its_money_records_stay(shop, owner, alerted):
    after = make_strategy(shop=shop, name="After")
    assert strategy_delete(strategy=alerted, actor=owner) == alerted

    assert not Strategy.objects.filter(pk=alerted.pk).exists()  # gone from lists and counts
    archived = Strategy.all_objects.get(pk=alerted.pk)
    assert archived.archived_at is not None and archived.status == "inactive"
    decision = Decision.objects.get()
    assert decision.strategy == archived and decision.strategy_name == "Alerted"
    assert DailyLedger.objects.get().strategy == archived
    assert Alert.objects.get().strategy == archived
    assert Notice.objects.filter(alert__strategy=archived).count() == 1
    last = archived.history.first()
    assert last.archived_at is not None and last.history_user == owner
    assert Strategy.objects.get(pk=after.pk).position == 1  # the gap is closed
    assert strategy_delete(strategy=archived) is None  # repeat-safe


def test_a_strategy_that_never_decided_is_removed(shop):
    unused = make_strategy(shop=shop)
    assert strategy_delete(strategy=unused) is None
    assert not Strategy.all_objects.filter(pk=unused.pk).exists()
    assert unused.history.first().history_type == "-"


def test_nothing_deletes_a_money_record_through_its_strategy(shop, alerted):
    with pytest.raises(ProtectedError):
        Strategy.objects.get(pk=alerted.pk).delete()
    with pytest.raises(ProtectedError):
        DailyLedger.objects.get().delete()  # an approval names it
    assert Decision.objects.count() == DailyLedger.objects.count() == Alert.objects.count() == 1


def test_an_archived_strategy_leaves_room_in_its_scenario(shop, alerted):
    for _ in range(MAX_STRATEGIES_PER_SCENARIO - 1):
        make_strategy(shop=shop)
    strategy_delete(strategy=alerted)
    strategy_create(shop=shop, scenario="post_shipment_refund", name="The tenth again")
    assert Strategy.objects.filter(shop=shop).count() == MAX_STRATEGIES_PER_SCENARIO


def test_the_matcher_no_longer_sees_an_archived_strategy(shop, sent):
    first = make_strategy(shop=shop, name="Archived first", status="active")
    make_decision(request=make_request(shop=shop), strategy=first)
    # Archived while still active: the archive, not the status, keeps it out.
    Strategy.objects.filter(pk=first.pk).update(archived_at=timezone.now())
    second = make_strategy(shop=shop, name="Second", status="active")
    decision = request_decide(request_id=make_request(shop=shop, amount="5.00").pk)
    assert decision.strategy_id == second.pk
    assert [e["strategy"]["id"] for e in decision.explanations] == []
    assert decision.amount == Decimal("5.00")
