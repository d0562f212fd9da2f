"""The thin Douyin client against the fake: the SDK's envelope, signed; errors; deadlines."""

import json
import time

import pytest
import requests

from strategies.platforms.douyin.client import (
    AFTERSALE_DETAIL,
    Credentials,
    DouyinClient,
    DouyinError,
    ErrorKind,
    classify,
    path_of,
)
from strategies.platforms.douyin.signing import sign


def client_for(fake, **changes) -> DouyinClient:
    access, _ = fake.issue_tokens()
    fields = {
        "app_key": fake.app_key,
        "app_secret": fake.app_secret,
        "access_token": access,
        "api_base": fake.url,
        **changes,
    }
    return DouyinClient(Credentials(**fields), deadline=1.0)


def test_the_path_is_the_method_with_slashes():
    assert path_of("afterSale.Detail") == "/afterSale/Detail"


def test_a_call_is_the_sdks_signed_post(fake, shipped_990):
    data = client_for(fake).aftersale_detail(shipped_990)
    assert data["process_info"]["after_sale_info"]["refund_total_amount"] == 990
    [call] = fake.calls_of(AFTERSALE_DETAIL)
    assert call.verb == "POST" and call.path == "/afterSale/Detail"
    assert call.body == b'{"after_sale_id":"7000000000000000001"}'
    assert call.headers["content-type"] == "application/json"
    query = call.query
    assert (query["method"], query["v"], query["sign_method"]) == (
        "afterSale.Detail",
        "2",
        "hmac-sha256",
    )
    assert query["sign"] == sign(
        app_key=fake.app_key,
        app_secret=fake.app_secret,
        method="afterSale.Detail",
        param_json=call.body.decode(),
        timestamp=query["timestamp"],
    )
    assert abs(int(query["timestamp"]) - time.time()) < 5  # Unix seconds


def test_the_wrong_app_secret_is_refused_by_the_fake(fake, shipped_990):
    with pytest.raises(DouyinError) as exc:
        client_for(fake, app_secret="wrong").aftersale_detail(shipped_990)
    assert exc.value.kind == ErrorKind.AUTH


def test_an_unknown_token_is_an_auth_error(fake, shipped_990):
    with pytest.raises(DouyinError) as exc:
        client_for(fake, access_token="dy-at-forged").aftersale_detail(shipped_990)
    assert exc.value.kind == ErrorKind.AUTH


def test_the_fake_refuses_a_body_that_is_not_sorted_param_json(fake, shipped_990):
    client = client_for(fake)
    body = '{"b":1,"a":2}'
    query = {
        "app_key": fake.app_key,
        "method": "afterSale.Detail",
        "timestamp": str(int(time.time())),
        "v": "2",
        "sign_method": "hmac-sha256",
        "access_token": client.credentials.access_token,
    }
    query["sign"] = sign(
        app_key=fake.app_key,
        app_secret=fake.app_secret,
        method="afterSale.Detail",
        param_json=body,
        timestamp=query["timestamp"],
    )
    answer = requests.post(
        fake.url + "/afterSale/Detail", params=query, data=body, timeout=2
    ).json()
    assert answer["code"] == 40004


@pytest.mark.parametrize(
    ("answer", "kind"),
    [
        ({"code": 20000, "msg": "系统错误"}, ErrorKind.AMBIGUOUS),
        ({"code": 40001, "sub_code": "isv.access-limit-exceeded"}, ErrorKind.RATE_LIMITED),
        ({"code": 40003, "sub_code": "isv.access-token-expired"}, ErrorKind.AUTH),
        (
            {"code": 50002, "sub_code": "isv.business-failed:20309541", "sub_msg": "售后状态错误"},
            ErrorKind.REFUSED,
        ),
    ],
)
def test_error_answers_are_classified(answer, kind):
    assert classify(answer) == kind


@pytest.mark.parametrize("step", ["timeout", "drip", 500, "garbage", 302])
def test_no_usable_answer_is_ambiguous_and_bounded(fake, shipped_990, step):
    fake.script(AFTERSALE_DETAIL, step)
    started = time.monotonic()
    with pytest.raises(DouyinError) as exc:
        client_for(fake).aftersale_detail(shipped_990)
    assert exc.value.kind == ErrorKind.AMBIGUOUS
    assert time.monotonic() - started < 1.8


def test_a_rate_limit_is_recognised(fake, shipped_990):
    fake.script(AFTERSALE_DETAIL, "rate_limit")
    with pytest.raises(DouyinError) as exc:
        client_for(fake).aftersale_detail(shipped_990)
    assert exc.value.kind == ErrorKind.RATE_LIMITED


def test_the_list_asks_by_update_time_in_pages_from_zero(fake, shipped_990):
    now = int(time.time())
    client_for(fake).aftersale_list(start=now - 60, end=now + 60, page=0)
    [call] = fake.calls_of("afterSale.List")
    param = json.loads(call.body)
    assert param["page"] == 0 and param["size"] == 100 and param["order_by"] == ["update_time asc"]
