"""The plumbing both fake marketplaces share: a threaded HTTP server on 127.0.0.1 (an ephemeral
port) whose answers can be scripted to misbehave as a real platform does.

A script step, consumed one per call of the API it was queued for:

- ``"timeout"``: hang ``hang_seconds`` and close without doing anything (nothing happened);
- ``"timeout_after"``: do the call, then hang and close (it happened, the client cannot know);
- ``"drip"``: do the call and send the answer one byte every ``drip_interval`` seconds;
- an ``int`` HTTP status (``500``, ``302``): answer it without doing anything;
- ``"garbage"``: answer 200 with a body that is not JSON, without doing anything;
- ``"hold"``: set ``held`` and wait for ``release()`` (30 s at most), then do the call and
  answer, whether or not the caller is still there (a worker killed mid-call);
- anything else is the platform's own error, turned into its answer by the fake (``error_answer``).
"""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qsl, urlsplit


@dataclass
class FakeCall:
    """One call as the fake saw it. ``status`` 0 until answered."""

    api: str
    verb: str
    path: str
    params: dict[str, str]  # the query and the form body together, as a servlet reads them
    query: dict[str, str]
    body: bytes
    headers: dict[str, str]
    answer: Any = None
    status: int = 0
    done: bool = False  # the call took effect


@dataclass
class Reply:
    status: int
    body: bytes
    content_type: str = "application/json;charset=UTF-8"
    location: str = ""


def json_reply(payload: Any, status: int = 200) -> Reply:
    return Reply(status, json.dumps(payload, ensure_ascii=False).encode("utf-8"))


@dataclass
class ScriptedServer:
    """The server and its script; a platform subclass implements ``handle``."""

    port: int = 0  # 0: an ephemeral port (tests); the demo may fix one
    hang_seconds: float = 3.0
    drip_interval: float = 0.2
    max_qps: float | None = None
    calls: list[FakeCall] = field(default_factory=list)
    lock: threading.RLock = field(default_factory=threading.RLock)
    _scripts: dict[str, deque[Any]] = field(default_factory=lambda: defaultdict(deque))
    _recent: deque[float] = field(default_factory=deque)
    _server: ThreadingHTTPServer | None = None
    _stopping: threading.Event = field(default_factory=threading.Event)
    held: threading.Event = field(default_factory=threading.Event)
    _release: threading.Event = field(default_factory=threading.Event)

    # --- for tests and the demo -------------------------------------------------------------

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the fake first"
        return f"http://127.0.0.1:{self._server.server_port}"

    def script(self, api: str, *steps: Any) -> None:
        """Queues ``steps`` for the next calls of ``api``."""
        with self.lock:
            self._scripts[api].extend(steps)

    def release(self) -> None:
        """Lets the calls held by a ``"hold"`` step go on."""
        self._release.set()

    def calls_of(self, api: str) -> list[FakeCall]:
        with self.lock:
            return [c for c in self.calls if c.api == api]

    def start(self) -> Self:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                fake._serve(self, "GET")

            def do_POST(self) -> None:
                fake._serve(self, "POST")

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- for the platform subclass ----------------------------------------------------------

    def api_of(self, verb: str, path: str, params: dict[str, str]) -> str:
        raise NotImplementedError

    def handle(self, call: FakeCall) -> Reply:
        """Does the call (under ``lock``) and returns the platform's answer."""
        raise NotImplementedError

    def error_answer(self, call: FakeCall, step: Any) -> Reply:
        raise NotImplementedError

    def rate_limited_answer(self, call: FakeCall) -> Reply:
        raise NotImplementedError

    # --- serving ----------------------------------------------------------------------------

    def _serve(self, handler: BaseHTTPRequestHandler, verb: str) -> None:
        split = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        query = dict(parse_qsl(split.query, keep_blank_values=True))
        params = dict(query)
        content_type = handler.headers.get("Content-Type") or ""
        duplicate = False
        if verb == "POST" and content_type.startswith("application/x-www-form-urlencoded"):
            for key, value in parse_qsl(body.decode("utf-8"), keep_blank_values=True):
                duplicate = duplicate or key in params
                params[key] = value
        call = FakeCall(
            api="",
            verb=verb,
            path=split.path,
            params=params,
            query=query,
            body=body,
            headers={k.lower(): v for k, v in handler.headers.items()},
        )
        with self.lock:
            call.api = self.api_of(verb, split.path, params)
            self.calls.append(call)
            step = self._scripts[call.api].popleft() if self._scripts[call.api] else None
            limited = step == "rate_limit" or self._over_qps()
        if duplicate:
            reply = json_reply({"result": 0, "error_msg": "duplicate parameter"})
        elif limited:
            reply = self.rate_limited_answer(call)
        elif step == "timeout":
            self._stopping.wait(self.hang_seconds)
            call.status = -1
            return
        elif isinstance(step, int):
            reply = Reply(
                step, b'{"error": "scripted"}', location="/login" if 300 <= step < 400 else ""
            )
        elif step == "garbage":
            reply = Reply(200, b"<html>busy</html>", content_type="text/html")
        elif step == "hold":
            self.held.set()
            self._release.wait(30)
            with self.lock:
                reply = self.handle(call)
        elif step in (None, "timeout_after", "drip"):
            with self.lock:
                reply = self.handle(call)
        elif callable(step):
            with self.lock:
                reply = step(self, call)
        else:
            reply = self.error_answer(call, step)
        call.status = reply.status
        call.answer = reply.body
        if step == "timeout_after":
            self._stopping.wait(self.hang_seconds)
            call.status = -1
            return
        self._send(handler, reply, drip=step == "drip")

    def _over_qps(self) -> bool:
        if self.max_qps is None:
            return False
        now = time.monotonic()
        while self._recent and now - self._recent[0] > 1.0:
            self._recent.popleft()
        if len(self._recent) >= self.max_qps:
            return True
        self._recent.append(now)
        return False

    def _send(self, handler: BaseHTTPRequestHandler, reply: Reply, *, drip: bool) -> None:
        try:
            handler.send_response(reply.status)
            handler.send_header("Content-Type", reply.content_type)
            handler.send_header("Content-Length", str(len(reply.body)))
            handler.send_header("Connection", "close")
            if reply.location:
                handler.send_header("Location", reply.location)
            handler.end_headers()
            if not drip:
                handler.wfile.write(reply.body)
                return
            handler.wfile.flush()
            for index in range(len(reply.body)):
                if self._stopping.wait(self.drip_interval):
                    return
                handler.wfile.write(reply.body[index : index + 1])
                handler.wfile.flush()
        except OSError:  # the client gave up: nothing more to say
            pass
        finally:
            handler.close_connection = True


Clock = Callable[[], float]
