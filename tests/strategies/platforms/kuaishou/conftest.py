"""A started fake Kuaishou and a channel connected to it."""

from collections.abc import Iterator

import pytest

from strategies.platforms.kuaishou.channel import KuaishouChannel
from strategies.platforms.kuaishou.client import Credentials
from strategies.platforms.kuaishou.fake import FakeKuaishou


@pytest.fixture
def fake() -> Iterator[FakeKuaishou]:
    server = FakeKuaishou(hang_seconds=2.5, drip_interval=0.3).start()
    yield server
    server.stop()


def channel_for(fake: FakeKuaishou, *, access_token: str = "", **changes) -> KuaishouChannel:
    if not access_token:
        access_token, _ = fake.issue_tokens()
    fields = {
        "app_key": fake.app_key,
        "app_secret": fake.app_secret,
        "sign_secret": fake.sign_secret,
        "access_token": access_token,
        "api_base": fake.url,
        **changes,
    }
    credentials = Credentials(**fields)
    return KuaishouChannel(credentials=credentials, message_key=fake.message_key, deadline=1.0)


@pytest.fixture
def channel(fake) -> KuaishouChannel:
    return channel_for(fake)


@pytest.fixture
def shipped_990(fake) -> str:
    """A refund-only request of 9.90 on a shipped order; its refund id."""
    fake.add_order("5001", status=40, items=[(9001, "T-shirt", 1, 990)])
    fake.add_refund("7001", order_id="5001", fee=990, handling_way=10)
    return "7001"
