"""Agreeing on Douyin: the fresh update_time guard, once only, and the error mapping."""

import json
from decimal import Decimal

import pytest

from strategies.platforms.channel import ApproveState
from strategies.platforms.douyin.client import AFTERSALE_DETAIL, AFTERSALE_OPERATE
from strategies.platforms.fakeserver import json_reply

AMOUNT = Decimal("9.90")


def approve(channel, aftersale_id, **kwargs):
    kwargs.setdefault("action", "approve_refund")
    kwargs.setdefault("amount", AMOUNT)
    kwargs.setdefault("request_type", "refund_only")
    return channel.approve(aftersale_id=aftersale_id, **kwargs)


def operate_params(fake):
    return [json.loads(c.body) for c in fake.calls_of(AFTERSALE_OPERATE)]


def test_a_refund_only_request_is_agreed_with_type_201_and_the_fresh_update_time(
    fake, channel, shipped_990
):
    version = fake.aftersales[shipped_990]["update_time"]
    result = approve(channel, shipped_990)
    assert result.state == ApproveState.EXECUTED
    assert result.calls == [AFTERSALE_DETAIL, AFTERSALE_OPERATE]
    assert operate_params(fake) == [
        {"items": [{"aftersale_id": "7000000000000000001", "update_time": version}], "type": 201}
    ]
    assert fake.aftersales[shipped_990]["after_sale_status"] == 12


def test_a_second_agreement_makes_no_second_call(fake, channel, shipped_990):
    approve(channel, shipped_990)
    again = approve(channel, shipped_990)
    assert again.state == ApproveState.DONE_ELSEWHERE
    assert len(fake.agreements) == 1 and len(fake.calls_of(AFTERSALE_OPERATE)) == 1


def test_a_request_changed_under_the_call_is_read_again_and_agreed_on_the_new_version(
    fake, channel, shipped_990
):
    def modify_first(server, call):
        server.update_aftersale(shipped_990, reason="七天无理由")  # still 9.90, still waiting
        return server.handle(call)  # the guard refuses the stale update_time

    fake.script(AFTERSALE_OPERATE, modify_first)
    result = approve(channel, shipped_990)
    assert result.state == ApproveState.EXECUTED
    first, second = operate_params(fake)
    assert second["items"][0]["update_time"] > first["items"][0]["update_time"]
    assert len(fake.agreements) == 1


def test_a_request_whose_amount_changed_under_the_call_is_superseded(fake, channel, shipped_990):
    def raise_amount(server, call):
        server.update_aftersale(shipped_990, refund_total_amount=1990)
        return server.handle(call)

    fake.script(AFTERSALE_OPERATE, raise_amount)
    result = approve(channel, shipped_990)
    assert result.state == ApproveState.SUPERSEDED
    assert fake.agreements == []


def test_a_request_closed_under_the_call_is_superseded(fake, channel, shipped_990):
    def close(server, call):
        server.update_aftersale(shipped_990, after_sale_status=28)
        return server.handle(call)

    fake.script(AFTERSALE_OPERATE, close)
    assert approve(channel, shipped_990).state == ApproveState.SUPERSEDED
    fake.update_aftersale(shipped_990, after_sale_status=6)
    fake.script(AFTERSALE_OPERATE, close)
    assert approve(channel, shipped_990, after_ambiguous=True).state == ApproveState.UNKNOWN


def test_a_refusal_of_an_unchanged_request_is_failed(fake, channel, shipped_990):
    fake.script(AFTERSALE_OPERATE, "11001", "11001")
    assert approve(channel, shipped_990).state == ApproveState.FAILED
    assert approve(channel, shipped_990, after_ambiguous=True).state == ApproveState.UNKNOWN


@pytest.mark.parametrize("step", ["timeout_after", "drip"])
def test_an_unanswered_agreement_that_went_through_is_executed(fake, channel, shipped_990, step):
    fake.script(AFTERSALE_OPERATE, step)
    result = approve(channel, shipped_990)
    assert result.state == ApproveState.EXECUTED
    assert result.calls == [AFTERSALE_DETAIL, AFTERSALE_OPERATE, AFTERSALE_DETAIL]


@pytest.mark.parametrize("step", ["timeout", 500, "garbage", "system_error"])
def test_an_unanswered_agreement_that_did_not_go_through_is_unknown(
    fake, channel, shipped_990, step
):
    fake.script(AFTERSALE_OPERATE, step)
    assert approve(channel, shipped_990).state == ApproveState.UNKNOWN
    assert fake.agreements == []
    result = approve(channel, shipped_990, after_ambiguous=True)  # still waiting: act now
    assert result.state == ApproveState.EXECUTED and len(fake.agreements) == 1


def test_a_rate_limit_and_an_auth_failure_are_retried(fake, channel, shipped_990):
    fake.script(AFTERSALE_OPERATE, "rate_limit", "auth")
    limited = approve(channel, shipped_990)
    assert limited.state == ApproveState.RETRY and limited.retry_after > 0
    refused = approve(channel, shipped_990)
    assert refused.state == ApproveState.RETRY and refused.auth_failed
    assert fake.agreements == []


def test_an_item_refused_inside_a_success_is_not_executed(fake, channel, shipped_990):
    answer = {
        "code": 10000,
        "msg": "success",
        "data": {"items": [{"aftersale_id": 1, "status_code": 3, "status_msg": "x"}]},
    }
    fake.script(AFTERSALE_OPERATE, lambda server, call: json_reply(answer))
    assert approve(channel, shipped_990).state == ApproveState.FAILED


def test_an_amount_changed_before_acting_is_superseded_without_a_call(fake, channel, shipped_990):
    fake.update_aftersale(shipped_990, refund_total_amount=500)
    assert approve(channel, shipped_990).state == ApproveState.SUPERSEDED
    assert fake.calls_of(AFTERSALE_OPERATE) == []


def test_a_return_is_agreed_with_type_101_and_the_return_address(fake, channel):
    fake.add_order("6002", status=3)
    fake.add_aftersale("7000000000000000002", order_id="6002", amount=990, kind=0)
    result = approve(
        channel, "7000000000000000002", action="approve_return", request_type="return_refund"
    )
    assert result.state == ApproveState.EXECUTED
    [param] = operate_params(fake)
    assert param["type"] == 101
    assert param["items"][0]["logistics"] == {"receiver_address_id": 66}


def test_a_return_is_never_agreed_as_refund_only(fake, channel):
    fake.add_order("6003", status=3)
    fake.add_aftersale("7000000000000000003", order_id="6003", amount=990, kind=0)
    result = approve(channel, "7000000000000000003", request_type="return_refund")
    assert result.state == ApproveState.FAILED
    assert fake.calls_of(AFTERSALE_OPERATE) == []


def test_a_fetched_990_request_is_agreed(fake, channel, shipped_990):
    request = channel.fetch(shipped_990).request
    assert (request.amount, request.type, request.order.status) == (
        Decimal("9.90"),
        "refund_only",
        "shipped",
    )
    result = channel.approve(
        aftersale_id=request.aftersale_id,
        action="approve_refund",
        amount=request.amount,
        request_type=request.type,
    )
    assert result.state == ApproveState.EXECUTED
    assert len(fake.agreements) == 1


# --- refusing (the review queue) -------------------------------------------------------------


def test_a_refusal_is_an_operate_202_with_the_fresh_update_time_and_happens_once(
    fake, channel, shipped_990
):
    version = fake.aftersales[shipped_990]["update_time"]
    result = channel.reject(aftersale_id=shipped_990, reason="商品已使用", version=version)
    assert result.state == ApproveState.EXECUTED
    assert result.calls == [AFTERSALE_DETAIL, AFTERSALE_OPERATE]
    [(_, item)] = fake.refusals
    assert item == {"aftersale_id": shipped_990, "update_time": version, "reason": "商品已使用"}
    assert fake.aftersales[shipped_990]["after_sale_status"] == 27
    again = channel.reject(aftersale_id=shipped_990, reason="商品已使用")
    assert again.state == ApproveState.DONE_ELSEWHERE
    assert len(fake.calls_of(AFTERSALE_OPERATE)) == 1


def test_a_refusal_of_a_request_changed_since_it_was_seen_is_not_sent(fake, channel, shipped_990):
    seen = fake.aftersales[shipped_990]["update_time"]
    fake.update_aftersale(shipped_990, refund_total_amount=500)
    result = channel.reject(aftersale_id=shipped_990, reason="商品已使用", version=seen)
    assert result.state == ApproveState.SUPERSEDED
    assert fake.calls_of(AFTERSALE_OPERATE) == []


def test_a_refusal_refused_because_the_request_changed_on_the_way_is_not_resent(
    fake, channel, shipped_990
):
    def changes_first(server, call):
        server.update_aftersale(shipped_990, refund_total_amount=500)
        return server.handle(call)

    fake.script(AFTERSALE_OPERATE, changes_first)
    result = channel.reject(aftersale_id=shipped_990, reason="商品已使用")
    assert result.state == ApproveState.SUPERSEDED
    assert len(fake.calls_of(AFTERSALE_OPERATE)) == 1 and fake.refusals == []


def test_a_return_request_is_not_refused_from_atom(fake, channel):
    fake.add_order("6009", status=3)
    fake.add_aftersale("7000000000000000009", order_id="6009", amount=990, kind=0)
    result = channel.reject(aftersale_id="7000000000000000009", reason="商品已使用")
    assert result.state == ApproveState.FAILED and "console" in result.message
    assert fake.calls_of(AFTERSALE_OPERATE) == []
