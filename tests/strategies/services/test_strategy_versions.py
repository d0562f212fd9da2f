"""Strategy versions (RELIABILITY.md 27): every write moves a strategy to its next version, and a
change based on an older one is refused, naming who changed what and when."""

import threading
import time

import pytest
from django.db import connection, transaction
from django.utils import translation

from strategies.models import Strategy
from strategies.services.strategies import (
    StrategyChanged,
    strategies_move,
    strategies_reorder,
    strategy_create,
    strategy_delete,
    strategy_set_status,
    strategy_update,
)
from tests.concurrency import someone_waits_on_a_lock
from tests.factories import make_membership, make_strategy

pytestmark = pytest.mark.django_db


def version(strategy: Strategy) -> int:
    return Strategy.all_objects.get(pk=strategy.pk).version


def test_every_kind_of_write_moves_to_the_next_version(shop):
    a = strategy_create(shop=shop, scenario="post_shipment_refund", name="A")
    b = strategy_create(shop=shop, scenario="post_shipment_refund", name="B")
    c = strategy_create(shop=shop, scenario="post_shipment_refund", name="C")
    assert version(a) == 1
    strategy_update(strategy=a, name="A2")
    assert version(a) == 2 and a.version == 2
    strategy_set_status(strategies=[a], status="active")
    assert version(a) == 3
    strategy_set_status(strategies=[a], status="active")  # nothing changed: no new version
    assert version(a) == 3
    strategies_reorder(shop=shop, scenario="post_shipment_refund", ordered_ids=[b.pk, a.pk, c.pk])
    assert (version(a), version(b), version(c)) == (4, 2, 1)  # c kept its place
    strategies_move(shop=shop, scenario="post_shipment_refund", moves={c.pk: 1})
    assert (version(a), version(b), version(c)) == (5, 3, 2)
    strategy_delete(strategy=c)  # never decided: removed, the others close the gap
    assert (version(a), version(b)) == (6, 4)


def test_a_change_based_on_an_older_version_is_refused_and_says_who_what_when(shop):
    colleague = make_membership(shop=shop, username="colleague-b").user
    strategy = make_strategy(shop=shop, name="Night refunds", status="active")
    opened_at = strategy.version
    strategy_set_status(strategies=[strategy], status="inactive", actor=colleague)
    with translation.override("en"), pytest.raises(StrategyChanged) as excinfo:
        strategy_update(
            strategy=Strategy.objects.get(pk=strategy.pk),
            expected_version=opened_at,
            status="active",
            remark="typed later",
        )
    refusal = excinfo.value
    assert refusal.version == opened_at + 1
    summary = " ".join(refusal.message_dict["__all__"])
    assert "colleague-b changed status from Active to Inactive at " in summary
    assert "nothing was saved" in summary
    assert refusal.message_dict["status"][0].startswith("Changed meanwhile by colleague-b at ")
    stored = Strategy.objects.get(pk=strategy.pk)
    assert (stored.status, stored.remark, stored.version) == ("inactive", "", opened_at + 1)
    # Based on the version it now has, the same change goes through.
    strategy_update(strategy=stored, expected_version=refusal.version, remark="on purpose")
    assert Strategy.objects.get(pk=strategy.pk).remark == "on purpose"


def test_the_refusal_is_in_the_interface_language(shop):
    strategy = make_strategy(shop=shop, name="S", daily_cap="100.00")
    strategy_update(strategy=strategy, daily_cap="50.00")
    with translation.override("zh-hans"), pytest.raises(StrategyChanged) as excinfo:
        strategy_update(strategy=strategy, expected_version=1, daily_cap="900.00")
    summary = excinfo.value.message_dict["__all__"][0]
    assert "当日退款总额上限" in summary and "100.00" in summary and "50.00" in summary
    assert "changed" not in summary


@pytest.mark.django_db(transaction=True)
def test_two_saves_of_one_version_never_both_pass(shop):
    # A saves version 1 and holds its transaction open; B saves version 1 too. B must wait on
    # the row lock and then be refused: a check that read the version before A's commit would
    # let B switch the strategy back on.
    strategy = make_strategy(shop=shop, name="Raced", status="active")
    a_saved, release = threading.Event(), threading.Event()
    outcome: list[str] = []

    def a() -> None:
        try:
            with transaction.atomic():
                strategy_update(
                    strategy=Strategy.objects.get(pk=strategy.pk),
                    expected_version=1,
                    status="inactive",
                )
                a_saved.set()
                release.wait(10)
        finally:
            connection.close()

    def b() -> None:
        try:
            a_saved.wait(10)
            strategy_update(
                strategy=Strategy.objects.get(pk=strategy.pk), expected_version=1, status="active"
            )
            outcome.append("saved")
        except StrategyChanged:
            outcome.append("refused")
        finally:
            connection.close()

    threads = [threading.Thread(target=a), threading.Thread(target=b)]
    for thread in threads:
        thread.start()
    assert a_saved.wait(10)
    deadline = time.monotonic() + 10
    while not someone_waits_on_a_lock() and time.monotonic() < deadline:
        time.sleep(0.02)
    waited = someone_waits_on_a_lock()
    release.set()
    for thread in threads:
        thread.join(20)
    assert waited, "B did not wait for A's lock"
    assert outcome == ["refused"]
    stored = Strategy.objects.get(pk=strategy.pk)
    assert (stored.status, stored.version) == ("inactive", 2)
