"""Polling Kuaishou by update time: windows of one day, pages by pcursor, the high-water mark."""

import datetime as dt

from strategies.platforms.channel import from_millis
from strategies.platforms.kuaishou.client import REFUND_LIST

DAY = dt.timedelta(days=1)


def test_it_finds_every_refund_updated_in_the_period_across_pages(fake, channel):
    fake.page_size_cap = 2
    fake.add_order("5001")
    for n in range(5):
        fake.add_refund(f"70{n}", order_id="5001", fee=100 + n)
    now = dt.datetime.now(dt.UTC)
    result = channel.poll(since=now - dt.timedelta(hours=1), until=now + dt.timedelta(minutes=1))
    assert [r.aftersale_id for r in result.refunds] == ["700", "701", "702", "703", "704"]
    assert result.calls == 3  # 2 + 2 + 1
    cursors = [c.params["param"] for c in fake.calls_of(REFUND_LIST)]
    assert '"pcursor":""' in cursors[0] and '"queryType":2' in cursors[0]
    assert result.high_water == max(r.updated_at for r in result.refunds)


def test_a_long_period_is_split_into_windows_of_at_most_one_day(fake, channel):
    fake.add_order("5001")
    refund = fake.add_refund("7001", order_id="5001", fee=990)
    updated = from_millis(refund["updateTime"])
    result = channel.poll(since=updated - 2.5 * DAY, until=updated + dt.timedelta(seconds=1))
    windows = fake.calls_of(REFUND_LIST)
    assert len(windows) == 3
    assert [r.aftersale_id for r in result.refunds] == ["7001"]  # the fake refuses > 1 day


def test_nothing_updated_leaves_no_high_water(fake, channel):
    now = dt.datetime.now(dt.UTC)
    result = channel.poll(since=now - DAY, until=now)
    assert result.refunds == [] and result.high_water is None
