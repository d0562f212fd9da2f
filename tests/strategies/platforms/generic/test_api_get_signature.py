"""RELIABILITY.md scenario 31 (first half): a GET is signed over its path (API.md 1.1), so
headers captured from one signed GET read nothing else."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from django.conf import settings
from django.db import connection

from strategies.platforms.generic.signing import sign
from tests.factories import make_request
from tests.strategies.platforms.generic.api_client import CREATE_URL, detail_url, headers_for

ROOT = Path(__file__).resolve().parents[4]


def test_captured_get_headers_do_not_read_another_request(client, shop):
    make_request(shop=shop, aftersale_id="AS1")
    make_request(shop=shop, aftersale_id="AS2")
    captured = headers_for(shop, get=detail_url("AS1"))
    assert client.get(detail_url("AS1"), headers=captured).status_code == 200

    replayed = client.get(detail_url("AS2"), headers=captured)
    assert replayed.status_code == 401
    assert replayed.json() == {"error": "Unknown shop or wrong signature."}
    assert "AS2" not in replayed.content.decode()


def test_a_get_signed_as_in_1_0_is_refused(client, shop):
    # API.md 1.0 signed a GET over "<timestamp>." alone: those headers fitted every path.
    make_request(shop=shop, aftersale_id="AS1")
    old_style = headers_for(shop, b"")
    response = client.get(detail_url("AS1"), headers=old_style)
    assert response.status_code == 401


def test_the_query_string_is_not_part_of_the_signed_path(client, shop):
    make_request(shop=shop, aftersale_id="AS1")
    headers = headers_for(shop, get=detail_url("AS1"))
    assert client.get(detail_url("AS1") + "?x=1", headers=headers).status_code == 200


@pytest.mark.parametrize("header", ["RAW_URI", "REQUEST_URI"])
def test_the_path_is_taken_as_the_server_received_it(client, shop, header):
    # gunicorn puts the request target as sent in RAW_URI (uWSGI, mod_wsgi: REQUEST_URI).
    make_request(shop=shop, aftersale_id="AS:1")
    sent = f"{CREATE_URL}/AS%3A1"
    ok = client.get(sent, headers=headers_for(shop, get=sent), **{header: sent + "?x=1"})
    assert ok.status_code == 200, ok.content
    assert ok.json()["aftersale_id"] == "AS:1"
    # Signed over the decoded path, not the one sent: refused.
    decoded = f"{CREATE_URL}/AS:1"
    wrong = client.get(sent, headers=headers_for(shop, get=decoded), **{header: sent})
    assert wrong.status_code == 401


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def gunicorn_url(transactional_db):
    """The project's WSGI app under gunicorn (the production server), on the test database."""
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": os.environ["DATABASE_URL"].rsplit("/", 1)[0]
        + "/"
        + connection.settings_dict["NAME"],
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "atomsite.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
            "--timeout",
            "30",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(url + "/healthz", timeout=10)
                break
            except requests.RequestException:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_under_gunicorn_the_signature_binds_the_path_exactly_as_sent(gunicorn_url, shop):
    make_request(shop=shop, aftersale_id="AS:9")
    make_request(shop=shop, aftersale_id="AS9")
    session = requests.Session()
    timestamp = str(int(time.time()))

    def get(path: str, signed_path: str) -> requests.Response:
        signature = sign(
            secret=shop.api_secret, timestamp=timestamp, body=b"GET " + signed_path.encode()
        )
        headers = {
            "X-Atom-Shop": shop.code,
            "X-Atom-Timestamp": timestamp,
            "X-Atom-Signature": signature,
            "Accept-Language": "en",
        }
        return session.get(gunicorn_url + path, headers=headers, timeout=10)

    encoded = f"{CREATE_URL}/AS%3A9"
    assert get(encoded, encoded).json()["aftersale_id"] == "AS:9"
    assert get(f"{CREATE_URL}/AS:9", f"{CREATE_URL}/AS:9").status_code == 200
    # The same id, encoded otherwise than signed; and a captured signature on another path.
    assert get(encoded, f"{CREATE_URL}/AS:9").status_code == 401
    assert get(f"{CREATE_URL}/AS9", encoded).status_code == 401
