"""Outbound gateways that carry an approval out on the platform (API.md "Outbound").

One small class per kind on a tiny base, chosen by ``settings.ATOM_GATEWAY``. ``approve()``
returns when the platform confirmed (or already had it) and raises ``GatewayError`` otherwise:
``permanent=False`` for what a retry may fix (5xx, timeout, connection error), ``permanent=True``
for a refusal (other 4xx); ``ambiguous=True`` when the platform may have approved anyway.

The HTTP gateway uses libcurl (pycurl) because its ``TIMEOUT_MS`` bounds the WHOLE transfer:
name lookup, connect, TLS, sending and every byte of the answer. ``requests`` (urllib3) applies
its timeout to each socket read, so a platform dripping its answer a byte at a time kept one
call open for 100 s while the lease expired and a second call for the same decision started
(issue 11, RELIABILITY.md 26).
"""

from __future__ import annotations

import json
import math
import time
import uuid
from dataclasses import dataclass
from decimal import Decimal
from urllib.parse import quote

import certifi
import pycurl
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from strategies.platforms.base import Gateway, GatewayError

# What is kept of an answer's body (for the logs and the status check); the rest is read and
# dropped, so a large body is still a complete answer.
MAX_ANSWER_BYTES = 64 * 1024


class SimulatedGateway(Gateway):
    """The demo's platform: every approval is accepted at once (the execution is recorded by
    the execution service, which marks the request ``executed``)."""

    name = "simulated"

    def approve(
        self,
        *,
        aftersale_id: str,
        action: str,
        amount: Decimal,
        idempotency_key: uuid.UUID,
        deadline: float | None = None,
    ) -> None:
        return None

    def reject(
        self,
        *,
        aftersale_id: str,
        reason: str,
        idempotency_key: uuid.UUID,
        deadline: float | None = None,
    ) -> None:
        return None

    def approved(self, *, aftersale_id: str, deadline: float | None = None) -> bool | None:
        return True  # it approves everything it is asked


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes

    @property
    def text(self) -> str:
        return self.body[:500].decode("utf-8", "replace")


class HttpGateway(Gateway):
    """``POST {url}/aftersales/{id}/approve`` with a bearer token and an ``Idempotency-Key``;
    ``GET {url}/aftersales/{id}`` for the status check. Each call ends by its deadline."""

    name = "http"

    def __init__(self, *, url: str, token: str, timeout: float) -> None:
        if not url:
            raise ImproperlyConfigured("ATOM_GATEWAY=http needs ATOM_GATEWAY_URL")
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout

    def approve(
        self,
        *,
        aftersale_id: str,
        action: str,
        amount: Decimal,
        idempotency_key: uuid.UUID,
        deadline: float | None = None,
    ) -> None:
        body = {"aftersale_id": aftersale_id, "action": action, "amount": f"{amount:.2f}"}
        answer = self._call(
            "POST",
            f"/aftersales/{_segment(aftersale_id)}/approve",
            body=json.dumps(body).encode(),
            headers=[f"Idempotency-Key: {idempotency_key}"],
            deadline=deadline,
        )
        status = answer.status
        if 200 <= status < 300 or status == 409:  # 409: the platform already approved it
            return None
        detail = f"gateway answered {status}: {answer.text}"
        # API.md: 5xx is retried, any other 4xx is a refusal. A 3xx is neither an approval nor
        # a refusal (a misconfigured URL): retried, and visible in the logs. Each is an answer
        # to this very call, so none of them is ambiguous.
        raise GatewayError(detail, permanent=400 <= status < 500)

    def reject(
        self,
        *,
        aftersale_id: str,
        reason: str,
        idempotency_key: uuid.UUID,
        deadline: float | None = None,
    ) -> None:
        body = {"aftersale_id": aftersale_id, "reason": reason}
        answer = self._call(
            "POST",
            f"/aftersales/{_segment(aftersale_id)}/reject",
            body=json.dumps(body).encode(),
            headers=[f"Idempotency-Key: {idempotency_key}"],
            deadline=deadline,
        )
        if 200 <= answer.status < 300:
            return None
        # 409: the platform settled it otherwise (approved, closed): a refusal of ours, final.
        detail = f"gateway answered {answer.status}: {answer.text}"
        raise GatewayError(detail, permanent=400 <= answer.status < 500)

    def approved(self, *, aftersale_id: str, deadline: float | None = None) -> bool | None:
        try:
            answer = self._call("GET", f"/aftersales/{_segment(aftersale_id)}", deadline=deadline)
        except GatewayError:
            return None
        if answer.status != 200:
            return None
        try:
            approved = json.loads(answer.body).get("approved")
        except (ValueError, AttributeError):  # not JSON, or not an object
            return None
        # Only a JSON boolean says it: "true", 1 or null say nothing.
        return approved if isinstance(approved, bool) else None

    def _call(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        headers: list[str] | None = None,
        deadline: float | None = None,
    ) -> Answer:
        """One HTTP exchange that ends by ``deadline`` whatever the platform does."""
        if deadline is None:
            deadline = time.monotonic() + self.timeout
        remaining = deadline - time.monotonic()
        if remaining <= 0.001:
            raise GatewayError("no time left for the gateway call: not sent", permanent=False)
        kept = bytearray()

        def keep(chunk: bytes) -> None:
            if len(kept) < MAX_ANSWER_BYTES:
                kept.extend(chunk[: MAX_ANSWER_BYTES - len(kept)])

        curl = pycurl.Curl()
        try:
            curl.setopt(pycurl.URL, self.url + path)
            curl.setopt(pycurl.PROTOCOLS, pycurl.PROTO_HTTP | pycurl.PROTO_HTTPS)
            # The path exactly as built: never "remove dot segments" (an id of ".." must not
            # turn .../aftersales/../approve into .../approve).
            curl.setopt(pycurl.PATH_AS_IS, 1)
            # A redirect would turn the POST into a GET elsewhere whose 200 says nothing about
            # the approval: never follow one (libcurl's default; said here on purpose).
            curl.setopt(pycurl.FOLLOWLOCATION, 0)
            milliseconds = max(1, math.ceil(remaining * 1000))
            curl.setopt(pycurl.TIMEOUT_MS, milliseconds)  # the whole transfer
            curl.setopt(pycurl.CONNECTTIMEOUT_MS, milliseconds)
            curl.setopt(pycurl.NOSIGNAL, 1)  # timeouts without SIGALRM: safe in threads
            curl.setopt(pycurl.CAINFO, certifi.where())
            curl.setopt(
                pycurl.HTTPHEADER,
                [
                    f"Authorization: Bearer {self.token}",
                    "Accept: application/json",
                    "Expect:",  # no "100-continue" round trip
                    *(["Content-Type: application/json"] if body is not None else []),
                    *(headers or []),
                ],
            )
            if method == "POST":
                curl.setopt(pycurl.POSTFIELDS, body or b"")
            curl.setopt(pycurl.WRITEFUNCTION, keep)
            try:
                curl.perform()
            except pycurl.error as exc:
                code, message = exc.args
                # Bytes of the request went out: the platform may have acted on it.
                sent = curl.getinfo(pycurl.REQUEST_SIZE) > 0
                timed_out = code == pycurl.E_OPERATION_TIMEDOUT
                what = "timeout" if timed_out else "unreachable"
                raise GatewayError(
                    f"gateway {what} ({'after' if sent else 'before'} sending): {message}",
                    permanent=False,
                    ambiguous=sent,
                ) from exc
            return Answer(status=int(curl.getinfo(pycurl.RESPONSE_CODE)), body=bytes(kept))
        finally:
            curl.close()


def _segment(aftersale_id: str) -> str:
    """The id as ONE path segment: every reserved character percent-encoded. An id that is
    only dots cannot be one (a path resolver reads it as "here" or "up")."""
    if not aftersale_id or set(aftersale_id) <= {"."}:
        raise GatewayError(
            f"after-sales id {aftersale_id!r} cannot name a gateway URL: not sent",
            permanent=True,
        )
    return quote(aftersale_id, safe="")


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
