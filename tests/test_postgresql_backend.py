"""The health check of reused connections (atomsite/postgresql): a quiet connection is reused
without a round trip; one whose backend was terminated is replaced before the request uses it."""

from __future__ import annotations

import select
import time

import psycopg
import pytest
from django.db import connections

from tests.worker import worker_database_url

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def wrapper():
    """A connection of its own, as a web worker holds one between requests."""
    conn = connections.create_connection("default")
    assert conn.health_check_enabled is False  # set when it connects
    conn.ensure_connection()
    yield conn
    conn.close()


def backend_pid(conn) -> int:
    with conn.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def last_statement(pid: int) -> str:
    with psycopg.connect(worker_database_url(), autocommit=True) as other:
        row = other.execute("SELECT query FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone()
    return row[0]


def next_request(conn) -> None:
    """What Django does between two requests: the health check is due again."""
    conn.close_if_unusable_or_obsolete()
    conn.close_if_health_check_failed()


def test_the_backend_is_ours_and_checks_health():
    conn = connections["default"]
    assert type(conn).__module__ == "atomsite.postgresql.base"
    assert conn.settings_dict["CONN_HEALTH_CHECKS"] is True


def test_a_quiet_connection_is_reused_without_a_round_trip(wrapper):
    pid = backend_pid(wrapper)
    raw = wrapper.connection
    next_request(wrapper)
    assert wrapper.connection is raw
    assert wrapper.health_check_done is True
    assert last_statement(pid) == "SELECT pg_backend_pid()"  # no SELECT 1 sent


def test_a_terminated_backend_is_replaced_before_the_request_uses_it(wrapper):
    pid = backend_pid(wrapper)
    raw = wrapper.connection
    with psycopg.connect(worker_database_url(), autocommit=True) as other:
        assert other.execute("SELECT pg_terminate_backend(%s)", [pid]).fetchone()[0] is True
    # The FATAL message (or the close) reaches the socket: the check sees it there.
    poller = select.poll()
    poller.register(raw.pgconn.socket, select.POLLIN)
    assert poller.poll(5000), "nothing arrived from the terminated backend"
    next_request(wrapper)
    assert wrapper.connection is None  # closed by the check, not by a failing request
    assert backend_pid(wrapper) != pid  # the request runs on a new connection


def test_a_connection_left_in_a_transaction_gets_the_full_check(wrapper):
    pid = backend_pid(wrapper)
    wrapper.connection.execute("BEGIN")  # as no request should leave it: Django asks
    wrapper.health_check_done = False
    wrapper.close_if_health_check_failed()
    deadline = time.monotonic() + 2
    while last_statement(pid) != "SELECT 1" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert last_statement(pid) == "SELECT 1"
