"""The fake Kuaishou pushes encrypted messages; the channel reads them (or refuses them)."""

from collections.abc import Iterator

import pytest

from strategies.platforms.channel import PushKind
from strategies.platforms.kuaishou.messages import UPDATE_REFUND, encrypt_message
from tests.strategies.platforms.receiver import PushReceiver


@pytest.fixture
def receiver(channel) -> Iterator[PushReceiver]:
    server = PushReceiver(parse=channel.parse_push, answer=channel.push_answer).start()
    yield server
    server.stop()


def test_a_pushed_new_refund_is_decrypted_and_answered(fake, receiver, shipped_990):
    envelope = fake.envelope(shipped_990)
    response = fake.push(receiver.url, envelope)
    assert response.status_code == 200 and response.json() == {"result": 1}
    [event] = receiver.events
    assert event.kind == PushKind.NEW
    assert event.event_id == envelope["eventId"]
    assert (event.aftersale_id, event.order_id, event.merchant) == ("7001", "5001", fake.open_id)
    assert b"refundId" not in receiver.bodies[0]  # it travelled encrypted


def test_an_update_is_pushed_with_its_update_time(fake, receiver, shipped_990):
    fake.update_refund(shipped_990, status=70)
    fake.push(receiver.url, fake.envelope(shipped_990, event=UPDATE_REFUND))
    [event] = receiver.events
    assert event.kind == PushKind.UPDATED
    assert event.raw["info"]["status"] == 70


@pytest.mark.parametrize("encrypted", [True, False])
def test_heartbeats_are_answered_and_carry_nothing(fake, receiver, encrypted):
    response = fake.heartbeat(receiver.url, encrypted=encrypted)
    assert response.json() == {"result": 1}
    assert receiver.events == []


def test_a_push_under_another_key_is_a_400_and_yields_nothing(fake, receiver, shipped_990):
    body = encrypt_message('{"eventId":"1","event":"x"}', message_key="ZmVkY2JhOTg3NjU0MzIxMA==")
    response = fake.push_raw(receiver.url, body.encode())
    assert response.status_code == 400
    assert receiver.events == []


def test_the_same_message_pushed_twice_keeps_its_event_id(fake, receiver, shipped_990):
    envelope = fake.envelope(shipped_990)
    fake.push(receiver.url, envelope)
    fake.push(receiver.url, envelope)
    assert [e.event_id for e in receiver.events] == [envelope["eventId"]] * 2
