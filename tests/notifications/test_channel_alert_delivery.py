"""A connected marketplace's channel alert (the refresh refused, the refresh token about to die,
pushes refused in a row) reaches the merchant like a cap alert: the inbox notice, and one SMS
and one e-mail on the shop's channels, sent to a real SMTP server (aiosmtpd) and a real local
SMS provider, once however often the alert task and the send tasks are delivered."""

import datetime as dt
from collections.abc import Iterator

import pytest
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from notifications import tasks
from notifications.models import Delivery, DeliveryStatus, Notice
from strategies.models import Channel
from strategies.pipeline.channels import channel_token_refresh, channels_refresh_due
from strategies.pipeline.publish import CHANNEL_ALERT_PUSH, CHANNEL_ALERT_TASK
from strategies.platforms.kuaishou.fake import FakeKuaishou
from strategies.platforms.kuaishou.messages import encrypt_message
from tests.factories import make_shop
from tests.strategies.platforms.channels.conftest import connect_kuaishou

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def ks_fake() -> Iterator[FakeKuaishou]:
    server = FakeKuaishou().start()
    yield server
    server.stop()


@pytest.fixture
def ks_shop(ks_fake):
    shop = make_shop(code="ks-alerts", name="Tea House", phone="13800000000")
    shop.alert_email = "alerts@shop.example"
    shop.save()
    connect_kuaishou(shop, ks_fake)
    return shop


def raise_alerts(sent) -> list[bool]:
    """Runs every channel alert task published, each twice (a redelivered message)."""
    alerts = [args for name, args in sent if name == CHANNEL_ALERT_TASK]
    return [tasks.raise_channel_alert.run(*args) for args in alerts * 2]


def send_all(published) -> list[str]:
    """Runs every published send, each twice (a redelivered message)."""
    return [tasks.send_delivery.run(args[0]) for args, _ in published * 2]


def test_a_refused_refresh_is_sent_once_by_sms_and_by_email(
    ks_fake, ks_shop, sent, published, smtp_server, sms_provider
):
    channel = Channel.objects.get(shop=ks_shop)
    ks_fake.refresh_tokens.clear()  # the merchant revoked the app
    assert channel_token_refresh(channel_id=channel.pk, force=True) == "refused"
    assert channel_token_refresh(channel_id=channel.pk, force=True) == "refused"
    assert raise_alerts(sent) == [True, False]
    [notice] = Notice.objects.filter(shop=ks_shop)
    assert len(published) == 2  # one SMS, one e-mail: none for the replay
    send_all(published)

    deliveries = Delivery.objects.filter(shop=ks_shop)
    assert {(d.channel, d.status, d.attempts) for d in deliveries} == {
        ("sms", DeliveryStatus.SENT, 1),
        ("email", DeliveryStatus.SENT, 1),
    }
    assert all(d.notice_id == notice.pk and d.alert_id is None for d in deliveries)

    [(mail_from, rcpt_tos, content)] = smtp_server.handler.messages
    assert mail_from == settings.DEFAULT_FROM_EMAIL
    assert rcpt_tos == ["alerts@shop.example"]
    assert "access_denied" in content  # the platform's refusal, in the message
    [sms] = sms_provider.received
    sms_row = deliveries.get(channel="sms")
    assert sms["json"] == {
        "phone": "13800000000",
        "message": sms_row.body,
        "idempotency_key": str(sms_row.idempotency_key),
    }
    assert "Tea House" in sms_row.body and notice.title in sms_row.body


def test_an_expiring_refresh_token_is_sent_and_a_provider_failure_retried(
    ks_fake, ks_shop, sent, published, smtp_server, sms_provider, settings
):
    settings.ATOM_EMAIL_ENABLED = False  # SMS only: no e-mail delivery is even created
    sms_provider.script = [503]
    channel = Channel.objects.get(shop=ks_shop)
    now = timezone.now()
    Channel.objects.filter(pk=channel.pk).update(refresh_expires_at=now + dt.timedelta(days=3))
    channels_refresh_due(now=now)
    channels_refresh_due(now=now + dt.timedelta(minutes=5))
    assert raise_alerts(sent) == [True, False]
    [delivery] = Delivery.objects.filter(shop=ks_shop)
    assert delivery.channel == "sms"
    assert tasks.send_delivery.run(delivery.pk) == DeliveryStatus.PENDING  # 503: retried
    Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
    assert tasks.send_delivery.run(delivery.pk) == DeliveryStatus.SENT
    assert tasks.send_delivery.run(delivery.pk) == DeliveryStatus.SENT  # a replay sends nothing
    assert len(sms_provider.received) == 2  # the failed try and the one that went through
    assert sms_provider.received[0]["json"] == sms_provider.received[1]["json"]
    assert smtp_server.handler.messages == []


def test_a_new_authorisation_alerts_again_on_the_next_refusal(
    ks_fake, ks_shop, sent, published, smtp_server, sms_provider
):
    channel = Channel.objects.get(shop=ks_shop)
    ks_fake.refresh_tokens.clear()
    channel_token_refresh(channel_id=channel.pk, force=True)
    raise_alerts(sent)
    sent.clear()
    connect_kuaishou(ks_shop, ks_fake)  # authorised again: the alert is over
    ks_fake.refresh_tokens.clear()
    channel_token_refresh(channel_id=channel.pk, force=True)
    raise_alerts(sent)
    send_all(published)
    assert Notice.objects.filter(shop=ks_shop).count() == 2
    assert Delivery.objects.filter(shop=ks_shop, status=DeliveryStatus.SENT).count() == 4
    assert len(sms_provider.received) == 2 and len(smtp_server.handler.messages) == 2


def test_the_database_keeps_one_delivery_per_notice_and_channel_and_an_owner_for_each():
    shop = make_shop(phone="13800000000")
    notice = Notice.objects.create(shop=shop, title="t", body="b")
    row = {"shop": shop, "channel": "sms", "recipient": "1", "body": "b"}
    Delivery.objects.create(notice=notice, next_attempt_at=timezone.now(), **row)
    with pytest.raises(IntegrityError), transaction.atomic():
        Delivery.objects.create(notice=notice, next_attempt_at=timezone.now(), **row)
    with pytest.raises(IntegrityError), transaction.atomic():
        Delivery.objects.create(next_attempt_at=timezone.now(), **row)  # neither alert nor notice


def refused_push(client, fake):
    other_key = encrypt_message('{"eventId":"x"}', message_key="MDEyMzQ1Njc4OWFiY2RlZg==")
    url = f"/platforms/kuaishou/push/{fake.app_key}"
    return client.post(url, data=other_key, content_type="text/plain").status_code


def test_pushes_refused_in_a_row_alert_once_per_set_of_keys(
    client, ks_fake, ks_shop, sent, published, smtp_server, sms_provider
):
    channel = Channel.objects.get(shop=ks_shop)
    assert [refused_push(client, ks_fake) for _ in range(2)] == [400, 400]
    # An accepted push (a heartbeat) in between: the two were strays, the count starts again.
    heartbeat = encrypt_message('{"test":true}', message_key=ks_fake.message_key)
    url = f"/platforms/kuaishou/push/{ks_fake.app_key}"
    assert client.post(url, data=heartbeat, content_type="text/plain").status_code == 200
    assert Channel.objects.get(pk=channel.pk).push_refusals == 0
    assert [refused_push(client, ks_fake) for _ in range(2)] == [400, 400]
    assert [a for n, a in sent if n == CHANNEL_ALERT_TASK] == []
    assert [refused_push(client, ks_fake) for _ in range(3)] == [400] * 3
    assert [a for n, a in sent if n == CHANNEL_ALERT_TASK] == [[channel.pk, CHANNEL_ALERT_PUSH]]
    channel.refresh_from_db()
    assert channel.push_refusals == 5 and channel.last_error.startswith("push refused")

    assert raise_alerts(sent) == [True, False]
    send_all(published)
    [notice] = Notice.objects.filter(shop=ks_shop)
    assert "5" in notice.body
    [(_from, _to, content)] = smtp_server.handler.messages
    assert "message key" in content or "消息" in content
    assert len(sms_provider.received) == 1

    # The merchant enters the right key: refusals start afresh and would alert again.
    sent.clear()
    connect_kuaishou(ks_shop, ks_fake, message_key=ks_fake.message_key)
    channel.refresh_from_db()
    assert (channel.push_refusals, channel.push_alerted_at) == (0, None)
    assert [refused_push(client, ks_fake) for _ in range(3)] == [400] * 3
    assert [a for n, a in sent if n == CHANNEL_ALERT_TASK] == [[channel.pk, CHANNEL_ALERT_PUSH]]


def test_douyin_pushes_with_a_wrong_event_sign_count_too(client, sent):
    from strategies.platforms.douyin.fake import FakeDouyin
    from tests.strategies.platforms.channels.conftest import connect_douyin

    with FakeDouyin() as fake:
        shop = make_shop(code="dy-alerts", phone="13800000000")
        connect_douyin(shop, fake)
        url = f"/platforms/douyin/push/{fake.app_key}"
        for _ in range(3):
            answer = client.post(
                url, data=b"[]", content_type="application/json", HTTP_EVENT_SIGN="0" * 32
            )
            assert answer.status_code == 401
    channel = Channel.objects.get(shop=shop)
    assert [a for n, a in sent if n == CHANNEL_ALERT_TASK] == [[channel.pk, CHANNEL_ALERT_PUSH]]


def test_polls_failing_in_a_row_alert_once_per_outage_and_a_good_poll_rearms_it(
    ks_fake, ks_shop, sent, published, smtp_server, sms_provider
):
    from strategies.pipeline.channels import POLL_FAILURES_ALERT, ChannelUnavailable, channel_poll
    from strategies.pipeline.publish import CHANNEL_ALERT_POLL
    from strategies.platforms.kuaishou.client import REFUND_LIST

    channel = Channel.objects.get(shop=ks_shop)

    def polls_failing(n: int, *steps) -> None:
        ks_fake.script(REFUND_LIST, *steps * n)
        for _ in range(n):
            with pytest.raises(ChannelUnavailable):
                channel_poll(channel_id=channel.pk)

    polls_failing(POLL_FAILURES_ALERT - 1, 500)
    assert [a for n, a in sent if n == CHANNEL_ALERT_TASK] == []
    channel_poll(channel_id=channel.pk)  # one good poll: the count starts again
    assert Channel.objects.get(pk=channel.pk).poll_failures == 0
    polls_failing(POLL_FAILURES_ALERT - 1, "rate_limit")
    assert [a for n, a in sent if n == CHANNEL_ALERT_TASK] == []
    polls_failing(3, "garbage")  # the fifth in a row alerts, the later ones do not
    assert [a for n, a in sent if n == CHANNEL_ALERT_TASK] == [[channel.pk, CHANNEL_ALERT_POLL]]
    assert Channel.objects.get(pk=channel.pk).poll_failures == POLL_FAILURES_ALERT + 2

    assert raise_alerts(sent) == [True, False]
    send_all(published)
    [notice] = Notice.objects.filter(shop=ks_shop)
    assert f"连续 {POLL_FAILURES_ALERT + 2} 次轮询" in notice.body  # the shop's language
    assert len(smtp_server.handler.messages) == 1 and len(sms_provider.received) == 1

    # Polling works again: the next outage is told too.
    sent.clear()
    channel_poll(channel_id=channel.pk)
    assert Channel.objects.get(pk=channel.pk).poll_alerted_at is None
    polls_failing(POLL_FAILURES_ALERT, 500)
    assert [a for n, a in sent if n == CHANNEL_ALERT_TASK] == [[channel.pk, CHANNEL_ALERT_POLL]]


def test_a_poll_refused_for_its_token_counts_for_the_auth_alert_not_this_one(
    ks_fake, ks_shop, sent
):
    from strategies.pipeline.channels import POLL_FAILURES_ALERT, ChannelUnavailable, channel_poll
    from strategies.platforms.kuaishou.client import REFUND_LIST

    channel = Channel.objects.get(shop=ks_shop)
    ks_fake.script(REFUND_LIST, *["auth"] * POLL_FAILURES_ALERT)
    for _ in range(POLL_FAILURES_ALERT):
        with pytest.raises(ChannelUnavailable):
            channel_poll(channel_id=channel.pk)
    assert Channel.objects.get(pk=channel.pk).poll_failures == 0
    assert [a for n, a in sent if n == CHANNEL_ALERT_TASK] == []
