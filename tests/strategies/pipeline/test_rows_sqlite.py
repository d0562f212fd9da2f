"""The demo runs on SQLite, which the PostgreSQL suite never touches: the plain SQL of ``rows``
(its dialect, the values SQLite hands back) and intake's conflict detection get a run of their
own there, in a subprocess with the demo's environment (sqlite_demo_path.py)."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_a_decision_and_a_conflict_replay_on_sqlite(tmp_path):
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "CELERY_BROKER_URL", "DATABASE_PREPARED_STATEMENTS")
    }
    env.update(DEBUG="true", ATOM_VAR_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="atomsite.settings")
    result = subprocess.run(
        [sys.executable, "-m", "tests.strategies.pipeline.sqlite_demo_path"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])

    assert seen["vendor"] == "sqlite"
    assert (tmp_path / "atom.sqlite3").exists()
    # A retry is answered from the stored row; a different payload changes nothing.
    assert seen["intake"] == [True, False, True]
    assert seen["conflict"] == "30.00"
    assert seen["stored"] == [1, 1, ["P1001", "P2002"]]
    # The plain-SQL reads equal the ORM's on SQLite too (naive datetimes, JSON text, floats).
    assert seen["oracle"] == [True, True, 2]
    # 30.00 approved; 25.00 more would pass the order's 50.00; 20.00 reaches it exactly.
    assert seen["decisions"] == [
        ["approved", "30.00", []],
        ["manual_review", "25.00", ["order_total_exceeded", "inactive"]],
        ["approved", "20.00", []],
    ]
    assert seen["replay"] is True
    assert seen["ledger"] == ["50.00", 2]
    assert seen["claim"] == [True, True, True]
    assert seen["executed"] == [True, False, "executed"]
    # No channel: the generic gateway; the reservation made by the same call.
    assert seen["claimed_on_insert"] == ["approved", True, None, 1, True, "60.00"]
