"""The migration that makes strategy names unique per shop: names already taken twice in a shop
are numbered first (" (2)", " (3)"), archived strategies and other shops keep theirs."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

SUFFIX = "_strategy_name_unique_per_shop"


def _migration_and_parent(executor):
    node = next(
        key
        for key in executor.loader.graph.nodes
        if key[0] == "strategies" and key[1].endswith(SUFFIX)
    )
    parents = [p for p in executor.loader.graph.node_map[node].parents if p[0] == "strategies"]
    return node, parents


@pytest.mark.django_db(transaction=True)
def test_names_taken_twice_are_numbered_and_the_constraint_added():
    executor = MigrationExecutor(connection)
    latest = executor.loader.graph.leaf_nodes()
    _node, before = _migration_and_parent(executor)
    executor.migrate(before)
    try:
        with connection.cursor() as cursor:
            shops = []
            for code in ("a", "b"):
                cursor.execute(
                    "INSERT INTO strategies_shop (code, name, timezone, phone, alert_email, "
                    "api_secret_sealed, api_secret_previous_sealed, created_at) VALUES "
                    "(%s, %s, 'Asia/Shanghai', '', '', 'x', '', now()) RETURNING id",
                    [code, code],
                )
                shops.append(cursor.fetchone()[0])
            for shop_id, name, archived in [
                (shops[0], "Night", False),
                (shops[0], "Night", False),
                (shops[0], "Night", False),
                (shops[0], "Night (2)", False),
                (shops[0], "Night", True),
                (shops[1], "Night", False),
            ]:
                cursor.execute(
                    "INSERT INTO strategies_strategy (shop_id, scenario, template, position, "
                    "name, remark, status, covers_shipped, covers_received, daily_cap, reasons, "
                    "risk_control, version, archived_at, created_at, updated_at) VALUES (%s, "
                    "'post_shipment_refund', '', 1, %s, '', 'inactive', true, true, 100, '[]', "
                    "true, 1, CASE WHEN %s THEN now() END, now(), now())",
                    [shop_id, name, archived],
                )
    finally:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(latest)

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT s.code, t.name, t.archived_at IS NOT NULL FROM strategies_strategy t "
            "JOIN strategies_shop s ON s.id = t.shop_id ORDER BY t.id"
        )
        rows = cursor.fetchall()
    assert rows == [
        ("a", "Night", False),
        ("a", "Night (3)", False),  # " (2)" was taken
        ("a", "Night (4)", False),
        ("a", "Night (2)", False),
        ("a", "Night", True),
        ("b", "Night", False),
    ]
