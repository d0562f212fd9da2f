"""The neutral pieces every marketplace channel shares."""

import datetime as dt
from decimal import Decimal

import pytest

from strategies.platforms.channel import Channel, fen_to_yuan, from_millis, yuan_to_fen
from strategies.platforms.douyin.channel import DouyinChannel
from strategies.platforms.douyin.client import Credentials as DouyinCredentials
from strategies.platforms.kuaishou.channel import KuaishouChannel
from strategies.platforms.kuaishou.client import Credentials as KuaishouCredentials


@pytest.mark.parametrize(
    ("fen", "yuan"), [(990, "9.90"), (1, "0.01"), (100, "1.00"), (123456789012, "1234567890.12")]
)
def test_fen_and_yuan_convert_exactly(fen, yuan):
    assert fen_to_yuan(fen) == Decimal(yuan) and str(fen_to_yuan(fen)) == yuan
    assert yuan_to_fen(Decimal(yuan)) == fen


@pytest.mark.parametrize("bad", [9.9, "990", True, None])
def test_fen_must_be_a_whole_number(bad):
    with pytest.raises(ValueError):
        fen_to_yuan(bad)


def test_more_than_two_decimals_is_refused():
    with pytest.raises(ValueError):
        yuan_to_fen(Decimal("9.905"))


def test_milliseconds_are_exact_and_aware():
    assert from_millis(1_700_000_000_123) == dt.datetime(
        2023, 11, 14, 22, 13, 20, 123000, tzinfo=dt.UTC
    )


def test_both_channels_are_channels():
    channels: list[Channel] = [
        KuaishouChannel(credentials=KuaishouCredentials("k", "s", "ss", "t")),
        DouyinChannel(credentials=DouyinCredentials("k", "s")),
    ]
    assert [c.name for c in channels] == ["kuaishou", "douyin"]
    assert [c.push_answer for c in channels] == [{"result": 1}, {"code": 0, "msg": "success"}]
