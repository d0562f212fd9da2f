"""A stand-in for ATOM's push endpoint: a local server that hands each body to a channel's
``parse_push`` and answers as the endpoint will (the answer, 400/401, nothing stored)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from strategies.platforms.channel import PushEvent, PushRejected


@dataclass
class PushReceiver:
    parse: Callable[[bytes, dict[str, str]], list[PushEvent]]
    answer: dict[str, Any]
    events: list[PushEvent] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_port}/push"

    def start(self) -> PushReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.bodies.append(body)
                try:
                    events = receiver.parse(body, {k.lower(): v for k, v in self.headers.items()})
                except PushRejected as exc:
                    status, payload = exc.status, {"error": exc.message}
                else:
                    receiver.events.extend(events)
                    status, payload = 200, receiver.answer
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
