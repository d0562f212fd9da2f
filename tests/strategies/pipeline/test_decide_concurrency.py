"""Concurrent deciders on real PostgreSQL: the cap, races on one request, the per-buyer limit
(RELIABILITY.md 1, 2, 4, 12). Each thread has its own connection, closed after."""

import random
import threading
from decimal import Decimal

import pytest
from django.db import connection, transaction

from strategies.models import AfterSaleRequest, DailyLedger, Decision
from strategies.pipeline import decide as decisions
from strategies.pipeline.decide import request_decide
from strategies.pipeline.ledger import ledger_for_day, ledger_reserve
from tests.concurrency import run_concurrently
from tests.factories import make_order, make_request, make_shop, make_strategy
from tests.worker import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("sent")]


def decide(request_id: int) -> Decision:
    return request_decide(request_id=request_id)


def test_50_deciders_never_pass_the_cap_and_fill_it_to_within_one_request():
    """RELIABILITY.md 1."""
    shop = make_shop()
    strategy = make_strategy(shop=shop, status="active", daily_cap=Decimal("50000.00"))
    rng = random.Random(7)
    # One order each: requests on one order are decided in turn (its row lock), and the point
    # here is deciders racing for the same ledger row.
    requests = [
        make_request(
            shop=shop,
            order=make_order(shop=shop, items=[("P1001", 1, "1000.00")]),
            amount=f"{rng.randint(30000, 90000) / 100:.2f}",
        )
        for _ in range(120)
    ]
    assert sum(r.amount for r in requests) > strategy.daily_cap  # the cap will be crossed
    results = run_concurrently(decide, [r.pk for r in requests], threads=50)
    assert len(results) == 120
    approved = Decision.objects.filter(outcome="approved")
    approved_sum = sum(d.amount for d in approved)
    ledger = DailyLedger.objects.get(strategy=strategy)
    assert approved_sum == ledger.consumed <= strategy.daily_cap
    assert ledger.approved_count == approved.count()
    refused = Decision.objects.filter(outcome="manual_review")
    assert refused.exists()
    for decision in refused:
        # Refused only because it did not fit: the cap is filled to within its amount.
        assert [e["code"] for e in decision.explanations] == ["daily_cap_reached"]
        assert ledger.consumed + decision.amount > strategy.daily_cap
    assert AfterSaleRequest.objects.filter(status="received").count() == 0


def test_100_left_and_two_concurrent_100_requests_approve_exactly_one():
    """RELIABILITY.md 2."""
    shop = make_shop()
    strategy = make_strategy(shop=shop, status="active", daily_cap=Decimal("1000.00"))
    order = make_order(shop=shop, items=[("P1001", 1, "1000.00")])
    ledger = ledger_for_day(strategy=strategy, day=decisions.shop_today(shop=shop))
    assert ledger_reserve(ledger_id=ledger.pk, amount=Decimal("900.00"), cap=strategy.daily_cap)
    pair = [make_request(shop=shop, order=order, amount="100.00").pk for _ in range(2)]
    results = run_concurrently(decide, pair, threads=2)
    assert sorted(d.outcome for d in results) == ["approved", "manual_review"]
    ledger.refresh_from_db()
    assert ledger.consumed == Decimal("1000.00")


def test_the_same_request_on_two_workers_at_once_is_decided_once_and_the_loser_sees_it():
    """RELIABILITY.md 4 (and 3 at the service level: a replay decides nothing new)."""
    shop = make_shop()
    make_strategy(shop=shop, status="active")
    for _ in range(5):
        request = make_request(shop=shop)
        results = run_concurrently(decide, [request.pk] * 4, threads=4)
        assert {d.pk for d in results} == {Decision.objects.get(request=request).pk}
        assert {d.outcome for d in results} == {"approved"}
    ledger = DailyLedger.objects.get()
    assert (ledger.consumed, ledger.approved_count) == (Decimal("9.90") * 5, 5)


def waiting_on_locks() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


def decide_claiming_execution(request_id: int) -> Decision:
    """As the deciders and the Celery task do: the approval inserted with its attempt claimed."""
    decided = decisions.request_decide_claiming(
        request_id=request_id, enqueue_execution=False, claim_execution=True
    )
    assert decided.execution is not None
    return decided.decision


@pytest.mark.parametrize("decider", [decide, decide_claiming_execution])
def test_a_lost_race_for_the_last_room_passes_to_the_next_strategy(caplog, decider):
    shop = make_shop()
    first = make_strategy(shop=shop, status="active", daily_cap=Decimal("100.00"))
    second = make_strategy(shop=shop, status="active")
    ledger = ledger_for_day(strategy=first, day=decisions.shop_today(shop=shop))
    request = make_request(shop=shop, amount="9.90")
    reserved, go = threading.Event(), threading.Event()

    def rival() -> None:
        # Another worker reserves the last room and commits while our decider waits on the row.
        try:
            with transaction.atomic():
                ledger_reserve(ledger_id=ledger.pk, amount=Decimal("95.00"), cap=first.daily_cap)
                reserved.set()
                go.wait(10)
        finally:
            connection.close()

    thread = threading.Thread(target=rival)
    thread.start()
    assert reserved.wait(10)
    result: list[Decision] = []
    deciding = threading.Thread(target=lambda: result.append(decider(request.pk)))
    deciding.start()
    # The decider read 0 consumed and now waits on the locked ledger row.
    wait_until(lambda: waiting_on_locks() == 1, timeout=10)
    go.set()
    thread.join(10)
    deciding.join(10)
    [decision] = result
    assert decision.strategy_id == second.pk
    assert [e["code"] for e in decision.explanations] == ["daily_cap_reached"]
    ledger.refresh_from_db()
    assert ledger.consumed == Decimal("95.00")
    stored = Decision.objects.get(pk=decision.pk)
    assert stored.ledger.strategy_id == second.pk and stored.ledger.consumed == Decimal("9.90")
    claimed = decider is decide_claiming_execution
    assert stored.execution_attempts == (1 if claimed else 0)
    assert (stored.execution_lease_until is not None) is claimed
    assert f"strategy {first.pk} full for request {request.pk}" in caplog.text


def test_concurrent_requests_of_one_buyer_never_pass_the_per_buyer_limit():
    """RELIABILITY.md 12."""
    shop = make_shop()
    make_strategy(shop=shop, status="active", max_per_buyer_30d=3)
    greedy = [make_request(shop=shop, buyer_id="GREEDY").pk for _ in range(12)]
    others = [make_request(shop=shop, buyer_id=f"B{i}").pk for i in range(6)]
    run_concurrently(decide, greedy + others, threads=18)
    assert Decision.objects.filter(buyer_id="GREEDY", outcome="approved").count() == 3
    refused = Decision.objects.filter(buyer_id="GREEDY", outcome="manual_review")
    assert refused.count() == 9
    assert {e["code"] for d in refused for e in d.explanations} == {"buyer_limit_reached"}
    assert Decision.objects.exclude(buyer_id="GREEDY").filter(outcome="approved").count() == 6
