"""Shops connected to the fake Kuaishou and Douyin (real local HTTP servers), and ``drain``: runs
the tasks the pipeline published (the ``sent`` seam) through the same services the worker's
tasks call, until none is left."""

from collections.abc import Callable, Iterator
from decimal import Decimal

import pytest

from strategies.demo.seed import connect_to_fake_kuaishou
from strategies.models import Shop
from strategies.pipeline import channels as pipeline_channels
from strategies.pipeline.decide import NothingToDecide, request_decide
from strategies.pipeline.execute import decision_execute
from strategies.pipeline.publish import (
    CHANNEL_ALERT_TASK,
    DECIDE_TASK,
    EXECUTE_TASK,
    PUSH_TASK,
    REFRESH_CHANNEL_TASK,
)
from strategies.platforms.base import GatewayError
from strategies.platforms.douyin.fake import FakeDouyin
from strategies.platforms.kuaishou.fake import FakeKuaishou
from strategies.services.channels import Credentials, connect_shop
from tests.factories import make_shop, make_strategy


@pytest.fixture
def ks_fake() -> Iterator[FakeKuaishou]:
    server = FakeKuaishou(hang_seconds=2.5, drip_interval=0.3).start()
    yield server
    server.stop()


@pytest.fixture
def dy_fake() -> Iterator[FakeDouyin]:
    server = FakeDouyin(hang_seconds=2.5, drip_interval=0.3).start()
    yield server
    server.stop()


connect_kuaishou = connect_to_fake_kuaishou  # the name the channel tests import


def connect_douyin(shop: Shop, fake: FakeDouyin) -> None:
    access, refresh = fake.issue_tokens()
    connect_shop(
        shop=shop,
        platform="douyin",
        credentials=Credentials(
            app_key=fake.app_key,
            app_secret=fake.app_secret,
            access_token=access,
            refresh_token=refresh,
            expires_in=fake.access_ttl,
            merchant_id=fake.shop_id,
            api_base=fake.url,
            return_address_id="66",
        ),
    )


@pytest.fixture
def ks_shop(db, ks_fake) -> Shop:
    shop = make_shop(code="ks-shop")
    make_strategy(shop=shop, status="active", daily_cap=Decimal("1000.00"))
    connect_kuaishou(shop, ks_fake)
    return shop


@pytest.fixture
def dy_shop(db, dy_fake) -> Shop:
    shop = make_shop(code="dy-shop")
    make_strategy(shop=shop, status="active", daily_cap=Decimal("1000.00"))
    connect_douyin(shop, dy_fake)
    return shop


@pytest.fixture
def drain(sent) -> Callable[..., list[tuple[str, object]]]:
    """Runs what was published, in order, until nothing is left; (task, result) of each. A
    retryable execution is left for the test to see (``GatewayError`` is its result)."""

    def run(*, skip: frozenset[str] = frozenset()) -> list[tuple[str, object]]:
        done: list[tuple[str, object]] = []
        while sent:
            name, args = sent.pop(0)
            if name in skip:
                continue
            result: object
            if name == PUSH_TASK:
                result = pipeline_channels.push_process(message_id=args[0])
            elif name == DECIDE_TASK:
                try:
                    result = request_decide(request_id=args[0]).outcome
                except NothingToDecide:
                    result = "nothing to decide"
            elif name == EXECUTE_TASK:
                try:
                    result = decision_execute(decision_id=args[0]).state.value
                except GatewayError as exc:
                    result = exc
            elif name == REFRESH_CHANNEL_TASK:
                result = pipeline_channels.channel_token_refresh(
                    channel_id=args[0], force=bool(args[1])
                )
            elif name == CHANNEL_ALERT_TASK:
                result = "alert"
            else:
                result = "not run"
            done.append((name, result))
        return done

    return run
