"""Real local servers for the channels: an SMTP server (aiosmtpd) and an HTTP SMS provider."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aiosmtpd.controller import Controller

from notifications import tasks
from strategies.pipeline import publish


@pytest.fixture(autouse=True)
def published(sent, monkeypatch) -> list[tuple[list, dict]]:
    """Sends of ``notifications.send_delivery`` with their options, recorded at the publish
    seam instead of going to the broker (tests call the tasks themselves); every other task
    the code publishes is in ``sent``."""
    calls: list[tuple[list, dict]] = []
    record = publish.publish_now  # the ``sent`` fixture's

    def apply_async(args=None, kwargs=None, **options):
        calls.append((list(args or []), options))

    def publish_now(name, args, countdown=None):
        if name == publish.SEND_DELIVERY_TASK:
            apply_async(args, **({"countdown": countdown} if countdown is not None else {}))
        return record(name, args, countdown)

    monkeypatch.setattr(tasks.send_delivery, "apply_async", apply_async)  # the task's own retry
    monkeypatch.setattr(publish, "publish_now", publish_now)
    return calls


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _Collector:
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], str]] = []
        self.reject_rcpt: str | None = None

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.reject_rcpt:
            return self.reject_rcpt
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(
            (envelope.mail_from, list(envelope.rcpt_tos), envelope.content.decode("utf-8"))
        )
        return "250 Message accepted"


@dataclass
class SmtpServer:
    host: str
    port: int
    handler: _Collector


@pytest.fixture
def smtp_server(settings) -> Iterator[SmtpServer]:
    handler = _Collector()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = controller.port
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_TIMEOUT = 5
    try:
        yield SmtpServer(host="127.0.0.1", port=controller.port, handler=handler)
    finally:
        controller.stop()


@dataclass
class SmsProvider:
    url: str
    # Status codes to answer, in order; 200 once they run out.
    script: list[int] = field(default_factory=list)
    received: list[dict] = field(default_factory=list)


@pytest.fixture
def sms_provider(settings) -> Iterator[SmsProvider]:
    provider = SmsProvider(url="")
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with lock:
                provider.received.append(
                    {
                        "path": self.path,
                        "authorization": self.headers.get("Authorization"),
                        "content_type": self.headers.get("Content-Type"),
                        "json": json.loads(body),
                    }
                )
                status = provider.script.pop(0) if provider.script else 200
            payload = json.dumps({"ok": status < 300}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    provider.url = f"http://127.0.0.1:{server.server_address[1]}/sms/send"
    settings.ATOM_SMS_BACKEND = "http"
    settings.ATOM_SMS_URL = provider.url
    settings.ATOM_SMS_TOKEN = "sms-test-token"
    settings.ATOM_SMS_TIMEOUT = 2.0
    try:
        yield provider
    finally:
        server.shutdown()
        server.server_close()
