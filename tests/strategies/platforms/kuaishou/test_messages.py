"""Kuaishou's pushed messages: the decryption vector, the envelope, and what is refused."""

import json

import pytest

from strategies.platforms.channel import PushKind, PushRejected
from strategies.platforms.kuaishou.messages import (
    ADD_REFUND,
    UPDATE_REFUND,
    decrypt_message,
    encrypt_message,
    envelope_parse,
    events_from_envelope,
)

KEY = "MDEyMzQ1Njc4OWFiY2RlZg=="
OTHER_KEY = "ZmVkY2JhOTg3NjU0MzIxMA=="


def test_it_decrypts_the_vector():
    assert decrypt_message(b"watm3Pt/wCJGbPJJXW0XpA==", message_key=KEY) == '{"test":true}'


def test_it_encrypts_to_the_vector():
    assert encrypt_message('{"test":true}', message_key=KEY) == "watm3Pt/wCJGbPJJXW0XpA=="


def test_a_round_trip_keeps_unicode():
    text = json.dumps({"info": "七天无理由退货"}, ensure_ascii=False)
    assert decrypt_message(encrypt_message(text, message_key=KEY), message_key=KEY) == text


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not base64 !!",
        b"YWJj",  # Base64, but not whole AES blocks
        encrypt_message('{"a":1}', message_key=OTHER_KEY).encode(),  # another app's key
        b'{"test": false}',
    ],
)
def test_an_undecryptable_body_is_a_400(body):
    with pytest.raises(PushRejected) as exc:
        envelope_parse(body, message_key=KEY)
    assert exc.value.status == 400


def test_a_plain_heartbeat_is_accepted_and_carries_no_event():
    envelope = envelope_parse(b'{"test":true}', message_key=KEY)
    assert events_from_envelope(envelope) == []


def test_an_encrypted_heartbeat_carries_no_event():
    envelope = envelope_parse(b"watm3Pt/wCJGbPJJXW0XpA==", message_key=KEY)
    assert events_from_envelope(envelope) == []


def envelope(event: str, info: dict) -> dict:
    return {
        "eventId": "267_2345_147402",
        "bizId": info["refundId"],
        "userId": 12342323,
        "openId": "merchant-open",
        "appKey": "ks669064233797003102",
        "event": event,
        "info": json.dumps(info),
        "createTime": 1591274070333,
        "test": False,
    }


def test_an_add_refund_is_a_new_request():
    info = {
        "orderId": 5001,
        "refundId": 7001,
        "handlingWay": 10,
        "status": 10,
        "createTime": 1591274070000,
    }
    body = encrypt_message(json.dumps(envelope(ADD_REFUND, info)), message_key=KEY).encode()
    [event] = events_from_envelope(envelope_parse(body, message_key=KEY))
    assert event.kind == PushKind.NEW
    assert (event.event_id, event.aftersale_id, event.order_id) == (
        "267_2345_147402",
        "7001",
        "5001",
    )
    assert event.merchant == "merchant-open"
    assert event.occurred_at is not None and event.occurred_at.utcoffset().total_seconds() == 0
    assert event.raw["info"]["refundId"] == 7001


def test_an_update_refund_is_an_update():
    info = {"orderId": 5001, "refundId": 7001, "eventType": 2, "updateTime": 1591274080000}
    [event] = events_from_envelope(envelope(UPDATE_REFUND, info))
    assert event.kind == PushKind.UPDATED


def test_a_message_without_event_id_is_refused():
    message = envelope(ADD_REFUND, {"refundId": 1})
    del message["eventId"]
    with pytest.raises(PushRejected):
        events_from_envelope(message)


def test_other_events_are_kept_as_other():
    [event] = events_from_envelope(envelope("kwaishop_order_addOrder", {"refundId": 1}))
    assert event.kind == PushKind.OTHER
