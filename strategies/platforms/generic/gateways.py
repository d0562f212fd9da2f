"""Outbound gateways that carry an approval out on the platform (API.md "Outbound").

One small class per kind on a tiny base, chosen by ``settings.ATOM_GATEWAY``. ``approve()``
returns when the platform confirmed (or already had it) and raises ``GatewayError`` otherwise:
``permanent=False`` for what a retry may fix (5xx, timeout, connection error), ``permanent=True``
for a refusal (other 4xx).
"""

from __future__ import annotations

import uuid
from decimal import Decimal

import requests
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from strategies.platforms.base import Gateway, GatewayError


class SimulatedGateway(Gateway):
    """The demo's platform: every approval is accepted at once (the execution is recorded by
    the execution service, which marks the request ``executed``)."""

    name = "simulated"

    def approve(
        self, *, aftersale_id: str, action: str, amount: Decimal, idempotency_key: uuid.UUID
    ) -> None:
        return None


class HttpGateway(Gateway):
    """``POST {url}/aftersales/{id}/approve`` with a bearer token and an ``Idempotency-Key``."""

    name = "http"

    def __init__(self, *, url: str, token: str, timeout: float) -> None:
        if not url:
            raise ImproperlyConfigured("ATOM_GATEWAY=http needs ATOM_GATEWAY_URL")
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout

    def approve(
        self, *, aftersale_id: str, action: str, amount: Decimal, idempotency_key: uuid.UUID
    ) -> None:
        endpoint = f"{self.url}/aftersales/{requests.utils.quote(aftersale_id, safe='')}/approve"
        try:
            response = requests.post(
                endpoint,
                json={"action": action, "amount": f"{amount:.2f}"},
                headers={
                    "Authorization": f"Bearer {self.token}",
                    "Idempotency-Key": str(idempotency_key),
                },
                timeout=self.timeout,
                # A redirect would turn the POST into a GET elsewhere whose 200 says nothing
                # about the approval: never follow one.
                allow_redirects=False,
            )
        except requests.Timeout as exc:
            raise GatewayError(f"gateway timeout: {exc}", permanent=False) from exc
        except requests.RequestException as exc:
            raise GatewayError(f"gateway unreachable: {exc}", permanent=False) from exc
        status = response.status_code
        if 200 <= status < 300 or status == 409:  # 409: the platform already approved it
            return None
        detail = f"gateway answered {status}: {response.text[:500]}"
        # API.md: 5xx is retried, any other 4xx is a refusal for good. A 3xx is neither an
        # approval nor a refusal (a misconfigured URL): retried, and visible in the logs.
        raise GatewayError(detail, permanent=400 <= status < 500)


def gateway_get() -> Gateway:
    kind = settings.ATOM_GATEWAY
    if kind == SimulatedGateway.name:
        return SimulatedGateway()
    if kind == HttpGateway.name:
        return HttpGateway(
            url=settings.ATOM_GATEWAY_URL,
            token=settings.ATOM_GATEWAY_TOKEN,
            timeout=settings.ATOM_GATEWAY_TIMEOUT,
        )
    raise ImproperlyConfigured(f"Unknown ATOM_GATEWAY {kind!r}: use 'simulated' or 'http'")
