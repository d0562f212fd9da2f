"""One marketplace call: a whole-call deadline whatever the server does, and no redirect."""

import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from strategies.platforms.http import TransportError, http_call


class RawServer:
    """A TCP server on 127.0.0.1 that answers each connection with ``behave(conn)``."""

    def __init__(self, behave: Callable[[socket.socket], None]) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.behave = behave
        self.accepted = 0
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}/x"

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(10)
            try:
                conn.recv(65536)
                self.behave(conn)
            except OSError:
                pass

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def raw_server() -> Iterator[Callable[[Callable[[socket.socket], None]], RawServer]]:
    servers: list[RawServer] = []

    def start(behave):
        server = RawServer(behave)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def drip(data: bytes, interval: float) -> Callable[[socket.socket], None]:
    def behave(conn: socket.socket) -> None:
        for i in range(len(data)):
            conn.sendall(data[i : i + 1])
            time.sleep(interval)

    return behave


BODY = b'{"result":1}'
ANSWER = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 12\r\n\r\n" + BODY


def test_it_returns_the_answer(raw_server):
    server = raw_server(lambda conn: conn.sendall(ANSWER))
    answer = http_call("GET", server.url, deadline=2)
    assert (answer.status, answer.body) == (200, BODY)


@pytest.mark.parametrize(
    "behave",
    [
        drip(ANSWER, 0.1),  # headers a byte at a time, each well within any read timeout
        lambda conn: (conn.sendall(ANSWER[:-8]), drip(ANSWER[-8:], 0.5)(conn)),  # the body
        lambda conn: time.sleep(5),  # nothing at all
    ],
    ids=["dripping-headers", "dripping-body", "silent"],
)
def test_the_deadline_bounds_the_whole_call(raw_server, behave):
    server = raw_server(behave)
    started = time.monotonic()
    with pytest.raises(TransportError) as exc:
        http_call("GET", server.url, deadline=1.0)
    assert 0.9 <= time.monotonic() - started < 1.6
    assert exc.value.timed_out and exc.value.sent


def test_a_redirect_is_returned_not_followed(raw_server):
    redirect = b"HTTP/1.1 302 Found\r\nLocation: /login\r\nContent-Length: 0\r\n\r\n"
    server = raw_server(lambda conn: conn.sendall(redirect))
    answer = http_call("POST", server.url, form={"a": "1"}, deadline=2)
    assert answer.status == 302
    assert server.accepted == 1


def test_a_refused_connection_was_not_sent():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(TransportError) as exc:
        http_call("POST", f"http://127.0.0.1:{port}/x", deadline=2)
    assert exc.value.sent is False


def test_a_connection_closed_without_an_answer_may_have_been_processed(raw_server):
    server = raw_server(lambda conn: None)  # reads the request, closes
    with pytest.raises(TransportError) as exc:
        http_call("POST", server.url, form={"a": "1"}, deadline=2)
    assert exc.value.sent is True


def test_an_oversized_answer_is_refused(raw_server):
    big = b"HTTP/1.1 200 OK\r\nContent-Length: 2000\r\n\r\n" + b"x" * 2000
    server = raw_server(lambda conn: conn.sendall(big))
    with pytest.raises(TransportError):
        http_call("GET", server.url, deadline=2, max_bytes=1000)
