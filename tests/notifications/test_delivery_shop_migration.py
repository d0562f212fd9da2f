"""The migration that lets a delivery belong to a channel alert's notice gives every existing
(cap alert) delivery its alert's shop, so the scoped admin lists it for the same shop as before."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("notifications", "0004_deadline_reminder")]
AFTER = [("notifications", "0005_delivery_of_channel_alerts")]
NOW = dt.datetime(2026, 3, 1, 4, 0, tzinfo=dt.UTC)


def migrate(targets):
    executor = MigrationExecutor(connection)
    others = [node for node in executor.loader.graph.leaf_nodes() if node[0] != "notifications"]
    executor.migrate(targets)
    return executor.loader.project_state(others + targets).apps


@pytest.mark.django_db(transaction=True)
def test_existing_deliveries_take_their_alerts_shop():
    apps = migrate(BEFORE)
    Shop = apps.get_model("strategies", "Shop")
    Strategy = apps.get_model("strategies", "Strategy")
    Alert = apps.get_model("notifications", "Alert")
    Delivery = apps.get_model("notifications", "Delivery")
    made = {}
    for code in ("d-a", "d-b"):
        shop = Shop.objects.create(code=code, name=code, api_secret_sealed="unused")
        strategy = Strategy.objects.create(
            shop=shop, scenario="pre_shipment_refund", name="s", position=1
        )
        alert = Alert.objects.create(
            shop=shop,
            strategy=strategy,
            day=NOW.date(),
            level=95,
            consumed=Decimal("95.00"),
            cap=Decimal("100.00"),
        )
        delivery = Delivery.objects.create(
            alert=alert, channel="sms", recipient="1", body="b", next_attempt_at=NOW
        )
        made[delivery.pk] = shop.pk

    apps = migrate(AFTER)
    Delivery = apps.get_model("notifications", "Delivery")
    assert dict(Delivery.objects.values_list("pk", "shop_id")) == made
    assert not Delivery.objects.filter(notice__isnull=False).exists()
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
