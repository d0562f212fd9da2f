"""RELIABILITY.md 34 end to end: the fake Kuaishou pushes encrypted messages to the live push
endpoint, a real Celery worker over Redis fetches, decides and approves; the push again and a
poll change nothing. Douyin's push → decision → ``/afterSale/operate`` the same way."""

import time
from decimal import Decimal

import pytest

from strategies.models import AfterSaleRequest, DailyLedger, PushMessage
from strategies.pipeline.channels import channel_poll
from strategies.platforms.douyin.client import AFTERSALE_OPERATE
from strategies.platforms.kuaishou.client import REFUND_APPROVE
from tests.worker import wait_until

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


def status_of(shop, aftersale_id) -> str:
    row = AfterSaleRequest.objects.filter(shop=shop, aftersale_id=aftersale_id).first()
    return row.status if row and row.status not in ("received", "approved") else ""


def test_a_kuaishou_push_twice_then_a_poll_make_one_request_and_one_approval(
    live_server, celery_worker, ks_fake, ks_shop
):
    ks_fake.add_order("5001", status=40, items=[(9001, "T-shirt", 1, 990)])
    ks_fake.add_refund("7001", order_id="5001", fee=990, handling_way=10)
    celery_worker()
    url = f"{live_server.url}/platforms/kuaishou/push/{ks_fake.app_key}"
    envelope = ks_fake.envelope("7001")
    first = ks_fake.push(url, envelope)
    assert first.status_code == 200 and first.json() == {"result": 1}
    second = ks_fake.push(url, envelope)  # the platform's retry
    assert second.status_code == 200 and second.json() == {"result": 1}
    assert all(seconds < 3.0 for _, _, seconds in ks_fake.pushes)
    assert wait_until(lambda: status_of(ks_shop, "7001"), timeout=60) == "executed"
    channel_poll(channel_id=ks_shop.channel.pk)
    time.sleep(2)  # time for anything the poll may have queued
    [approval] = ks_fake.approvals_of("7001")
    assert approval["refundAmount"] == 990
    assert (approval["status"], approval["negotiateStatus"], approval["refundHandingWay"]) == (
        10,
        1,
        10,
    )
    assert len(ks_fake.calls_of(REFUND_APPROVE)) == 1
    assert AfterSaleRequest.objects.filter(shop=ks_shop).count() == 1
    assert PushMessage.objects.count() == 1
    assert wait_until(lambda: PushMessage.objects.get().processed_at, timeout=10)
    assert DailyLedger.objects.get(shop=ks_shop).consumed == Decimal("9.90")


def test_a_douyin_push_is_agreed_once_by_the_worker(live_server, celery_worker, dy_fake, dy_shop):
    dy_fake.add_order("6001", status=3, items=[(3001, "T-shirt", 1, 990)])
    dy_fake.add_aftersale("7000000000000000001", order_id="6001", amount=990, kind=1)
    celery_worker()
    url = f"{live_server.url}/platforms/douyin/push/{dy_fake.app_key}"
    message = dy_fake.message("7000000000000000001")
    answer = dy_fake.push(url, [message])
    assert answer.status_code == 200 and answer.json() == {"code": 0, "msg": "success"}
    assert dy_fake.push(url, [message]).status_code == 200
    assert wait_until(lambda: status_of(dy_shop, "7000000000000000001"), timeout=60) == "executed"
    assert len(dy_fake.calls_of(AFTERSALE_OPERATE)) == 1
