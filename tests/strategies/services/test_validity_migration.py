"""The migration that bounds validity dates (RELIABILITY.md 28) on rows saved before the bounds:
year 10000 and year 1 become the in-bounds value that means the same, and the migration runs."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [
    ("strategies", "0004_decision_shop_label_and_order_approvals"),
    ("notifications", "0001_alerts_notices_deliveries"),
]


@pytest.mark.django_db(transaction=True)
def test_out_of_bounds_dates_are_brought_within_them_and_the_constraints_added():
    executor = MigrationExecutor(connection)
    latest = executor.loader.graph.leaf_nodes()
    executor.migrate(BEFORE)
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO strategies_shop (code, name, timezone, phone, alert_email, "
                "api_secret, created_at) VALUES ('old', 'Old', 'America/Los_Angeles', '', '', "
                "'x', now()) RETURNING id"
            )
            shop_id = cursor.fetchone()[0]
            for name, valid_from, valid_until in [
                ("forever", None, "10000-01-01 07:59:59+00"),
                ("since year 1", "0001-01-01 00:00+08", None),
                ("ended in year 1", "0001-01-01 00:00+08", "0001-06-01 00:00+08"),
                ("starts in 3000", "3000-01-01 00:00+00", "4000-01-01 00:00+00"),
                ("ordinary", "2026-01-01 00:00+00", "2027-01-01 00:00+00"),
            ]:
                cursor.execute(
                    "INSERT INTO strategies_strategy (shop_id, scenario, template, position, "
                    "name, remark, status, valid_from, valid_until, covers_shipped, "
                    "covers_received, daily_cap, reasons, risk_control, created_at, updated_at) "
                    "VALUES (%s, 'post_shipment_refund', '', 1, %s, '', 'active', %s, %s, true, "
                    "true, 100, '[]', true, now(), now())",
                    [shop_id, name, valid_from, valid_until],
                )
    finally:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(latest)

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT name, to_char(valid_from AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'), "
            "to_char(valid_until AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') "
            "FROM strategies_strategy ORDER BY name"
        )
        rows = cursor.fetchall()
    assert rows == [
        ("ended in year 1", None, "1999-12-31 10:00:00"),  # still ended
        ("forever", None, None),  # open end: the same in practice
        ("ordinary", "2026-01-01 00:00:00", "2027-01-01 00:00:00"),
        ("since year 1", None, None),  # open start
        ("starts in 3000", "2100-01-01 11:59:59", None),  # still not started
    ]
