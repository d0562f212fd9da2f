"""Running one piece of work from many threads at once, each with its own connection."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

from django.db import connection


def run_concurrently(work: Callable[[Any], Any], items: Sequence[Any], *, threads: int) -> list:
    """Runs ``work`` over ``items`` from ``threads`` threads released at the same moment."""
    queue = list(items)
    lock = threading.Lock()
    start = threading.Barrier(threads)
    results: list = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            start.wait()
            while True:
                with lock:
                    if not queue:
                        return
                    item = queue.pop()
                results.append(work(item))
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(60)
    assert not errors, errors
    return results


def someone_waits_on_a_lock() -> bool:
    """Whether another session of the test database is blocked on a lock right now."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0] > 0
