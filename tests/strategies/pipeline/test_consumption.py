"""Today's consumption of a daily cap, as the strategy list and the dashboard show it."""

from decimal import Decimal

import pytest

from strategies.selectors import Consumption


@pytest.mark.parametrize(
    ("consumed", "shown", "red"),
    [
        ("90000.00", "90.00", False),  # 90% is still normal
        ("90004.00", "90.00", True),  # shown rounded, but above 90%: red
        ("90010.00", "90.01", True),
        ("100000.00", "100.00", True),
    ],
)
def test_red_is_decided_on_the_exact_amounts_not_the_rounded_percentage(consumed, shown, red):
    usage = Consumption(consumed=Decimal(consumed), approved_count=1, daily_cap=Decimal("100000"))
    assert (str(usage.percent), usage.is_warning) == (shown, red)
