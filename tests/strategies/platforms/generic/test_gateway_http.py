"""The HTTP gateway against a real local server (API.md "Outbound")."""

import socket
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


def approve(gateway: HttpGateway) -> None:
    gateway.approve(
        aftersale_id="AS 1/2", action="approve_refund", amount=Decimal("9.9"), idempotency_key=KEY
    )


def test_it_posts_the_approval_with_token_and_idempotency_key(gateway_server):
    approve(gateway_get())
    [call] = gateway_server.calls
    assert call.path == "/aftersales/AS%201%2F2/approve"
    assert call.body == {"action": "approve_refund", "amount": "9.90"}
    assert call.authorization == "Bearer gw-token"
    assert call.idempotency_key == str(KEY)


@pytest.mark.parametrize("status", [200, 201, 204, 409])
def test_it_treats_2xx_and_409_as_executed(gateway_server, status):
    gateway_server.script = [status]
    approve(gateway_get())


@pytest.mark.parametrize("step", [500, 502, 503, "timeout"])
def test_it_reports_5xx_and_timeouts_as_retryable(gateway_server, step):
    gateway_server.script = [step]
    gateway_server.timeout_sleep = 1.5
    with pytest.raises(GatewayError) as exc:
        approve(gateway_get())
    assert exc.value.permanent is False


@pytest.mark.parametrize("status", [400, 401, 403, 404, 408, 422, 429])
def test_it_reports_other_4xx_as_permanent(gateway_server, status):
    gateway_server.script = [status]
    with pytest.raises(GatewayError) as exc:
        approve(gateway_get())
    assert exc.value.permanent is True
    assert str(status) in exc.value.message


def test_it_reports_a_refused_connection_as_retryable():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    gateway = HttpGateway(url=f"http://127.0.0.1:{port}", token="t", timeout=1)
    with pytest.raises(GatewayError) as exc:
        approve(gateway)
    assert exc.value.permanent is False


def test_the_default_gateway_is_simulated(settings):
    settings.ATOM_GATEWAY = "simulated"
    assert isinstance(gateway_get(), SimulatedGateway)


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
