"""On PostgreSQL, parameters are bound on the server and the hot path's statements prepared once
per connection (atomsite/settings.py); DATABASE_PREPARED_STATEMENTS=false turns both off."""

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

from django.db import connection

from strategies.pipeline.rows import strategies_load
from tests.factories import make_strategy

ROOT = Path(__file__).resolve().parents[3]


def prepared_statements() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [row[0] for row in cursor.fetchall()]


def test_a_statement_run_often_is_prepared_once_on_the_connection(shop):
    make_strategy(shop=shop, status="active")
    assert connection.features.uses_server_side_binding
    query = {
        "shop_id": shop.pk,
        "scenarios": ("post_shipment_refund",),
        "day": dt.date(2026, 11, 22),
        "order_id": "OD-1",
    }
    for _ in range(5):
        strategies_load(**query)
    assert not [s for s in prepared_statements() if '"strategies_strategy" st' in s]
    for _ in range(3):
        loaded, _refunded = strategies_load(**query)
        assert len(loaded) == 1
    prepared = [s for s in prepared_statements() if '"strategies_strategy" st' in s]
    assert len(prepared) == 1  # the 6th run prepared it, later ones reuse it


def test_the_setting_turns_server_side_binding_off():
    def options(**extra: str) -> dict:
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "atomsite.settings", **extra}
        code = (
            "import json, django; django.setup(); from django.conf import settings; "
            "print(json.dumps(settings.DATABASES['default'].get('OPTIONS', {})))"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
        )
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)

    assert options() == {"server_side_binding": True, "prepare_threshold": 5}
    assert options(DATABASE_PREPARED_STATEMENTS="false") == {}
