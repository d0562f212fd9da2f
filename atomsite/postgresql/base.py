"""Django's PostgreSQL backend, with a cheaper ``CONN_HEALTH_CHECKS``.

Django checks a reused connection at the start of every request by sending ``SELECT 1``: a round
trip per API request, about a tenth of a millisecond of CPU between the worker and PostgreSQL.
An idle connection in autocommit receives nothing from the server unless something happened to
it: a terminated backend or a restarted server sends its FATAL message or closes the socket,
which makes the socket readable. So a socket that has nothing to read is usable without asking;
one that has something (or any doubt: a transaction open, the connection marked broken) gets
Django's own ``SELECT 1``, which reads whatever came and closes the connection if it is dead.
"""

from __future__ import annotations

import select

import psycopg
from django.db.backends.postgresql import base
from psycopg import pq


def _quiet(connection: object) -> bool:
    """True if ``connection`` (psycopg's) is open, idle outside a transaction, and nothing has
    arrived on its socket since its last answer."""
    pgconn = getattr(connection, "pgconn", None)
    if pgconn is None or getattr(connection, "closed", True) or getattr(connection, "broken", True):
        return False
    if pgconn.status != pq.ConnStatus.OK or pgconn.transaction_status != pq.TransactionStatus.IDLE:
        return False
    try:
        poller = select.poll()  # not select(): descriptors above FD_SETSIZE
        poller.register(pgconn.socket, select.POLLIN | select.POLLPRI)
        return not poller.poll(0)
    except (OSError, ValueError, psycopg.Error):
        return False


class DatabaseWrapper(base.DatabaseWrapper):
    def close_if_health_check_failed(self) -> None:
        # Django's attributes (not in django-stubs): the check is due on this connection.
        due = getattr(self, "health_check_enabled", False) and not getattr(
            self, "health_check_done", True
        )
        if self.connection is not None and due and not self.pool and _quiet(self.connection):
            self.health_check_done = True
            return
        super().close_if_health_check_failed()
