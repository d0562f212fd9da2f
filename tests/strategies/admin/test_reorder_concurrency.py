"""Two writes to one scenario's order at the same moment (an add during a delete or a drag, a
delete during an add): the second waits for the first on the shop row, so priorities stay 1..n
with no gap and no duplicate. Real PostgreSQL, two connections."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connections, transaction

from strategies.models import Strategy
from strategies.services.strategies import strategies_move, strategy_create, strategy_delete
from tests.concurrency import someone_waits_on_a_lock
from tests.factories import make_strategy

SCENARIO = "post_shipment_refund"


def _race(first: Callable[[], Any], second: Callable[[], Any]) -> dict[str, Any]:
    """``first`` runs and holds its transaction open; ``second`` starts meanwhile; once it waits
    on a lock (or, without one, is done), the first commits."""
    done, release = threading.Event(), threading.Event()
    outcome: dict[str, Any] = {}

    def run(name: str, work: Callable[[], Any], hold: bool) -> None:
        try:
            with transaction.atomic():
                outcome[name] = work()
                if hold:
                    done.set()
                    release.wait(10)
        except Exception as exc:
            outcome[name] = exc
        finally:
            done.set()
            connections.close_all()

    one = threading.Thread(target=run, args=("first", first, True))
    one.start()
    assert done.wait(10)
    two = threading.Thread(target=run, args=("second", second, False))
    two.start()
    deadline = time.monotonic() + 10
    while two.is_alive() and not someone_waits_on_a_lock():
        assert time.monotonic() < deadline, "the second write neither waited nor finished"
        time.sleep(0.02)
    release.set()
    one.join(10)
    two.join(10)
    assert not one.is_alive() and not two.is_alive()
    return outcome


def _positions(shop) -> list[int]:
    return list(
        Strategy.objects.filter(shop=shop, scenario=SCENARIO)
        .order_by("position")
        .values_list("position", flat=True)
    )


def _create(shop) -> Callable[[], Strategy]:
    return lambda: strategy_create(shop=shop, scenario=SCENARIO, name="Added meanwhile")


@pytest.mark.django_db(transaction=True)
def test_an_add_during_a_delete_goes_after_the_closed_gap(shop):
    make_strategy(shop=shop)
    middle = make_strategy(shop=shop)
    make_strategy(shop=shop)

    outcome = _race(lambda: strategy_delete(strategy=middle), _create(shop))

    assert isinstance(outcome["second"], Strategy), outcome["second"]
    assert _positions(shop) == [1, 2, 3]
    assert Strategy.objects.get(name="Added meanwhile").position == 3


@pytest.mark.django_db(transaction=True)
def test_a_delete_during_an_add_closes_the_gap_below_it(shop):
    make_strategy(shop=shop)
    middle = make_strategy(shop=shop)
    make_strategy(shop=shop)

    outcome = _race(_create(shop), lambda: strategy_delete(strategy=middle))

    assert outcome["second"] is None, outcome["second"]
    assert _positions(shop) == [1, 2, 3]


@pytest.mark.django_db(transaction=True)
def test_an_add_during_a_drag_goes_after_the_renumbered_rows(shop):
    # Positions left 1, 2, 2 (e.g. by an old import): the drag renumbers them 1..3.
    make_strategy(shop=shop, position=1)
    make_strategy(shop=shop, position=2)
    last = make_strategy(shop=shop, position=2)

    outcome = _race(
        lambda: strategies_move(shop=shop, scenario=SCENARIO, moves={last.pk: 1}),
        _create(shop),
    )

    assert isinstance(outcome["second"], Strategy), outcome["second"]
    assert _positions(shop) == [1, 2, 3, 4]
