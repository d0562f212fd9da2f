"""A started fake Douyin and a channel connected to it."""

from collections.abc import Iterator

import pytest

from strategies.platforms.douyin.channel import DouyinChannel
from strategies.platforms.douyin.client import Credentials
from strategies.platforms.douyin.fake import FakeDouyin


@pytest.fixture
def fake() -> Iterator[FakeDouyin]:
    server = FakeDouyin(hang_seconds=2.5, drip_interval=0.3).start()
    yield server
    server.stop()


def channel_for(fake: FakeDouyin, *, access_token: str = "", **changes) -> DouyinChannel:
    if not access_token:
        access_token, _ = fake.issue_tokens()
    fields = {
        "app_key": fake.app_key,
        "app_secret": fake.app_secret,
        "access_token": access_token,
        "shop_id": fake.shop_id,
        "api_base": fake.url,
        **changes,
    }
    return DouyinChannel(credentials=Credentials(**fields), return_address_id="66", deadline=1.0)


@pytest.fixture
def channel(fake) -> DouyinChannel:
    return channel_for(fake)


@pytest.fixture
def shipped_990(fake) -> str:
    """A shipped refund-only request of 9.90; its id."""
    fake.add_order("6001", status=3, items=[(3001, "T-shirt", 1, 990)])
    fake.add_aftersale("7000000000000000001", order_id="6001", amount=990, kind=1)
    return "7000000000000000001"
