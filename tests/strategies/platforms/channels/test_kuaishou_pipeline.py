"""Kuaishou wired into ATOM, in process against the fake Kuaishou (a real HTTP server) and the
real PostgreSQL: the issue's acceptance test and RELIABILITY.md 34-36 and 38."""

import datetime as dt
import json
from decimal import Decimal

import pytest
from django.utils import timezone

from strategies.models import AfterSaleRequest, Channel, DailyLedger, Decision, PushMessage
from strategies.pipeline.channels import channel_poll
from strategies.pipeline.publish import EXECUTE_TASK, PUSH_TASK
from strategies.platforms.kuaishou.client import REFUND_APPROVE, REFUND_DETAIL
from strategies.platforms.kuaishou.messages import UPDATE_REFUND, encrypt_message

pytestmark = pytest.mark.django_db(transaction=True)


def push_url(fake) -> str:
    return f"/platforms/kuaishou/push/{fake.app_key}"


def post(client, fake, envelope: dict):
    body = encrypt_message(json.dumps(envelope, ensure_ascii=False), message_key=fake.message_key)
    return client.post(push_url(fake), data=body, content_type="text/plain;charset=utf-8")


@pytest.fixture
def shipped_990(ks_fake) -> str:
    ks_fake.add_order("5001", status=40, items=[(9001, "T-shirt", 1, 990)])
    ks_fake.add_refund("7001", order_id="5001", fee=990, handling_way=10)
    return "7001"


def test_a_push_of_a_990_refund_only_request_is_approved_once_with_990_fen_and_a_fresh_echo(
    client, ks_fake, ks_shop, shipped_990, sent, drain
):
    envelope = ks_fake.envelope(shipped_990)
    answer = post(client, ks_fake, envelope)
    assert answer.status_code == 200
    assert answer.json() == {"result": 1}
    # Answered before any platform call: the work is queued.
    assert ks_fake.calls_of(REFUND_DETAIL) == []
    assert [name for name, _ in sent] == [PUSH_TASK]

    drain(skip=frozenset({EXECUTE_TASK}))
    request = AfterSaleRequest.objects.get(shop=ks_shop, aftersale_id=shipped_990)
    assert request.status == "approved"
    assert request.amount == Decimal("9.90")
    # The refund moves on the platform (still waiting for the seller) after the decision: the
    # approval echoes what a fresh read says, not what the push or the fetch said.
    ks_fake.update_refund(shipped_990, status=11)
    sent.append((EXECUTE_TASK, [request.decision.pk]))
    drain()

    request.refresh_from_db()
    assert request.status == "executed"
    [approval] = ks_fake.approvals_of(shipped_990)
    assert approval == {
        "refundId": 7001,
        "refundAmount": 990,
        "status": 11,
        "negotiateStatus": 1,
        "refundHandingWay": 10,
    }
    assert len(ks_fake.calls_of(REFUND_APPROVE)) == 1

    # The same push again, then a poll that sees the same refund: nothing changes.
    again = post(client, ks_fake, envelope)
    assert again.status_code == 200 and again.json() == {"result": 1}
    assert sent == []
    assert PushMessage.objects.count() == 1
    outcome = channel_poll(channel_id=ks_shop.channel.pk)
    assert outcome.seen == 1 and outcome.synced == {}
    drain()
    assert AfterSaleRequest.objects.filter(shop=ks_shop).count() == 1
    assert Decision.objects.filter(shop=ks_shop).count() == 1
    assert len(ks_fake.calls_of(REFUND_APPROVE)) == 1
    assert DailyLedger.objects.get(shop=ks_shop).consumed == Decimal("9.90")
    channel = Channel.objects.get(shop=ks_shop)
    assert channel.last_push_at is not None and channel.last_poll_at is not None


def test_a_push_lost_for_good_is_found_by_the_next_poll(ks_fake, ks_shop, shipped_990, drain):
    outcome = channel_poll(channel_id=ks_shop.channel.pk)
    assert outcome.synced == {shipped_990: "received"}
    drain()
    assert AfterSaleRequest.objects.get(aftersale_id=shipped_990).status == "executed"
    assert len(ks_fake.approvals_of(shipped_990)) == 1
    # The high-water mark moved: the next poll starts from there, and changes nothing.
    channel = Channel.objects.get(shop=ks_shop)
    assert channel.poll_high_water is not None
    channel_poll(channel_id=channel.pk)
    drain()
    assert len(ks_fake.approvals_of(shipped_990)) == 1


def decided(client, fake, refund_id, drain) -> AfterSaleRequest:
    post(client, fake, fake.envelope(refund_id))
    drain(skip=frozenset({EXECUTE_TASK}))
    request = AfterSaleRequest.objects.get(aftersale_id=refund_id)
    assert request.status == "approved"
    return request


def execute(request, sent, drain) -> AfterSaleRequest:
    sent.append((EXECUTE_TASK, [request.decision.pk]))
    drain()
    request.refresh_from_db()
    return request


def test_a_buyer_who_cancels_before_the_execution_supersedes_it_and_releases(
    client, ks_fake, ks_shop, shipped_990, sent, drain
):
    request = decided(client, ks_fake, shipped_990, drain)
    assert DailyLedger.objects.get().consumed == Decimal("9.90")
    ks_fake.script(REFUND_APPROVE, "300013")
    request = execute(request, sent, drain)
    assert request.status == "superseded"
    assert DailyLedger.objects.get().consumed == Decimal("0.00")
    assert ks_fake.approvals_of(shipped_990) == []


def test_an_amount_changed_before_the_execution_is_never_approved_on_stale_data(
    client, ks_fake, ks_shop, shipped_990, sent, drain
):
    request = decided(client, ks_fake, shipped_990, drain)
    ks_fake.update_refund(shipped_990, refundFee=1500)
    request = execute(request, sent, drain)
    assert request.status == "superseded"
    assert ks_fake.calls_of(REFUND_APPROVE) == []
    assert DailyLedger.objects.get().consumed == Decimal("0.00")


def test_a_300014_is_re_read_once_and_approved_when_still_eligible(
    client, ks_fake, ks_shop, shipped_990, sent, drain
):
    request = decided(client, ks_fake, shipped_990, drain)
    ks_fake.script(REFUND_APPROVE, "300014")
    request = execute(request, sent, drain)
    assert request.status == "executed"
    assert len(ks_fake.calls_of(REFUND_APPROVE)) == 2
    assert len(ks_fake.approvals_of(shipped_990)) == 1


def test_an_update_push_of_a_closed_refund_supersedes_the_pending_approval(
    client, ks_fake, ks_shop, shipped_990, sent, drain
):
    request = decided(client, ks_fake, shipped_990, drain)
    ks_fake.update_refund(shipped_990, status=20, negotiateStatus=3)  # closed by the buyer
    post(client, ks_fake, ks_fake.envelope(shipped_990, event=UPDATE_REFUND))
    results = drain()
    assert (EXECUTE_TASK, "superseded") in results
    request.refresh_from_db()
    assert request.status == "superseded"
    assert ks_fake.calls_of(REFUND_APPROVE) == []
    assert DailyLedger.objects.get().consumed == Decimal("0.00")


def test_a_refund_agreed_on_the_platform_without_us_is_done_elsewhere(
    client, ks_fake, ks_shop, shipped_990, sent, drain
):
    request = decided(client, ks_fake, shipped_990, drain)
    ks_fake.update_refund(shipped_990, status=60, negotiateStatus=2)
    request = execute(request, sent, drain)
    assert request.status == "done_elsewhere"
    assert ks_fake.calls_of(REFUND_APPROVE) == []
    assert DailyLedger.objects.get().consumed == Decimal("0.00")


def test_an_update_before_the_decision_is_decided_on_the_fresh_amount(
    client, ks_fake, ks_shop, shipped_990, sent, drain
):
    post(client, ks_fake, ks_fake.envelope(shipped_990))
    drain(skip=frozenset({"strategies.decide_request", EXECUTE_TASK}))
    ks_fake.update_refund(shipped_990, refundFee=500)
    post(client, ks_fake, ks_fake.envelope(shipped_990, event=UPDATE_REFUND))
    drain()
    request = AfterSaleRequest.objects.get(aftersale_id=shipped_990)
    assert request.status == "received"
    # The decision queued at intake runs now, on what the update stored.
    sent.append(("strategies.decide_request", [request.pk]))
    drain()
    request.refresh_from_db()
    assert request.amount == Decimal("5.00")
    assert request.status == "executed"
    assert ks_fake.approvals_of(shipped_990)[0]["refundAmount"] == 500


def test_an_undecryptable_push_is_a_400_and_stores_nothing(client, ks_fake, ks_shop, sent):
    answer = client.post(
        push_url(ks_fake), data=b"bm90IGEgY2lwaGVydGV4dA==", content_type="text/plain"
    )
    assert answer.status_code == 400
    other_key = encrypt_message('{"eventId":"x"}', message_key="MDEyMzQ1Njc4OWFiY2RlZg==")
    assert (
        client.post(push_url(ks_fake), data=other_key, content_type="text/plain").status_code == 400
    )
    assert PushMessage.objects.count() == 0
    assert sent == []
    assert Channel.objects.get(shop=ks_shop).last_push_at is None


def test_a_push_for_an_unknown_app_is_refused(client, ks_fake, ks_shop):
    answer = client.post("/platforms/kuaishou/push/nobody", data=b"x", content_type="text/plain")
    assert answer.status_code == 401
    assert PushMessage.objects.count() == 0


def test_a_heartbeat_is_answered_and_stores_nothing(client, ks_fake, ks_shop):
    body = encrypt_message('{"test":true}', message_key=ks_fake.message_key)
    answer = client.post(push_url(ks_fake), data=body, content_type="text/plain")
    assert answer.status_code == 200 and answer.json() == {"result": 1}
    assert PushMessage.objects.count() == 0
    assert Channel.objects.get(shop=ks_shop).last_push_at <= timezone.now()


def test_the_poller_windows_start_at_the_high_water_mark_minus_a_margin(ks_fake, ks_shop):
    channel = Channel.objects.get(shop=ks_shop)
    mark = timezone.now() - dt.timedelta(hours=3)
    Channel.objects.filter(pk=channel.pk).update(poll_high_water=mark)
    channel_poll(channel_id=channel.pk)
    [call] = ks_fake.calls_of("open.seller.order.refund.pcursor.list")
    param = json.loads(call.params["param"])
    assert param["queryType"] == 2
    begin = dt.datetime.fromtimestamp(param["beginTime"] / 1000, tz=dt.UTC)
    assert abs((mark - dt.timedelta(minutes=10)) - begin) < dt.timedelta(seconds=1)


def test_an_authentication_refusal_retries_refreshes_the_token_once_then_approves(
    client, ks_fake, ks_shop, shipped_990, sent, drain
):
    request = decided(client, ks_fake, shipped_990, drain)
    old_access = Channel.objects.get(shop=ks_shop).secret("access_token")
    ks_fake.script(REFUND_DETAIL, "auth")
    sent.append((EXECUTE_TASK, [request.decision.pk]))
    results = drain()
    # Nothing was carried out: the execution is retried, and the token refreshed once first.
    assert isinstance(results[0][1], Exception)
    assert ("strategies.refresh_channel_token", "refreshed") in results
    channel = Channel.objects.get(shop=ks_shop)
    assert channel.secret("access_token") != old_access
    assert "鉴权失败" in channel.last_error
    request.refresh_from_db()
    assert request.status == "approved"
    request = execute(request, sent, drain)
    assert request.status == "executed"
    assert len(ks_fake.approvals_of(shipped_990)) == 1


def test_the_open_id_picks_the_shop_among_the_channels_of_one_app_and_a_stranger_is_ignored(
    client, ks_fake, ks_shop, shipped_990, sent
):
    from tests.factories import make_shop

    from .conftest import connect_kuaishou

    other = make_shop(code="ks-other")
    connect_kuaishou(other, ks_fake, merchant_id="another-merchant")
    post(client, ks_fake, ks_fake.envelope(shipped_990))
    stranger = {**ks_fake.envelope(shipped_990), "openId": "stranger"}
    assert post(client, ks_fake, stranger).json() == {"result": 1}
    mine, unknown = PushMessage.objects.order_by("pk")
    assert mine.channel.shop == ks_shop
    assert unknown.channel is None and unknown.note
    assert [name for name, _ in sent] == [PUSH_TASK]


def test_an_unknown_execution_is_settled_paid_once_kuaishou_shows_it_refunded(
    client, ks_fake, ks_shop, shipped_990, drain
):
    from strategies.pipeline.recheck import unknown_executions_recheck

    request = decided(client, ks_fake, shipped_990, drain)
    # Left `unknown` by an attempt Kuaishou never answered clearly.
    AfterSaleRequest.objects.filter(pk=request.pk).update(status="unknown")
    ledger = DailyLedger.objects.get(pk=request.decision.ledger_id)

    # Still waiting for the seller: a late agreement may yet land, so only a person says.
    assert unknown_executions_recheck().still_unknown == [request.decision.pk]
    request.refresh_from_db()
    assert request.status == "unknown"

    ks_fake.refunds[shipped_990]["status"] = 60  # refunded
    assert unknown_executions_recheck().paid == [request.decision.pk]
    request.refresh_from_db()
    assert request.status == "executed"
    ledger.refresh_from_db()
    assert ledger.consumed == Decimal("9.90")
    # Only read, never acted on again.
    assert ks_fake.calls_of(REFUND_APPROVE) == []
