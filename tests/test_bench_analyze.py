"""bench/common.py's ``analyze``: where the server runs without autovacuum (the test machines),
a bench's tables get the statistics autovacuum would give them, so its plans are production's."""

from __future__ import annotations

import time
from urllib.parse import quote

import pytest
from django.db import connection

from bench.common import analyze, autoanalyze

pytestmark = pytest.mark.django_db(transaction=True)


def database_url() -> str:
    s = connection.settings_dict
    password = f":{quote(s['PASSWORD'])}" if s["PASSWORD"] else ""
    return f"postgres://{quote(s['USER'])}{password}@{s['HOST']}:{s['PORT'] or 5432}/{s['NAME']}"


def analyzed(table: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT analyze_count FROM pg_stat_user_tables WHERE relname = %s", [table])
        return cursor.fetchone()[0]


def autovacuum_on() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SHOW autovacuum")
        return cursor.fetchone()[0] == "on"


def test_it_analyzes_only_where_autovacuum_is_off():
    before = analyzed("strategies_decision")
    ran = analyze(database_url())
    assert ran is not autovacuum_on()
    if ran:
        assert analyzed("strategies_decision") == before + 1


def test_autoanalyze_analyzes_again_while_the_block_runs():
    if autovacuum_on():
        assert analyze(database_url()) is False
        return
    before = analyzed("strategies_order")
    with autoanalyze(database_url(), every=0.05):
        # Once on entry, then again and again while the block runs (however slow the machine).
        deadline = time.monotonic() + 30
        while analyzed("strategies_order") < before + 3 and time.monotonic() < deadline:
            time.sleep(0.05)
    assert analyzed("strategies_order") >= before + 3
