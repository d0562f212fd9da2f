"""Douyin tokens kept alive by the beat, against the fake Douyin (which lets a refresh token work
once, as Kuaishou's): the access token refreshed ahead of expiry, one refresh at a time per
channel, the new pair stored and used on the next call; a self-built app without a refresh token
gets a new token from its credentials; a refused refresh and a refresh token about to die each
alert once."""

import datetime as dt
import json
import time

import pytest
from django.utils import timezone

from notifications.models import Notice
from notifications.services import channel_alert_raise
from strategies.models import Channel
from strategies.pipeline.channels import (
    channel_note_error,
    channel_token_refresh,
    channels_refresh_due,
)
from strategies.pipeline.publish import (
    CHANNEL_ALERT_AUTH,
    CHANNEL_ALERT_EXPIRING,
    CHANNEL_ALERT_TASK,
    REFRESH_CHANNEL_TASK,
)
from strategies.platforms.douyin.client import AFTERSALE_DETAIL, TOKEN_CREATE, TOKEN_REFRESH
from strategies.platforms.registry import adapter_for
from strategies.services.channels import Credentials, connect_shop
from tests.concurrency import run_concurrently
from tests.factories import make_shop

pytestmark = pytest.mark.django_db(transaction=True)


def slow(fake, call):
    time.sleep(0.5)  # the platform takes its time: the second caller arrives meanwhile
    return fake.handle(call)


def expiring_soon(channel: Channel) -> None:
    Channel.objects.filter(pk=channel.pk).update(
        access_expires_at=timezone.now() + dt.timedelta(hours=1)
    )


def test_two_refreshes_at_once_make_one_call_and_the_new_token_is_used(dy_fake, dy_shop):
    channel = Channel.objects.get(shop=dy_shop)
    old_access, old_refresh = channel.secret("access_token"), channel.secret("refresh_token")
    expiring_soon(channel)
    dy_fake.script(TOKEN_REFRESH, slow, slow)
    results = run_concurrently(
        lambda _: channel_token_refresh(channel_id=channel.pk), [1, 2], threads=2
    )
    assert sorted(results) == ["fresh", "refreshed"]
    [call] = dy_fake.calls_of(TOKEN_REFRESH)
    assert json.loads(call.body) == {"grant_type": "refresh_token", "refresh_token": old_refresh}
    channel.refresh_from_db()
    access, refresh = channel.secret("access_token"), channel.secret("refresh_token")
    assert access != old_access and refresh != old_refresh
    assert dy_fake.refresh_tokens[old_refresh] is False  # spent: only the stored one works
    assert dy_fake.refresh_tokens[refresh] is True
    now = timezone.now()
    assert channel.access_expires_at > now + dt.timedelta(days=6)
    assert channel.refresh_expires_at > now + dt.timedelta(days=13)
    assert channel.last_refresh_at is not None and channel.auth_failed_at is None
    # The next call goes out with the new token (the fake checks it).
    dy_fake.add_order("6001", status=3, items=[(3001, "T-shirt", 1, 990)])
    dy_fake.add_aftersale("7000000000000000001", order_id="6001", amount=990, kind=1)
    adapter_for(channel).fetch("7000000000000000001")
    [detail] = dy_fake.calls_of(AFTERSALE_DETAIL)
    assert detail.query["access_token"] == access


def test_the_beat_queues_only_expiring_douyin_tokens_and_alerts_3_days_ahead(
    dy_fake, dy_shop, sent
):
    channel = Channel.objects.get(shop=dy_shop)
    now = timezone.now()
    assert channels_refresh_due(now=now) == []  # 7 days left: nothing to do
    Channel.objects.filter(pk=channel.pk).update(
        access_expires_at=now + dt.timedelta(hours=5),
        refresh_expires_at=now + dt.timedelta(days=5),
    )
    assert channels_refresh_due(now=now) == [channel.pk]
    assert [a for n, a in sent if n == CHANNEL_ALERT_TASK] == []  # 5 days: a healthy channel
    Channel.objects.filter(pk=channel.pk).update(refresh_expires_at=now + dt.timedelta(days=2))
    channels_refresh_due(now=now)
    channels_refresh_due(now=now + dt.timedelta(minutes=10))
    assert [a for n, a in sent if n == CHANNEL_ALERT_TASK] == [[channel.pk, CHANNEL_ALERT_EXPIRING]]
    assert [a for n, a in sent if n == REFRESH_CHANNEL_TASK] == [[channel.pk, 0]] * 3
    assert channel_alert_raise(channel_id=channel.pk, kind=CHANNEL_ALERT_EXPIRING) is not None
    [notice] = Notice.objects.filter(shop=dy_shop)
    assert "Douyin" in notice.title or "抖店" in notice.title or "抖音" in notice.title


def test_a_refused_refresh_is_noted_and_alerts_once(dy_fake, dy_shop, sent):
    channel = Channel.objects.get(shop=dy_shop)
    dy_fake.refresh_tokens.clear()  # the merchant cancelled the authorisation
    assert channel_token_refresh(channel_id=channel.pk, force=True) == "refused"
    assert channel_token_refresh(channel_id=channel.pk, force=True) == "refused"
    channel.refresh_from_db()
    assert channel.auth_failed_at is not None
    assert "refresh" in channel.last_error
    assert [a for n, a in sent if n == CHANNEL_ALERT_TASK] == [[channel.pk, CHANNEL_ALERT_AUTH]]


def test_an_authentication_failure_asks_for_one_refresh(dy_fake, dy_shop, sent):
    channel_note_error(row=dy_shop.channel, error="isv.access-token-expired", auth=True)
    assert sent == [(REFRESH_CHANNEL_TASK, [dy_shop.channel.pk, 1])]


def test_a_self_built_app_without_a_refresh_token_gets_a_new_token(dy_fake, sent):
    shop = make_shop(code="dy-self")
    access, _refresh = dy_fake.issue_tokens()
    connect_shop(
        shop=shop,
        platform="douyin",
        credentials=Credentials(
            app_key=dy_fake.app_key,
            app_secret=dy_fake.app_secret,
            access_token=access,
            expires_in=3600,
            merchant_id=dy_fake.shop_id,
            api_base=dy_fake.url,
        ),
    )
    channel = Channel.objects.get(shop=shop)
    assert channels_refresh_due() == [channel.pk]
    assert channel_token_refresh(channel_id=channel.pk) == "refreshed"
    [call] = dy_fake.calls_of(TOKEN_CREATE)
    assert json.loads(call.body)["grant_type"] == "authorization_self"
    assert dy_fake.calls_of(TOKEN_REFRESH) == []
    channel.refresh_from_db()
    assert channel.secret("access_token") in dy_fake.access_tokens
    assert channel.secret("access_token") != access
    assert channel.refresh_token_sealed  # from now on it refreshes like any other
