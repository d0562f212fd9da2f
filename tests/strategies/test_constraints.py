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
