from decimal import Decimal

import pytest
from django.db import IntegrityError

from tests.factories import make_strategy


@pytest.mark.django_db
def test_it_rejects_a_per_request_cap_above_the_daily_cap(shop):
    with pytest.raises(IntegrityError):
        make_strategy(shop=shop, daily_cap=Decimal("10.00"), per_request_cap=Decimal("10.01"))


@pytest.mark.django_db
def test_it_rejects_a_small_amount_strategy_above_20(shop):
    with pytest.raises(IntegrityError):
        make_strategy(shop=shop, template="small_amount", per_request_cap=Decimal("20.01"))


@pytest.mark.django_db(transaction=True)
def test_two_staff_adding_the_10th_and_11th_at_once_never_make_more_than_10(shop):
    import threading

    from django.core.exceptions import ValidationError
    from django.db import connection

    from strategies.models import Strategy
    from strategies.services.strategies import strategy_create

    for i in range(9):
        make_strategy(shop=shop, name=f"S{i}")
    barrier = threading.Barrier(3)
    outcomes: list[str] = []

    def add(name: str) -> None:
        try:
            barrier.wait(timeout=10)
            strategy_create(shop=shop, scenario="post_shipment_refund", name=name)
            outcomes.append("created")
        except ValidationError as exc:
            assert set(exc.message_dict) == {"scenario"}
            outcomes.append("refused")
        finally:
            connection.close()

    threads = [threading.Thread(target=add, args=(f"late {n}",)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcomes) == ["created", "refused", "refused"]
    rows = Strategy.objects.filter(shop=shop, scenario="post_shipment_refund")
    assert rows.count() == 10
    assert sorted(rows.values_list("position", flat=True)) == list(range(1, 11))
