"""Polling /afterSale/List by update time, and Douyin tokens."""

import datetime as dt

import pytest

from strategies.platforms.channel import TokenRefused
from tests.strategies.platforms.douyin.conftest import channel_for


def test_the_poll_pages_through_every_update(fake, channel):
    fake.add_order("6001")
    for n in range(205):
        fake.add_aftersale(str(7100000000000000000 + n), order_id="6001", amount=100 + n)
    now = dt.datetime.now(dt.UTC)
    result = channel.poll(since=now - dt.timedelta(hours=1), until=now + dt.timedelta(minutes=1))
    assert len(result.refunds) == 205 and result.calls == 3
    assert result.high_water == max(r.updated_at for r in result.refunds)


def test_a_long_period_is_polled_a_day_at_a_time(fake, channel):
    now = dt.datetime.now(dt.UTC)
    result = channel.poll(since=now - dt.timedelta(days=2, hours=1), until=now)
    assert result.calls == 3 and result.refunds == []


def test_a_self_built_app_gets_a_token_for_its_shop(fake, shipped_990):
    channel = channel_for(fake, access_token="none-yet")
    grant = channel.token()
    assert grant.merchant == fake.shop_id
    assert channel_for(fake, access_token=grant.access_token).fetch(shipped_990).request


def test_a_refresh_rotates_and_the_old_refresh_token_is_refused(fake):
    _, refresh = fake.issue_tokens()
    channel = channel_for(fake)
    grant = channel.refresh(refresh_token=refresh)
    assert grant.refresh_token != refresh
    assert grant.refresh_expires_at - grant.expires_at == dt.timedelta(days=7)
    with pytest.raises(TokenRefused):
        channel.refresh(refresh_token=refresh)
