"""Command-line messages (issue 12, 17): one language per run (the run's LANGUAGE_CODE, every
message through gettext), proper plurals, and ``simulate_traffic`` says when every answer was
401 (a wrong secret) instead of reporting a normal run."""

from __future__ import annotations

import io
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.management import CommandError, call_command
from django.utils import translation

from strategies.demo.traffic import TrafficReport


class Refusing(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = b'{"error": "invalid signature"}'
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def refusing_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Refusing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def run_traffic(url: str, language: str) -> tuple[str, str]:
    out = io.StringIO()
    with translation.override(language), pytest.raises(CommandError) as refused:
        call_command(
            "simulate_traffic",
            "--shop=nobody",
            "--secret=wrong-secret",
            f"--url={url}",
            "--rate=50",
            "--duration=0.3",
            "--seed=1",
            "--progress-every=100",
            stdout=out,
        )
    return out.getvalue(), str(refused.value)


@pytest.mark.django_db
def test_every_answer_401_is_said_in_english(refusing_server):
    out, error = run_traffic(refusing_server, "en")
    assert "401" in out
    assert "Every answer was 401" in error
    assert "secret" in error


@pytest.mark.django_db
def test_a_chinese_run_speaks_chinese_only(refusing_server):
    out, error = run_traffic(refusing_server, "zh-hans")
    text = out + error
    assert "401" in error and "密钥" in error
    # Beyond the command's name, codes, numbers and the URL, no English words.
    words = set(re.findall(r"[A-Za-z_]{3,}", re.sub(r"https?://\S+", "", text)))
    assert words <= {
        "simulate_traffic",
        "nobody",
        "shop",
        "secret",
        "rotate_shop_secret",
        "API",
        "create_shop",
    }, words


def test_the_traffic_summary_has_proper_plurals():
    report = TrafficReport()
    with translation.override("en"):
        assert report.summary().startswith("0 requests in")
        report.add("202")
        assert report.summary().startswith("1 request in")
        report.add("202")
        assert report.summary().startswith("2 requests in")
    assert not report.all_unauthorized()


@pytest.mark.django_db
def test_seed_demo_counts_with_plurals(db):
    out = io.StringIO()
    with translation.override("en"):
        call_command("seed_demo", "--shop=plural", stdout=out)
    text = out.getvalue()
    assert "1 shop," in text
    assert re.search(r"\b\d+ products\b", text)
    assert re.search(r"\b\d+ strategies\b", text)
    assert "platform operator (superuser)" in text
    again = io.StringIO()
    with translation.override("zh-hans"):
        call_command("seed_demo", "--shop=plural", stdout=again)
    assert "没有新内容" in again.getvalue()
