"""The decision task is published after COMMIT only, and a broker outage never fails intake.

RELIABILITY.md scenario 9 (a rolled-back request sends no task) and the intake half of
scenario 8 (broker down: 202 anyway, the row waits as `received` for the sweeper), against the
real Redis broker of the test environment.
"""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
import redis
from django.conf import settings
from django.db import transaction

from atomsite.celery import app as celery_app
from strategies.models import AfterSaleRequest, Order, RequestStatus
from strategies.platforms.generic.intake import aftersale_receive
from tests.strategies.platforms.generic.api_client import payload, post_signed

QUEUE = "celery"


@pytest.fixture
def broker(redis_broker) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_broker)
    yield client
    client.close()


def _reset_publisher_pools() -> None:
    """Celery caches its connection and producer pools: drop them so the next publish connects
    to whatever the broker URL is now (kombu keeps the pools themselves, keyed by URL)."""
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


@pytest.fixture
def broker_down(monkeypatch) -> Iterator[str]:
    """The app publishes to a closed local port (override_settings would not reach Celery, and
    CELERY_BROKER_URL from the environment wins over its config: the write URL is the seam)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed when the block ends: nothing listens
    url = f"redis://127.0.0.1:{port}/0"
    _reset_publisher_pools()
    monkeypatch.setenv("CELERY_BROKER_WRITE_URL", url)
    yield url
    monkeypatch.delenv("CELERY_BROKER_WRITE_URL")
    _reset_publisher_pools()


@pytest.fixture
def broker_silent(monkeypatch) -> Iterator[str]:
    """A local "broker" that accepts connections and never answers (a hung Redis)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    _reset_publisher_pools()
    monkeypatch.setenv("CELERY_BROKER_WRITE_URL", f"redis://127.0.0.1:{server.getsockname()[1]}/0")
    yield "silent"
    monkeypatch.delenv("CELERY_BROKER_WRITE_URL")
    _reset_publisher_pools()
    stop.set()
    thread.join(2)
    for conn in held:
        conn.close()
    server.close()


def published(broker: redis.Redis) -> list[tuple[str, list]]:
    """(task name, args) of every message waiting in the queue."""
    result = []
    for raw in broker.lrange(QUEUE, 0, -1):
        message = json.loads(raw)
        args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
        result.append((message["headers"]["task"], args))
    return result


@pytest.mark.django_db(transaction=True)
def test_it_sends_no_task_when_the_transaction_rolls_back(shop, broker):
    assert broker.llen(QUEUE) == 0
    with pytest.raises(RuntimeError, match="after the insert"), transaction.atomic():
        receipt = aftersale_receive(shop=shop, payload=payload())
        assert receipt.created
        assert AfterSaleRequest.objects.filter(pk=receipt.request.pk).exists()
        raise RuntimeError("after the insert")

    assert not AfterSaleRequest.objects.exists()
    assert not Order.objects.exists()
    assert broker.llen(QUEUE) == 0
    assert published(broker) == []


@pytest.mark.django_db(transaction=True)
def test_it_sends_exactly_one_task_after_commit(shop, broker):
    with transaction.atomic():
        receipt = aftersale_receive(shop=shop, payload=payload())
        assert broker.llen(QUEUE) == 0  # nothing before COMMIT

    assert published(broker) == [("strategies.decide_request", [receipt.request.pk])]


@pytest.mark.django_db(transaction=True)
def test_it_sends_one_task_per_accepted_post_and_none_for_a_retry_or_a_rejection(
    client, shop, broker
):
    assert post_signed(client, shop, payload()).status_code == 202
    assert post_signed(client, shop, payload()).status_code == 200
    assert post_signed(client, shop, payload(amount="1.00")).status_code == 409
    assert post_signed(client, shop, payload(aftersale_id="AS2", amount="0")).status_code == 400

    request = AfterSaleRequest.objects.get()
    assert published(broker) == [("strategies.decide_request", [request.pk])]


@pytest.mark.django_db(transaction=True)
def test_it_answers_202_quickly_when_the_broker_is_down(client, shop, broker_down, caplog):
    started = time.monotonic()
    response = post_signed(client, shop, payload())
    elapsed = time.monotonic() - started

    assert response.status_code == 202
    assert response.json() == {"aftersale_id": "AS20261122000001", "status": "received"}
    assert elapsed < 3.0, elapsed
    request = AfterSaleRequest.objects.get()
    assert request.status == RequestStatus.RECEIVED  # the sweeper's to re-enqueue
    assert f"could not publish strategies.decide_request [{request.pk}]" in caplog.text


@pytest.mark.django_db(transaction=True)
def test_it_answers_202_within_seconds_when_the_broker_hangs(client, shop, broker_silent, caplog):
    started = time.monotonic()
    response = post_signed(client, shop, payload())
    elapsed = time.monotonic() - started

    assert response.status_code == 202
    assert elapsed < 5.0, elapsed
    request = AfterSaleRequest.objects.get()
    assert request.status == RequestStatus.RECEIVED
    assert f"could not publish strategies.decide_request [{request.pk}]" in caplog.text


@pytest.mark.django_db(transaction=True)
def test_it_publishes_again_once_the_broker_is_back(client, shop, broker, monkeypatch):
    # A publish while the broker is down, then one after it is back: the second goes out.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    _reset_publisher_pools()
    monkeypatch.setenv("CELERY_BROKER_WRITE_URL", f"redis://127.0.0.1:{port}/0")
    assert post_signed(client, shop, payload(aftersale_id="AS-DOWN")).status_code == 202
    monkeypatch.delenv("CELERY_BROKER_WRITE_URL")
    _reset_publisher_pools()

    assert post_signed(client, shop, payload(aftersale_id="AS-UP")).status_code == 202

    up = AfterSaleRequest.objects.get(aftersale_id="AS-UP")
    assert published(broker) == [("strategies.decide_request", [up.pk])]
    assert settings.CELERY_BROKER_URL.startswith("redis://")


@pytest.mark.django_db(transaction=True)
def test_publishing_builds_the_write_connection_once_per_broker_url(
    shop, broker, monkeypatch, redis_broker
):
    # Building kombu's Connection reads a dozen Celery settings through Django's and cost more
    # CPU than the publish itself (issue 16): it is built once per process and write URL.
    from strategies.pipeline import publish

    built: list[str] = []
    original = celery_app.connection_for_write

    def counting(*args, **kwargs):
        connection = original(*args, **kwargs)
        built.append(connection.as_uri())
        return connection

    monkeypatch.setattr(celery_app, "connection_for_write", counting)
    for request_id in range(1, 6):
        assert publish.publish_now(publish.DECIDE_TASK, [request_id])
    assert published(broker) == [(publish.DECIDE_TASK, [i]) for i in range(5, 0, -1)]
    assert len(built) <= 1  # none if an earlier test of this process built it already

    # Pointed at another broker URL (here another name of the same server), the next publish
    # builds a connection for it and goes there.
    parts = urlsplit(redis_broker)
    alias = "localhost" if parts.hostname == "127.0.0.1" else "127.0.0.1"
    other = parts._replace(netloc=parts.netloc.replace(parts.hostname or "", alias, 1)).geturl()
    monkeypatch.setenv("CELERY_BROKER_WRITE_URL", other)
    assert publish.publish_now(publish.DECIDE_TASK, [99])
    assert alias in built[-1]
    assert published(broker)[0] == (publish.DECIDE_TASK, [99])
