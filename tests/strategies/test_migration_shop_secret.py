"""Migration 0005 seals the shops' plaintext API secrets in place, and unseals them going back."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from strategies.encryption import secret_open

BEFORE = [("strategies", "0005_strategy_version_archive_and_bounds")]
AFTER = [("strategies", "0006_shop_secret_sealed")]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True)
def test_existing_secrets_are_sealed_and_unsealed_back():
    latest = MigrationExecutor(connection).loader.graph.leaf_nodes()
    try:
        old_apps = migrate(BEFORE)
        OldShop = old_apps.get_model("strategies", "Shop")
        OldShop.objects.create(code="legacy", name="Legacy", api_secret="plain-legacy-secret")

        new_apps = migrate(AFTER)
        shop = new_apps.get_model("strategies", "Shop").objects.get(code="legacy")
        assert "plain-legacy-secret" not in shop.api_secret_sealed
        assert secret_open(shop.api_secret_sealed) == "plain-legacy-secret"
        assert (shop.api_secret_previous_sealed, shop.api_secret_previous_until) == ("", None)

        old_apps = migrate(BEFORE)
        assert old_apps.get_model("strategies", "Shop").objects.get(code="legacy").api_secret == (
            "plain-legacy-secret"
        )
    finally:
        migrate(latest)
