"""The HTTP gateway against a real local server (API.md 1.1 "Outbound"; RELIABILITY.md 24-26)."""

import socket
import time
import uuid
from decimal import Decimal

import pytest

from strategies.platforms.generic.gateways import (
    GatewayError,
    HttpGateway,
    SimulatedGateway,
    gateway_get,
)
from tests.worker import GatewayServer

KEY = uuid.UUID("8a4c2f7e-0000-4000-8000-000000000001")


def approve(gateway: HttpGateway, aftersale_id: str = "AS 1/2", **kwargs) -> None:
    gateway.approve(
        aftersale_id=aftersale_id,
        action="approve_refund",
        amount=Decimal("9.9"),
        idempotency_key=KEY,
        **kwargs,
    )


def test_it_posts_the_approval_with_token_and_idempotency_key(gateway_server):
    approve(gateway_get())
    [call] = gateway_server.calls
    assert call.method == "POST"
    assert call.path == "/aftersales/AS%201%2F2/approve"
    # API.md 1.1: the body names the request too, not only the URL.
    assert call.body == {"aftersale_id": "AS 1/2", "action": "approve_refund", "amount": "9.90"}
    assert call.authorization == "Bearer gw-token"
    assert call.idempotency_key == str(KEY)


@pytest.mark.parametrize(
    ("aftersale_id", "segment"),
    [
        ("a/b", "a%2Fb"),
        ("a%2Fb", "a%252Fb"),  # already "encoded": encoded again, never decoded into a slash
        ("x?y#z", "x%3Fy%23z"),
        ("../approve", "..%2Fapprove"),
        ("AS:1.2_3-4", "AS%3A1.2_3-4"),
    ],
)
def test_the_id_is_one_path_segment_whatever_it_holds(gateway_server, aftersale_id, segment):
    """RELIABILITY.md 24, the gateway half: the URL always names the request."""
    approve(gateway_get(), aftersale_id)
    [call] = gateway_server.calls
    assert call.path == f"/aftersales/{segment}/approve"
    assert call.body["aftersale_id"] == aftersale_id


@pytest.mark.parametrize("aftersale_id", [".", "..", "...", ""])
def test_an_id_that_cannot_be_a_path_segment_is_never_sent(gateway_server, aftersale_id):
    """`.` and `..` once approved `{gateway}/aftersales/approve` and `{gateway}/approve`."""
    with pytest.raises(GatewayError) as exc:
        approve(gateway_get(), aftersale_id)
    assert (exc.value.permanent, exc.value.ambiguous) == (True, False)
    assert gateway_get().approved(aftersale_id=aftersale_id) is None
    assert gateway_server.calls == []


@pytest.mark.parametrize("status", [200, 201, 204, 409])
def test_it_treats_2xx_and_409_as_executed(gateway_server, status):
    gateway_server.script = [status]
    approve(gateway_get())


@pytest.mark.parametrize("status", [500, 502, 503])
def test_it_reports_5xx_as_retryable_and_not_ambiguous(gateway_server, status):
    gateway_server.script = [status]
    with pytest.raises(GatewayError) as exc:
        approve(gateway_get())
    assert (exc.value.permanent, exc.value.ambiguous) == (False, False)


@pytest.mark.parametrize("step", ["timeout", "pay-stall", "pay-drop", "drop"])
def test_a_call_cut_after_sending_is_retryable_and_ambiguous(gateway_server, step):
    gateway_server.script = [step]
    gateway_server.timeout_sleep = 1.5
    with pytest.raises(GatewayError) as exc:
        approve(gateway_get())
    assert (exc.value.permanent, exc.value.ambiguous) == (False, True)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 408, 422, 429])
def test_it_reports_other_4xx_as_permanent(gateway_server, status):
    gateway_server.script = [status]
    with pytest.raises(GatewayError) as exc:
        approve(gateway_get())
    assert (exc.value.permanent, exc.value.ambiguous) == (True, False)
    assert str(status) in exc.value.message


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again: nothing listens there


def test_it_reports_a_refused_connection_as_retryable_and_not_ambiguous():
    gateway = HttpGateway(url=f"http://127.0.0.1:{closed_port()}", token="t", timeout=1)
    with pytest.raises(GatewayError) as exc:
        approve(gateway)
    assert (exc.value.permanent, exc.value.ambiguous) == (False, False)
    assert gateway.approved(aftersale_id="AS1") is None


def test_a_deadline_already_past_sends_nothing(gateway_server):
    with pytest.raises(GatewayError) as exc:
        approve(gateway_get(), deadline=time.monotonic() - 0.1)
    assert (exc.value.permanent, exc.value.ambiguous) == (False, False)
    assert gateway_server.calls == []


# --- the whole-call deadline (RELIABILITY.md 26) ---------------------------------------------


@pytest.mark.parametrize("step", ["drip", "drip-body"])
def test_a_dripped_answer_is_cut_at_the_timeout(gateway_server, step):
    """Every byte arrives well within any per-read timeout, the whole answer takes ~6 s: the
    call must end at ATOM_GATEWAY_TIMEOUT (1 s), headers dripped or body dripped."""
    gateway_server.script = [step]
    gateway_server.drip_interval = 0.05
    started = time.monotonic()
    with pytest.raises(GatewayError) as exc:
        approve(gateway_get())
    elapsed = time.monotonic() - started
    assert 0.9 < elapsed < 1.4
    assert (exc.value.permanent, exc.value.ambiguous) == (False, True)
    [call] = gateway_server.calls
    # The platform saw the connection end by the deadline too (it was still dripping).
    assert call.closed_at - call.opened_at < 1.5


def test_a_call_gets_only_what_is_left_of_its_deadline(gateway_server):
    gateway_server.script = ["pay-stall"]
    gateway_server.timeout_sleep = 3
    started = time.monotonic()
    with pytest.raises(GatewayError) as exc:
        approve(gateway_get(), deadline=started + 0.3)
    assert time.monotonic() - started < 0.7
    assert exc.value.ambiguous is True


@pytest.mark.parametrize("status", [301, 302, 303, 307])
def test_it_never_follows_a_redirect_and_never_takes_one_for_an_approval(
    gateway_server,
    status,
):
    gateway_server.script = [status]
    with pytest.raises(GatewayError) as exc:
        approve(gateway_get())
    assert exc.value.permanent is False
    assert [c.path for c in gateway_server.calls] == ["/aftersales/AS%201%2F2/approve"]


# --- the status check: GET {url}/aftersales/{id} ----------------------------------------------


@pytest.mark.parametrize(
    ("answer", "approved"),
    [
        (True, True),
        (False, False),
        ("garbage", None),  # a 200 that is not JSON
        ({"approved": "true"}, None),  # only a JSON boolean says it
        ({"approved": None}, None),
        ({"status": "approved"}, None),
        (404, None),
        (500, None),
        (302, None),  # never followed
    ],
)
def test_the_status_check_reads_only_a_definite_answer(gateway_server, answer, approved):
    gateway_server.status_script = [answer]
    assert gateway_get().approved(aftersale_id="AS 1/2") is approved
    [call] = gateway_server.calls
    assert (call.method, call.path) == ("GET", "/aftersales/AS%201%2F2")
    assert call.authorization == "Bearer gw-token"


def test_the_status_check_has_the_whole_call_deadline_too(gateway_server):
    gateway_server.status_script = ["stall"]
    gateway_server.timeout_sleep = 3
    started = time.monotonic()
    assert gateway_get().approved(aftersale_id="AS1") is None
    assert time.monotonic() - started < 1.4


def test_the_server_helper_answers_the_status_check_as_a_platform_would(gateway_server):
    gateway = gateway_get()
    assert gateway.approved(aftersale_id="AS 1/2") is False
    gateway_server.script = ["pay-stall"]
    gateway_server.timeout_sleep = 1.5
    with pytest.raises(GatewayError):
        approve(gateway)
    assert gateway.approved(aftersale_id="AS 1/2") is True


def test_the_default_gateway_is_simulated(settings):
    settings.ATOM_GATEWAY = "simulated"
    assert isinstance(gateway_get(), SimulatedGateway)
    assert gateway_get().approved(aftersale_id="AS1") is True


def test_server_helper_answers_409_for_a_key_already_approved():
    server = GatewayServer().start()
    try:
        gateway = HttpGateway(url=server.url, token="t", timeout=1)
        approve(gateway)
        approve(gateway)
        assert [c.status for c in server.calls] == [200, 409]
        assert server.approvals == {str(KEY): 2}
    finally:
        server.stop()
