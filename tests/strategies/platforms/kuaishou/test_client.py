"""The thin Kuaishou client against the fake platform: signed calls, verbs, errors, deadlines."""

import json
import time

import pytest

from strategies.platforms.fakeserver import json_reply
from strategies.platforms.kuaishou.client import (
    ORDER_DETAIL,
    REFUND_APPROVE,
    REFUND_DETAIL,
    Credentials,
    ErrorKind,
    KuaishouClient,
    KuaishouError,
    classify,
    path_of,
)
from strategies.platforms.kuaishou.signing import MD5, signature_matches


def client_for(fake, **changes) -> KuaishouClient:
    access, _ = fake.issue_tokens()
    fields = {
        "app_key": fake.app_key,
        "app_secret": fake.app_secret,
        "sign_secret": fake.sign_secret,
        "access_token": access,
        "api_base": fake.url,
        **changes,
    }
    return KuaishouClient(Credentials(**fields), deadline=1.0)


def test_the_path_is_the_method_with_slashes():
    assert path_of("open.seller.order.refund.approve") == "/open/seller/order/refund/approve"


@pytest.mark.parametrize("sign_method", ["HMAC_SHA256", MD5])
def test_a_read_is_a_signed_get_the_fake_verifies(fake, shipped_990, sign_method):
    detail = client_for(fake, sign_method=sign_method).refund_detail(shipped_990)
    assert detail["refundFee"] == 990
    [call] = fake.calls_of(REFUND_DETAIL)
    assert call.verb == "GET" and call.path == "/open/seller/order/refund/detail"
    assert call.params["signMethod"] == sign_method
    assert json.loads(call.params["param"]) == {"refundId": 7001}
    assert signature_matches(call.params, sign_secret=fake.sign_secret)


def test_a_write_is_a_post_with_the_appkey_in_the_query(fake, shipped_990):
    client_for(fake).refund_approve(
        refund_id=shipped_990, amount_fen=990, status=10, negotiate_status=1, handling=10
    )
    [call] = fake.calls_of(REFUND_APPROVE)
    assert call.verb == "POST"
    assert call.query == {"appkey": fake.app_key}
    assert call.params["param"] == (
        '{"refundId":7001,"refundAmount":990,"status":10,"negotiateStatus":1,"refundHandingWay":10}'
    )


def test_the_wrong_sign_secret_is_refused_by_the_fake(fake, shipped_990):
    with pytest.raises(KuaishouError) as exc:
        client_for(fake, sign_secret="not-the-sign-secret").refund_detail(shipped_990)
    assert exc.value.kind == ErrorKind.AUTH
    assert "签名校验失败" in exc.value.message


def test_an_unknown_access_token_is_an_auth_error(fake, shipped_990):
    with pytest.raises(KuaishouError) as exc:
        client_for(fake, access_token="at-forged").refund_detail(shipped_990)
    assert exc.value.kind == ErrorKind.AUTH


def test_an_expired_access_token_is_an_auth_error(fake, shipped_990):
    client = client_for(fake)
    fake.access_tokens[client.credentials.access_token] = time.time() - 1
    with pytest.raises(KuaishouError) as exc:
        client.refund_detail(shipped_990)
    assert exc.value.kind == ErrorKind.AUTH


def test_a_business_code_is_a_refusal_with_its_code(fake, shipped_990):
    fake.script(REFUND_APPROVE, "300013")
    with pytest.raises(KuaishouError) as exc:
        client_for(fake).refund_approve(
            refund_id=shipped_990, amount_fen=990, status=10, negotiate_status=1, handling=10
        )
    assert exc.value.kind == ErrorKind.REFUSED
    assert "300013" in exc.value.codes


def test_a_rate_limit_is_recognised(fake, shipped_990):
    fake.script(REFUND_DETAIL, "rate_limit")
    with pytest.raises(KuaishouError) as exc:
        client_for(fake).refund_detail(shipped_990)
    assert exc.value.kind == ErrorKind.RATE_LIMITED


def test_the_fake_limits_qps(fake, shipped_990):
    fake.max_qps = 2
    client = client_for(fake)
    client.refund_detail(shipped_990)
    client.refund_detail(shipped_990)
    with pytest.raises(KuaishouError) as exc:
        client.refund_detail(shipped_990)
    assert exc.value.kind == ErrorKind.RATE_LIMITED


@pytest.mark.parametrize(
    ("answer", "kind"),
    [
        ({"result": 802000, "error_msg": "x"}, ErrorKind.RATE_LIMITED),
        (
            {"result": 21, "error_msg": "Exceed quota limit, KEY [appkey:ks1]"},
            ErrorKind.RATE_LIMITED,
        ),
        ({"result": 24, "error_msg": "AUTHORIZATION_REVOKED"}, ErrorKind.AUTH),
        ({"result": 26, "error_msg": "主账号不存在"}, ErrorKind.AUTH),
        ({"result": 0, "error_msg": "访问接口时返回鉴权失败"}, ErrorKind.AUTH),
        # 21 is a business refusal on the support pages, not an auth error.
        ({"result": 21, "error_msg": "order operation reject"}, ErrorKind.REFUSED),
        ({"result": 0, "code": "300014", "error_msg": "REFUND ORDER UPDATED"}, ErrorKind.REFUSED),
    ],
)
def test_error_answers_are_classified(answer, kind):
    assert classify(answer) == kind


def test_a_code_in_the_code_field_is_kept(fake, shipped_990):
    answer = {"result": 0, "code": "300014", "error_msg": "REFUND ORDER UPDATED"}
    fake.script(REFUND_DETAIL, lambda server, call: json_reply(answer))
    with pytest.raises(KuaishouError) as exc:
        client_for(fake).refund_detail(shipped_990)
    assert "300014" in exc.value.codes


@pytest.mark.parametrize("step", ["timeout", "timeout_after", "drip"])
def test_a_silent_or_dripping_platform_is_cut_at_the_deadline(fake, shipped_990, step):
    fake.script(ORDER_DETAIL, step)
    fake.add_order("5001")
    started = time.monotonic()
    with pytest.raises(KuaishouError) as exc:
        client_for(fake).order_detail("5001")
    assert time.monotonic() - started < 1.8
    assert exc.value.kind == ErrorKind.AMBIGUOUS


@pytest.mark.parametrize("step", [500, 302, "garbage"])
def test_no_business_answer_is_ambiguous(fake, shipped_990, step):
    fake.script(REFUND_DETAIL, step)
    with pytest.raises(KuaishouError) as exc:
        client_for(fake).refund_detail(shipped_990)
    assert exc.value.kind == ErrorKind.AMBIGUOUS
    assert len(fake.calls_of(REFUND_DETAIL)) == 1  # a 302 is not followed


def test_a_closed_port_is_not_sent(fake, shipped_990):
    url = fake.url
    fake.stop()
    with pytest.raises(KuaishouError) as exc:
        client_for(fake, api_base=url).refund_detail(shipped_990)
    assert exc.value.kind == ErrorKind.NOT_SENT
