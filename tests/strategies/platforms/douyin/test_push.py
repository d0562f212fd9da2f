"""Douyin pushes: signed arrays from the fake, verified on the raw bytes."""

from collections.abc import Iterator

import pytest

from strategies.platforms.channel import PushKind, PushRejected
from strategies.platforms.douyin.messages import push_events
from strategies.platforms.douyin.signing import event_sign
from tests.strategies.platforms.receiver import PushReceiver


@pytest.fixture
def receiver(channel) -> Iterator[PushReceiver]:
    server = PushReceiver(parse=channel.parse_push, answer=channel.push_answer).start()
    yield server
    server.stop()


def test_a_signed_push_is_read_and_answered(fake, receiver, shipped_990):
    message = fake.message(shipped_990, tag="200")
    response = fake.push(receiver.url, [message])
    assert response.status_code == 200 and response.json() == {"code": 0, "msg": "success"}
    [event] = receiver.events
    assert event.kind == PushKind.NEW
    assert (event.event_id, event.aftersale_id, event.order_id, event.merchant) == (
        message["msg_id"],
        shipped_990,
        "6001",
        fake.shop_id,
    )
    assert event.occurred_at is not None


@pytest.mark.parametrize(
    ("tag", "kind"),
    [
        ("201", PushKind.AGREED),
        ("206", PushKind.AGREED),
        ("207", PushKind.CLOSED),
        ("208", PushKind.UPDATED),
        ("105", PushKind.OTHER),
    ],
)
def test_tags_map_to_kinds(fake, receiver, shipped_990, tag, kind):
    fake.push(receiver.url, [fake.message(shipped_990, tag=tag)])
    assert [e.kind for e in receiver.events] == [kind]


def test_an_array_carries_several_messages(fake, receiver, shipped_990):
    fake.push(
        receiver.url, [fake.message(shipped_990, tag="200"), fake.message(shipped_990, tag="208")]
    )
    assert [e.kind for e in receiver.events] == [PushKind.NEW, PushKind.UPDATED]


def test_the_verification_push_is_answered_and_carries_nothing(fake, receiver):
    response = fake.verification(receiver.url)
    assert response.json() == {"code": 0, "msg": "success"}
    assert receiver.events == []


def test_a_wrong_event_sign_is_a_401_and_yields_nothing(fake, receiver, shipped_990):
    response = fake.push(receiver.url, [fake.message(shipped_990)], signature="0" * 32)
    assert response.status_code == 401
    assert receiver.events == []


def test_a_missing_event_sign_is_a_401():
    with pytest.raises(PushRejected) as exc:
        push_events(b"[]", {}, app_key="k", app_secret="s")
    assert exc.value.status == 401


def test_a_signed_body_that_is_not_an_array_is_a_400():
    body = b'{"tag":"200"}'
    headers = {"Event-Sign": event_sign(app_key="k", app_secret="s", body=body)}
    with pytest.raises(PushRejected) as exc:
        push_events(body, headers, app_key="k", app_secret="s")
    assert exc.value.status == 400
