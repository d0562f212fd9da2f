"""One HTTP call to a marketplace, bounded by a whole-call deadline, never following a redirect.

``requests`` alone bounds each socket operation, not the call: a server that drips its answer a
byte at a time stays under any read timeout forever. Here a watchdog timer shuts the call's
socket down when the deadline passes, whatever phase the call is in (connecting, sending,
waiting for the headers, reading the body), and the call then fails with ``TransportError``.

Each call uses its own connection (no keep-alive pool): the watchdog must know the socket, and a
marketplace call is rare enough that the handshake does not matter.

``TransportError.sent`` tells whether the request may have reached the server: ``False`` only
when no connection was ever made (refused, unreachable, DNS), so that a write is known not to
have happened; anything later (a reset, a timeout, the deadline) may have been processed.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

# A marketplace answer is a few kilobytes; anything far larger is not one.
MAX_ANSWER_BYTES = 4 * 1024 * 1024


class TransportError(Exception):
    """No usable HTTP answer. ``sent=False``: the request certainly never reached the server."""

    def __init__(self, message: str, *, sent: bool, timed_out: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.sent = sent
        self.timed_out = timed_out


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    headers: Mapping[str, str]
    body: bytes


class _Watchdog:
    """Shuts down every socket of one call once its deadline has passed."""

    def __init__(self, seconds: float) -> None:
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self.fired = False
        self.connected = False
        self._timer = threading.Timer(max(seconds, 0.0), self._fire)
        self._timer.daemon = True

    def start(self) -> None:
        self._timer.start()

    def cancel(self) -> None:
        self._timer.cancel()

    def register(self, sock: socket.socket) -> None:
        with self._lock:
            self.connected = True
            self._sockets.append(sock)
            fired = self.fired
        if fired:
            _shutdown(sock)

    def _fire(self) -> None:
        with self._lock:
            self.fired = True
            sockets = list(self._sockets)
        for sock in sockets:
            _shutdown(sock)


def _shutdown(sock: socket.socket) -> None:
    # The plain socket's method, also for a TLS socket: it only wakes the blocked reader and
    # leaves the TLS object to the thread that owns it.
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


_current = threading.local()


def _watch(sock: socket.socket | None) -> None:
    watchdog: _Watchdog | None = getattr(_current, "watchdog", None)
    if watchdog is not None and sock is not None:
        watchdog.register(sock)


class _WatchedHTTPConnection(HTTPConnection):
    def connect(self) -> None:
        super().connect()
        _watch(self.sock)


class _WatchedHTTPSConnection(HTTPSConnection):
    def connect(self) -> None:
        super().connect()
        _watch(self.sock)


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


class _WatchedAdapter(HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _WatchedHTTPPool,
            "https": _WatchedHTTPSPool,
        }


def http_call(
    method: str,
    url: str,
    *,
    deadline: float,
    params: Mapping[str, str] | None = None,
    form: Mapping[str, str] | None = None,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    connect_timeout: float = 5.0,
    max_bytes: int = MAX_ANSWER_BYTES,
) -> HttpAnswer:
    """``method url`` answered within ``deadline`` seconds in all, or ``TransportError``.

    A 3xx is returned as it is (never followed: a redirected POST would become a GET elsewhere
    whose answer says nothing about the call); the caller decides what it means.
    """
    if deadline <= 0:
        raise ValueError("deadline must be positive")
    started = time.monotonic()
    watchdog = _Watchdog(deadline)
    session = requests.Session()
    adapter = _WatchedAdapter(max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    request_headers = {"Connection": "close", **(headers or {})}
    _current.watchdog = watchdog
    watchdog.start()
    try:
        try:
            response = session.request(
                method,
                url,
                params=params,
                data=form if form is not None else body,
                headers=request_headers,
                timeout=(min(connect_timeout, deadline), deadline),
                allow_redirects=False,
                stream=True,
            )
            try:
                chunks: list[bytes] = []
                size = 0
                for chunk in response.iter_content(chunk_size=16384):
                    size += len(chunk)
                    if size > max_bytes:
                        raise TransportError(
                            f"answer larger than {max_bytes} bytes from {url}", sent=True
                        )
                    chunks.append(chunk)
                    if watchdog.fired:
                        break
            finally:
                response.close()
        except requests.RequestException as exc:
            raise _transport_error(exc, watchdog, url, started) from exc
        except OSError as exc:  # a socket shut under a TLS read can surface bare
            raise _transport_error(exc, watchdog, url, started) from exc
        if watchdog.fired:
            raise TransportError(
                f"no complete answer from {url} within {deadline:g} s", sent=True, timed_out=True
            )
        return HttpAnswer(
            status=response.status_code, headers=dict(response.headers), body=b"".join(chunks)
        )
    finally:
        watchdog.cancel()
        _current.watchdog = None
        session.close()


def _transport_error(
    exc: BaseException, watchdog: _Watchdog, url: str, started: float
) -> TransportError:
    elapsed = time.monotonic() - started
    if watchdog.fired:
        return TransportError(
            f"no complete answer from {url} within the deadline ({elapsed:.1f} s)",
            sent=watchdog.connected,
            timed_out=True,
        )
    timed_out = isinstance(exc, requests.Timeout)
    # Not connected yet: the server never saw the request (refused, unreachable, DNS, or a
    # connect timeout).
    sent = watchdog.connected and not isinstance(exc, requests.ConnectTimeout)
    return TransportError(
        f"{type(exc).__name__} calling {url}: {exc}", sent=sent, timed_out=timed_out
    )
