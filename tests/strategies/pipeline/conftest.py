"""Fixtures of the pipeline's broker tests."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from kombu import Connection

from bench.chaos.core import broker as pointing_at
from bench.common import ensure_rabbitmq_vhost

URL = os.environ.get("TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/atom_test")


def purge(url: str) -> None:
    with Connection(url) as conn, conn.channel() as channel:
        # Declared as Celery declares it, so the worker finds the same queue.
        channel.queue_declare("celery", durable=True, auto_delete=False)
        channel.queue_purge("celery")


@pytest.fixture
def rabbitmq() -> Iterator[str]:
    """The in-process app (intake, sweeper) points at the tests' RabbitMQ vhost, purged."""
    ensure_rabbitmq_vhost(URL)
    purge(URL)
    with pointing_at(URL):
        yield URL
    purge(URL)
