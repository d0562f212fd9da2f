"""Approving on Kuaishou: the fresh echo, once only, and the error mapping of PLATFORMS.md."""

import json
from decimal import Decimal

import pytest

from strategies.platforms.channel import ApproveState
from strategies.platforms.kuaishou.client import (
    REFUND_APPROVE,
    REFUND_DETAIL,
    REFUND_REJECT,
    REJECT_REASONS,
    RETURN_APPROVE,
    KuaishouError,
)

AMOUNT = Decimal("9.90")


def approve(channel, refund_id="7001", **kwargs):
    kwargs.setdefault("action", "approve_refund")
    kwargs.setdefault("amount", AMOUNT)
    kwargs.setdefault("request_type", "refund_only")
    return channel.approve(aftersale_id=refund_id, **kwargs)


def approve_params(fake):
    return [json.loads(c.params["param"]) for c in fake.calls_of(REFUND_APPROVE)]


def test_a_990_refund_only_on_a_shipped_order_is_approved_with_990_fen_and_the_fresh_echo(
    fake, channel, shipped_990
):
    result = approve(channel)
    assert result.state == ApproveState.EXECUTED
    assert result.calls == [REFUND_DETAIL, REFUND_APPROVE]
    assert approve_params(fake) == [
        {
            "refundId": 7001,
            "refundAmount": 990,
            "status": 10,
            "negotiateStatus": 1,
            "refundHandingWay": 10,
        }
    ]
    assert fake.refunds["7001"]["status"] == 50


def test_the_echo_is_read_fresh_not_remembered(fake, channel, shipped_990):
    fake.update_refund("7001", status=11)  # the platform moved it; still waiting for the seller
    assert approve(channel).state == ApproveState.EXECUTED
    [param] = approve_params(fake)
    assert param["status"] == 11


def test_a_second_approve_is_done_without_a_second_call(fake, channel, shipped_990):
    assert approve(channel).state == ApproveState.EXECUTED
    again = approve(channel)
    assert again.state == ApproveState.DONE_ELSEWHERE
    assert again.calls == [REFUND_DETAIL]
    assert len(fake.approvals) == 1


def test_a_retry_after_an_ambiguous_attempt_that_went_through_is_executed(
    fake, channel, shipped_990
):
    fake.script(REFUND_APPROVE, "timeout_after")
    first = approve(channel)
    assert first.state == ApproveState.EXECUTED  # re-read: status 50, it went through
    assert first.calls == [REFUND_DETAIL, REFUND_APPROVE, REFUND_DETAIL]
    assert approve(channel, after_ambiguous=True).state == ApproveState.EXECUTED
    assert len(fake.approvals) == 1


def test_the_fake_answers_a_second_approve_as_the_platform_does(fake, channel, shipped_990):
    approve(channel)
    # The old echo sent again: the refund no longer waits for the seller.
    with pytest.raises(KuaishouError) as exc:
        channel.client.refund_approve(
            refund_id="7001", amount_fen=990, status=10, negotiate_status=1, handling=10
        )
    assert "300010" in exc.value.codes
    assert len(fake.approvals) == 1


def test_buyer_cancelled_300013_is_superseded(fake, channel, shipped_990):
    fake.script(REFUND_APPROVE, "300013")
    result = approve(channel)
    assert result.state == ApproveState.SUPERSEDED
    assert fake.approvals == []


@pytest.mark.parametrize("code", ["300014", "300017"])
def test_a_changed_refund_is_read_again_and_approved_if_still_eligible(
    fake, channel, shipped_990, code
):
    fake.script(REFUND_APPROVE, code)
    result = approve(channel)
    assert result.state == ApproveState.EXECUTED
    assert result.calls == [REFUND_DETAIL, REFUND_APPROVE, REFUND_DETAIL, REFUND_APPROVE]
    assert len(fake.approvals) == 1


def test_a_changed_refund_no_longer_eligible_is_superseded(fake, channel, shipped_990):
    def change_then_refuse(server, call):
        server.update_refund("7001", refundFee=1290)  # the buyer raised the amount
        return server.error_answer(call, "300014")

    fake.script(REFUND_APPROVE, change_then_refuse)
    result = approve(channel)
    assert result.state == ApproveState.SUPERSEDED
    assert "12.90" in result.message
    assert fake.approvals == []


def test_a_refund_that_changes_twice_is_superseded(fake, channel, shipped_990):
    fake.script(REFUND_APPROVE, "300014", "300014")
    result = approve(channel)
    assert result.state == ApproveState.SUPERSEDED
    assert len(fake.calls_of(REFUND_APPROVE)) == 2


def test_an_amount_changed_before_acting_is_superseded_without_a_call(fake, channel, shipped_990):
    fake.update_refund("7001", refundFee=500)
    result = approve(channel)
    assert result.state == ApproveState.SUPERSEDED
    assert fake.calls_of(REFUND_APPROVE) == []


def test_a_refund_no_longer_waiting_is_superseded_without_a_call(fake, channel, shipped_990):
    fake.update_refund("7001", status=70)  # closed
    result = approve(channel)
    assert result.state == ApproveState.SUPERSEDED
    assert fake.calls_of(REFUND_APPROVE) == []


def test_a_refund_agreed_in_the_console_is_done_elsewhere(fake, channel, shipped_990):
    fake.update_refund("7001", status=60, negotiateStatus=2)
    result = approve(channel)
    assert result.state == ApproveState.DONE_ELSEWHERE
    assert fake.calls_of(REFUND_APPROVE) == []


def test_300010_when_agreed_meanwhile_is_done_elsewhere(fake, channel, shipped_990):
    def agree_meanwhile(server, call):
        server.update_refund("7001", status=50, negotiateStatus=2)
        return server.error_answer(call, "300010")

    fake.script(REFUND_APPROVE, agree_meanwhile)
    assert approve(channel).state == ApproveState.DONE_ELSEWHERE


@pytest.mark.parametrize("code", ["300010", "300018"])
def test_300010_after_an_ambiguous_attempt_and_not_agreed_is_unknown(
    fake, channel, shipped_990, code
):
    def close_then_refuse(server, call):
        server.update_refund("7001", status=20)  # a dispute: the platform stepped in
        return server.error_answer(call, code)

    fake.script(REFUND_APPROVE, close_then_refuse)
    assert approve(channel, after_ambiguous=True).state == ApproveState.UNKNOWN
    fake.update_refund("7001", status=10)
    fake.script(REFUND_APPROVE, close_then_refuse)
    assert approve(channel).state == ApproveState.SUPERSEDED


@pytest.mark.parametrize("step", ["timeout", 500, 502, "garbage", 302])
def test_an_unanswered_attempt_that_did_not_go_through_is_unknown(fake, channel, shipped_990, step):
    fake.script(REFUND_APPROVE, step)
    result = approve(channel)
    assert result.state == ApproveState.UNKNOWN
    assert fake.approvals == []


def test_after_an_ambiguous_attempt_a_refund_still_waiting_is_approved(fake, channel, shipped_990):
    fake.script(REFUND_APPROVE, "timeout")
    assert approve(channel).state == ApproveState.UNKNOWN
    result = approve(channel, after_ambiguous=True)
    assert result.state == ApproveState.EXECUTED
    assert len(fake.approvals) == 1


def test_after_an_ambiguous_attempt_a_refund_gone_elsewhere_is_unknown(fake, channel, shipped_990):
    fake.update_refund("7001", status=70)
    assert approve(channel, after_ambiguous=True).state == ApproveState.UNKNOWN


def test_a_rate_limit_is_retried_later(fake, channel, shipped_990):
    fake.script(REFUND_APPROVE, "rate_limit")
    result = approve(channel)
    assert result.state == ApproveState.RETRY
    assert result.retry_after > 0
    assert fake.approvals == []


def test_an_auth_failure_asks_for_a_token_refresh(fake, channel, shipped_990):
    fake.script(REFUND_APPROVE, "auth")
    result = approve(channel)
    assert result.state == ApproveState.RETRY and result.auth_failed


def test_a_failed_fresh_read_is_retried_and_nothing_is_approved(fake, channel, shipped_990):
    fake.script(REFUND_DETAIL, "timeout")
    result = approve(channel)
    assert result.state == ApproveState.RETRY
    assert fake.calls_of(REFUND_APPROVE) == []


def test_another_refusal_is_failed_or_unknown_after_an_ambiguous_attempt(
    fake, channel, shipped_990
):
    fake.script(REFUND_APPROVE, "300009", "300009")
    assert approve(channel).state == ApproveState.FAILED
    assert approve(channel, after_ambiguous=True).state == ApproveState.UNKNOWN


def test_a_return_request_is_agreed_as_a_return(fake, channel):
    fake.add_order("5002", status=40)
    fake.add_refund("7002", order_id="5002", fee=990, handling_way=1)
    channel.return_address_id = "88"
    result = approve(channel, "7002", action="approve_return", request_type="return_refund")
    assert result.state == ApproveState.EXECUTED
    [call] = fake.calls_of(RETURN_APPROVE)
    assert json.loads(call.params["param"]) == {
        "refundId": 7002,
        "refundAmount": 990,
        "addressId": 88,
    }
    assert approve(
        channel, "7002", action="approve_return", request_type="return_refund"
    ).state == (ApproveState.DONE_ELSEWHERE)


def test_a_return_request_is_never_approved_as_refund_only(fake, channel):
    fake.add_order("5003", status=40)
    fake.add_refund("7003", order_id="5003", fee=990, handling_way=1)
    result = approve(channel, "7003", action="approve_refund", request_type="return_refund")
    assert result.state == ApproveState.FAILED
    assert fake.calls_of(REFUND_APPROVE) == []


def test_a_request_whose_handling_way_changed_is_superseded(fake, channel, shipped_990):
    fake.update_refund("7001", handlingWay=1)
    assert approve(channel).state == ApproveState.SUPERSEDED
    assert fake.calls_of(REFUND_APPROVE) == []


def test_reject_sends_the_fresh_version_and_an_offered_reason_code(fake, channel, shipped_990):
    version = fake.refunds["7001"]["updateTime"]
    result = channel.reject(aftersale_id="7001", reason="不符合", version=version)
    assert result.state == ApproveState.EXECUTED
    assert result.calls == [REFUND_DETAIL, REJECT_REASONS, REFUND_REJECT]
    # The first offered reason needs images (ATOM has none): the next one is taken.
    assert fake.rejections_of("7001") == [
        {"refundId": 7001, "reasonCode": 702, "rejectDesc": "不符合", "refundVersion": version}
    ]
    assert fake.refunds["7001"]["status"] == 12
    # Refused once: a second refusal reads, sees it refused, and sends nothing.
    again = channel.reject(aftersale_id="7001", reason="不符合", version=None)
    assert again.state == ApproveState.DONE_ELSEWHERE
    assert len(fake.calls_of(REFUND_REJECT)) == 1


def test_a_refusal_of_a_refund_changed_since_it_was_seen_is_not_sent(fake, channel, shipped_990):
    seen = fake.refunds["7001"]["updateTime"]
    fake.update_refund("7001", refundFee=500)  # the buyer changed it after ATOM read it
    result = channel.reject(aftersale_id="7001", reason="不符合", version=seen)
    assert result.state == ApproveState.SUPERSEDED
    assert result.calls == [REFUND_DETAIL]
    assert fake.calls_of(REFUND_REJECT) == []


def test_a_version_conflict_on_the_refusal_is_read_again_never_resent(fake, channel, shipped_990):
    def changes_first(server, call):
        server.update_refund("7001", refundFee=500)
        return server.handle(call)

    fake.script(REFUND_REJECT, changes_first)
    result = channel.reject(aftersale_id="7001", reason="不符合")
    assert result.state == ApproveState.SUPERSEDED
    assert result.calls == [REFUND_DETAIL, REJECT_REASONS, REFUND_REJECT, REFUND_DETAIL]
    assert len(fake.calls_of(REFUND_REJECT)) == 1 and fake.rejections == []


def test_a_refusal_whose_answer_was_lost_is_settled_by_a_read(fake, channel, shipped_990):
    fake.script(REFUND_REJECT, "timeout_after")
    result = channel.reject(aftersale_id="7001", reason="不符合")
    assert result.state == ApproveState.EXECUTED
    assert len(fake.rejections) == 1


def test_a_fetched_990_request_is_approved_with_990_fen(fake, channel, shipped_990):
    """The whole way out: fetch, map (9.90, refund only, shipped), approve what was mapped."""
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
    [param] = approve_params(fake)
    assert param["refundAmount"] == 990
    assert (param["status"], param["negotiateStatus"], param["refundHandingWay"]) == (10, 1, 10)
