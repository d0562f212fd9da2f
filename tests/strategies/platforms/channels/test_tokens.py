"""RELIABILITY.md 37 against the fake Kuaishou (which discards the old refresh token at once):
two refreshes at the same moment make one refresh call and keep the newest pair; an expiring
refresh token and a refused refresh each raise one alert."""

import datetime as dt
import time

import pytest
from django.utils import timezone

from notifications.models import Notice
from notifications.services import channel_alert_raise
from strategies.models import Channel
from strategies.pipeline.channels import channel_token_refresh, channels_refresh_due
from strategies.pipeline.publish import (
    CHANNEL_ALERT_AUTH,
    CHANNEL_ALERT_EXPIRING,
    CHANNEL_ALERT_TASK,
    REFRESH_CHANNEL_TASK,
)
from strategies.platforms.kuaishou.fake import REFRESH
from tests.concurrency import run_concurrently

pytestmark = pytest.mark.django_db(transaction=True)


def slow_refresh(fake, call):
    time.sleep(0.5)  # the platform takes its time: the second caller arrives meanwhile
    return fake.handle(call)


def test_two_refreshes_at_once_make_one_call_and_store_the_newest_pair(ks_fake, ks_shop):
    channel = Channel.objects.get(shop=ks_shop)
    old_refresh = channel.secret("refresh_token")
    Channel.objects.filter(pk=channel.pk).update(
        access_expires_at=timezone.now() + dt.timedelta(hours=1)
    )
    ks_fake.script(REFRESH, slow_refresh, slow_refresh)
    results = run_concurrently(
        lambda _: channel_token_refresh(channel_id=channel.pk), [1, 2], threads=2
    )
    assert sorted(results) == ["fresh", "refreshed"]
    assert len(ks_fake.calls_of(REFRESH)) == 1
    channel.refresh_from_db()
    stored = channel.secret("refresh_token")
    assert stored != old_refresh
    # The newest refresh token is the one the platform still honours (the old one is gone).
    assert ks_fake.refresh_tokens[stored][1] is None
    assert channel.secret("access_token") in ks_fake.access_tokens
    assert channel.access_expires_at > timezone.now() + dt.timedelta(hours=40)
    # Stored sealed: the plain token is nowhere in the row.
    assert stored not in channel.refresh_token_sealed
    assert channel.refresh_token_hint == f"…{stored[-4:]}"


def test_a_token_far_from_expiry_is_left_alone(ks_fake, ks_shop):
    assert channel_token_refresh(channel_id=ks_shop.channel.pk) == "fresh"
    assert ks_fake.calls_of(REFRESH) == []


def test_the_beat_queues_due_refreshes_and_alerts_once_before_the_refresh_token_dies(
    ks_fake, ks_shop, sent
):
    channel = Channel.objects.get(shop=ks_shop)
    now = timezone.now()
    Channel.objects.filter(pk=channel.pk).update(
        access_expires_at=now + dt.timedelta(hours=1),
        refresh_expires_at=now + dt.timedelta(days=3),
    )
    assert channels_refresh_due(now=now) == [channel.pk]
    channels_refresh_due(now=now + dt.timedelta(minutes=10))
    alerts = [args for name, args in sent if name == CHANNEL_ALERT_TASK]
    assert alerts == [[channel.pk, CHANNEL_ALERT_EXPIRING]]
    assert [args for name, args in sent if name == REFRESH_CHANNEL_TASK] == [
        [channel.pk, 0],
        [channel.pk, 0],
    ]
    # The notice, once, even if the task is delivered twice.
    assert channel_alert_raise(channel_id=channel.pk, kind=CHANNEL_ALERT_EXPIRING) is not None
    assert channel_alert_raise(channel_id=channel.pk, kind=CHANNEL_ALERT_EXPIRING) is None
    [notice] = Notice.objects.filter(shop=ks_shop)
    assert "expires" in notice.title or "过期" in notice.title


def test_a_refused_refresh_is_noted_and_alerts_once(ks_fake, ks_shop, sent):
    channel = Channel.objects.get(shop=ks_shop)
    ks_fake.refresh_tokens.clear()  # the merchant revoked the app
    assert channel_token_refresh(channel_id=channel.pk, force=True) == "refused"
    assert channel_token_refresh(channel_id=channel.pk, force=True) == "refused"
    channel.refresh_from_db()
    assert channel.auth_failed_at is not None
    assert "access_denied" in channel.last_error
    assert [args for name, args in sent if name == CHANNEL_ALERT_TASK] == [
        [channel.pk, CHANNEL_ALERT_AUTH]
    ]
    assert channel_alert_raise(channel_id=channel.pk, kind=CHANNEL_ALERT_AUTH) is not None
    assert Notice.objects.filter(shop=ks_shop).count() == 1
