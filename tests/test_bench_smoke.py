"""The in-process benches still run against today's code: a short run of each, on a database of
its own on the test PostgreSQL. They print figures and are never timed here, but a bench that no
longer runs (a renamed function, a new model field) was found only when someone needed its
numbers (bench/intake and bench/decide/statements.py, 2026-12-04)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def bench_database_url() -> Iterator[str]:
    """A database of this run's own (two runs on one server never share it), dropped after."""
    parts = urlsplit(os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/atom"))
    name = f"atom_bench_smoke_{uuid.uuid4().hex[:12]}"
    yield parts._replace(path=f"/{name}").geturl()
    with psycopg.connect(parts._replace(path="/postgres").geturl(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run_bench(script: str, *args: str, tmp_path: Path, database_url: str) -> dict:
    out = tmp_path / "result.json"
    env = {**os.environ, "BENCH_DATABASE_URL": database_url}
    result = subprocess.run(
        [sys.executable, script, *args, "--json", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(out.read_text())


@pytest.mark.timeout(300)
def test_bench_intake_runs_and_every_request_is_accepted(tmp_path, bench_database_url):
    # It exits non-zero when a request is not answered 202.
    figures = run_bench(
        "bench/intake/run.py",
        *("--requests", "25", "--block", "25"),
        tmp_path=tmp_path,
        database_url=bench_database_url,
    )
    variants = figures["variants"]
    assert len(variants) == 4
    assert all(v["requests"] == 25 and v["python_ms"] > 0 for v in variants.values())


@pytest.mark.timeout(300)
def test_bench_decide_statements_runs_every_statement_both_ways(tmp_path, bench_database_url):
    figures = run_bench(
        "bench/decide/statements.py",
        *("--iterations", "5"),
        tmp_path=tmp_path,
        database_url=bench_database_url,
    )
    cases = {case["statement"]: case for case in figures["cases"]}
    assert {"request read (locked)", "strategies read", "ledger reservation"} <= set(cases)
    assert all(c["sql_cpu_us"] > 0 and c["orm_cpu_us"] > 0 for c in cases.values())
