"""Kuaishou's request signature, pinned to PLATFORMS.md's vectors."""

import pytest

from strategies.platforms.kuaishou.signing import (
    HMAC_SHA256,
    MD5,
    sign,
    sign_input,
    signature_matches,
    signed_params,
)

LIST_PARAM = '{"title":"短袖"}'
APPROVE_PARAM = (
    '{"refundId":123,"refundAmount":990,"status":10,"negotiateStatus":1,"refundHandingWay":10}'
)
VECTORS = [
    ("open.seller.order.list", LIST_PARAM, MD5, "6005da269b372ff10945e565ef37a4c6"),
    (
        "open.seller.order.list",
        LIST_PARAM,
        HMAC_SHA256,
        "ZpPrG0oB1g/T93FyyVD+VCzRey41yqxZoCqcGg7upYM=",
    ),
    ("open.seller.order.refund.approve", APPROVE_PARAM, MD5, "8686a5ef6aa4078cd713ec4593d9a57f"),
    (
        "open.seller.order.refund.approve",
        APPROVE_PARAM,
        HMAC_SHA256,
        "aXw4CTHBPFfnIorKKYYE10icuWSMFufPPYpRURzqg7M=",
    ),
]


def vector_params(method: str, param: str, sign_method: str) -> dict[str, str]:
    return {
        "appkey": "ks123",
        "access_token": "token",
        "timestamp": "1583271919000",
        "version": "1",
        "method": method,
        "param": param,
        "signMethod": sign_method,
    }


@pytest.mark.parametrize(("method", "param", "sign_method", "expected"), VECTORS)
def test_it_matches_the_vectors(method, param, sign_method, expected):
    assert sign(vector_params(method, param, sign_method), sign_secret="sign-secret") == expected


@pytest.mark.parametrize(("method", "param", "sign_method", "expected"), VECTORS)
def test_signed_params_carry_the_vector_signature(method, param, sign_method, expected):
    params = signed_params(
        app_key="ks123",
        method=method,
        param=param,
        access_token="token",
        timestamp_ms=1583271919000,
        sign_method=sign_method,
        sign_secret="sign-secret",
    )
    assert params["sign"] == expected
    assert signature_matches(params, sign_secret="sign-secret")


def test_the_input_is_sorted_pairs_then_the_sign_secret():
    params = vector_params("open.seller.order.list", LIST_PARAM, MD5)
    assert sign_input(params, sign_secret="s") == (
        "access_token=token&appkey=ks123&method=open.seller.order.list"
        '&param={"title":"短袖"}&signMethod=MD5&timestamp=1583271919000&version=1&signSecret=s'
    )


def test_nulls_and_unsigned_keys_are_left_out():
    params = {**vector_params("m", "{}", MD5), "access_token": None, "sign": "x", "extra": "y"}
    assert sign_input(params, sign_secret="s") == (
        "appkey=ks123&method=m&param={}&signMethod=MD5&timestamp=1583271919000&version=1&signSecret=s"
    )


def test_the_app_secret_does_not_sign():
    params = vector_params("open.seller.order.list", LIST_PARAM, HMAC_SHA256)
    params["sign"] = sign(params, sign_secret="sign-secret")
    assert not signature_matches(params, sign_secret="app-secret")


def test_a_changed_param_byte_breaks_the_signature():
    params = vector_params("open.seller.order.refund.approve", APPROVE_PARAM, MD5)
    params["sign"] = "8686a5ef6aa4078cd713ec4593d9a57f"
    assert signature_matches(params, sign_secret="sign-secret")
    params["param"] = APPROVE_PARAM.replace("990", "991")
    assert not signature_matches(params, sign_secret="sign-secret")


def test_an_unknown_sign_method_is_refused():
    with pytest.raises(ValueError):
        signed_params(
            app_key="k",
            method="m",
            param="{}",
            access_token="t",
            timestamp_ms=1,
            sign_method="SHA1",
            sign_secret="s",
        )
