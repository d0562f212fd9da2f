"""Races the decision service must win on real PostgreSQL: a decider is paused inside its
transaction while another decision, or the merchant, acts; the outcome must be the one a serial
order would give."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from decimal import Decimal

import pytest
from django.db import connection

from strategies.models import DailyLedger, Decision, Strategy
from strategies.pipeline import decide as decisions
from strategies.pipeline.decide import request_decide
from tests.factories import make_order, make_request, make_shop, make_strategy

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("sent")]


def pause_inside(
    monkeypatch, name: str, thread_name: str
) -> tuple[threading.Event, threading.Event]:
    """Holds thread ``thread_name`` right after ``decisions.<name>`` returns, inside the decide
    transaction: (reached, release)."""
    reached, release = threading.Event(), threading.Event()
    original = getattr(decisions, name)

    def paused(*args, **kwargs):
        result = original(*args, **kwargs)
        if threading.current_thread().name == thread_name and not reached.is_set():
            reached.set()
            assert release.wait(10)
        return result

    monkeypatch.setattr(decisions, name, paused)
    return reached, release


def start(name: str, work: Callable[[], object]) -> threading.Thread:
    def target() -> None:
        try:
            work()
        finally:
            connection.close()

    thread = threading.Thread(target=target, name=name)
    thread.start()
    return thread


def test_a_buyer_limit_counts_an_approval_racing_in_another_scenario(monkeypatch):
    """RELIABILITY.md 12, across scenarios: B's strategy has no limit, A's allows one."""
    shop = make_shop()
    make_strategy(shop=shop, status="active", scenario="post_shipment_refund", max_per_buyer_30d=1)
    make_strategy(shop=shop, status="active", scenario="post_shipment_return_refund")
    b = make_request(shop=shop, buyer_id="X", type="return_refund")
    a = make_request(shop=shop, buyer_id="X", type="refund_only")
    reached, release = pause_inside(monkeypatch, "publish_on_commit", "B")
    thread_b = start("B", lambda: request_decide(request_id=b.pk))
    assert reached.wait(10)  # B approved, not committed yet
    thread_a = start("A", lambda: request_decide(request_id=a.pk))
    time.sleep(0.3)  # A is now waiting for the buyer's lock
    release.set()
    thread_b.join(10)
    thread_a.join(10)
    assert Decision.objects.get(request=b).outcome == "approved"
    decision_a = Decision.objects.get(request=a)
    assert decision_a.outcome == "manual_review"
    assert [e["code"] for e in decision_a.explanations] == ["buyer_limit_reached"]


def test_a_cap_lowered_and_a_strategy_switched_off_mid_decision_are_obeyed(monkeypatch):
    """The matcher read cap 100 and active; the merchant commits cap 50 and inactive before the
    reservation: nothing is reserved, the request goes to manual review."""
    shop = make_shop()
    strategy = make_strategy(shop=shop, status="active", daily_cap=Decimal("100.00"))
    request = make_request(
        shop=shop, amount="80.00", order=make_order(shop=shop, items=[("P1", 1, "100.00")])
    )
    reached, release = pause_inside(monkeypatch, "evaluate", "D")
    thread = start("D", lambda: request_decide(request_id=request.pk))
    assert reached.wait(10)
    Strategy.objects.filter(pk=strategy.pk).update(daily_cap=Decimal("50.00"), status="inactive")
    release.set()
    thread.join(10)
    decision = Decision.objects.get(request=request)
    assert decision.outcome == "manual_review"
    assert [e["code"] for e in decision.explanations] == ["daily_cap_reached"]
    assert not DailyLedger.objects.filter(strategy=strategy, consumed__gt=0).exists()


@pytest.mark.parametrize(
    ("second", "new_cap", "outcome", "consumed"),
    [
        ("40.00", "60.00", "manual_review", "40.00"),  # lowered: 80 would pass 60
        ("30.00", "200.00", "approved", "70.00"),  # raised: still obeyed, not refused
    ],
)
def test_a_cap_changed_mid_decision_is_obeyed_on_an_existing_ledger_row(
    monkeypatch, second, new_cap, outcome, consumed
):
    shop = make_shop()
    strategy = make_strategy(shop=shop, status="active", daily_cap=Decimal("100.00"))
    first = make_request(
        shop=shop, amount="40.00", order=make_order(shop=shop, items=[("P1", 1, "100.00")])
    )
    assert request_decide(request_id=first.pk).outcome == "approved"
    request = make_request(
        shop=shop, amount=second, order=make_order(shop=shop, items=[("P1", 1, "100.00")])
    )
    reached, release = pause_inside(monkeypatch, "evaluate", "D")
    thread = start("D", lambda: request_decide(request_id=request.pk))
    assert reached.wait(10)
    Strategy.objects.filter(pk=strategy.pk).update(daily_cap=Decimal(new_cap))
    release.set()
    thread.join(10)
    assert Decision.objects.get(request=request).outcome == outcome
    assert DailyLedger.objects.get(strategy=strategy).consumed == Decimal(consumed)


def test_requests_on_one_order_never_approve_more_than_its_total():
    shop = make_shop()
    make_strategy(shop=shop, status="active")
    order = make_order(shop=shop, items=[("P1", 1, "9.90")])
    outcomes = [
        request_decide(
            request_id=make_request(shop=shop, order=order, amount="6.00", buyer_id=f"B{i}").pk
        )
        for i in range(3)
    ]
    assert [d.outcome for d in outcomes] == ["approved", "manual_review", "manual_review"]
    assert outcomes[1].explanations[0]["code"] == "order_total_exceeded"
    assert outcomes[1].explanations[0]["params"] == {
        "amount": "6.00",
        "refunded": "6.00",
        "total": "9.90",
    }


def test_concurrent_requests_on_one_order_take_turns(monkeypatch):
    shop = make_shop()
    make_strategy(shop=shop, status="active")
    order = make_order(shop=shop, items=[("P1", 1, "9.90")])
    a = make_request(shop=shop, order=order, amount="9.90", buyer_id="A")
    b = make_request(shop=shop, order=order, amount="9.90", buyer_id="B")
    reached, release = pause_inside(monkeypatch, "publish_on_commit", "A")
    thread_a = start("A", lambda: request_decide(request_id=a.pk))
    assert reached.wait(10)
    thread_b = start("B", lambda: request_decide(request_id=b.pk))
    time.sleep(0.3)  # B waits for the order's row lock
    assert not Decision.objects.filter(request=b).exists()
    release.set()
    thread_a.join(10)
    thread_b.join(10)
    assert Decision.objects.get(request=a).outcome == "approved"
    assert Decision.objects.get(request=b).outcome == "manual_review"


def test_a_released_approval_gives_the_order_its_amount_back():
    from strategies.pipeline.execute import decision_fail

    shop = make_shop()
    make_strategy(shop=shop, status="active")
    order = make_order(shop=shop, items=[("P1", 1, "9.90")])
    first = request_decide(request_id=make_request(shop=shop, order=order, amount="9.90").pk)
    decision_fail(decision_id=first.pk, reason="refused by the platform")
    again = request_decide(request_id=make_request(shop=shop, order=order, amount="9.90").pk)
    assert again.outcome == "approved"
