"""Douyin wired into ATOM against the fake Douyin: push with ``event-sign`` → decision →
``/afterSale/operate`` with the fresh ``update_time``; a wrong signature stores nothing."""

import json
from decimal import Decimal

import pytest

from strategies.models import AfterSaleRequest, DailyLedger, PushMessage
from strategies.pipeline.channels import channel_poll
from strategies.pipeline.publish import EXECUTE_TASK, PUSH_TASK
from strategies.platforms.douyin.client import AFTERSALE_OPERATE
from strategies.platforms.douyin.signing import event_sign

pytestmark = pytest.mark.django_db(transaction=True)


def push_url(fake) -> str:
    return f"/platforms/douyin/push/{fake.app_key}"


def post(client, fake, messages, *, signature: str = ""):
    body = json.dumps(messages, ensure_ascii=False, separators=(",", ":")).encode()
    sign = signature or event_sign(app_key=fake.app_key, app_secret=fake.app_secret, body=body)
    return client.post(
        push_url(fake), data=body, content_type="application/json", HTTP_EVENT_SIGN=sign
    )


@pytest.fixture
def shipped_990(dy_fake) -> str:
    dy_fake.add_order("6001", status=3, items=[(3001, "T-shirt", 1, 990)])
    dy_fake.add_aftersale("7000000000000000001", order_id="6001", amount=990, kind=1)
    return "7000000000000000001"


def test_a_douyin_push_is_decided_and_agreed_once_through_operate(
    client, dy_fake, dy_shop, shipped_990, sent, drain
):
    message = dy_fake.message(shipped_990)
    answer = post(client, dy_fake, [message, message])  # a duplicate inside one push too
    assert answer.status_code == 200
    assert answer.json() == {"code": 0, "msg": "success"}
    assert [name for name, _ in sent] == [PUSH_TASK]
    drain(skip=frozenset({EXECUTE_TASK}))
    request = AfterSaleRequest.objects.get(shop=dy_shop, aftersale_id=shipped_990)
    assert (request.status, request.amount) == ("approved", Decimal("9.90"))
    moved = dy_fake.update_aftersale(shipped_990, reason="改了理由")  # still waiting: new version
    sent.append((EXECUTE_TASK, [request.decision.pk]))
    drain()
    request.refresh_from_db()
    assert request.status == "executed"
    [call] = dy_fake.calls_of(AFTERSALE_OPERATE)
    param = json.loads(call.params.get("param_json") or call.body)
    assert param["type"] == 201
    assert param["items"] == [{"aftersale_id": shipped_990, "update_time": moved["update_time"]}]

    assert post(client, dy_fake, [message]).status_code == 200
    assert sent == []
    channel_poll(channel_id=dy_shop.channel.pk)
    drain()
    assert len(dy_fake.calls_of(AFTERSALE_OPERATE)) == 1
    assert AfterSaleRequest.objects.filter(shop=dy_shop).count() == 1
    assert DailyLedger.objects.get(shop=dy_shop).consumed == Decimal("9.90")


def test_a_wrong_event_sign_is_a_401_and_stores_nothing(
    client, dy_fake, dy_shop, sent, shipped_990
):
    answer = post(client, dy_fake, [dy_fake.message(shipped_990)], signature="0" * 32)
    assert answer.status_code == 401
    body = json.dumps([dy_fake.message(shipped_990)]).encode()
    unsigned = client.post(push_url(dy_fake), data=body, content_type="application/json")
    assert unsigned.status_code == 401
    assert PushMessage.objects.count() == 0
    assert sent == []


def test_a_refund_closed_on_douyin_before_the_decision_is_superseded(
    client, dy_fake, dy_shop, shipped_990, sent, drain
):
    post(client, dy_fake, [dy_fake.message(shipped_990)])
    drain(skip=frozenset({"strategies.decide_request"}))
    dy_fake.update_aftersale(shipped_990, after_sale_status=28)
    post(client, dy_fake, [dy_fake.message(shipped_990, tag="207")])
    sent.append(("strategies.decide_request", [AfterSaleRequest.objects.get().pk]))
    assert ("strategies.decide_request", "nothing to decide") in drain()
    assert AfterSaleRequest.objects.get(aftersale_id=shipped_990).status == "superseded"
    assert dy_fake.calls_of(AFTERSALE_OPERATE) == []
