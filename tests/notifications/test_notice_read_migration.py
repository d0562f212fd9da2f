"""The migration to per-user read state keeps every inbox as it was: a notice read before it
(read for everyone, the state was shared) stays read for each member of its shop and each
operator; an unread one stays unread; backwards, read_at comes back from the first reading."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("notifications", "0001_alerts_notices_deliveries")]
AFTER = [("notifications", "0002_notice_read_per_user")]
READ_AT = dt.datetime(2026, 3, 1, 4, 0, tzinfo=dt.UTC)


def migrate(targets):
    """Migrates notifications to ``targets``; the models of every other app at their latest."""
    executor = MigrationExecutor(connection)
    others = [node for node in executor.loader.graph.leaf_nodes() if node[0] != "notifications"]
    executor.migrate(targets)
    return executor.loader.project_state(others + targets).apps


# Real commits: PostgreSQL refuses to alter a table with pending deferred checks in one
# transaction, and a migration is DDL.
@pytest.mark.django_db(transaction=True)
def test_shared_read_state_becomes_each_users_and_back():
    apps = migrate(BEFORE)
    Shop = apps.get_model("strategies", "Shop")
    User = apps.get_model("auth", "User")
    Membership = apps.get_model("strategies", "Membership")
    Notice = apps.get_model("notifications", "Notice")
    shop = Shop.objects.create(code="m-a", name="A", api_secret_sealed="unused")
    other = Shop.objects.create(code="m-b", name="B", api_secret_sealed="unused")
    owner = User.objects.create(username="m-owner", is_staff=True)
    viewer = User.objects.create(username="m-viewer", is_staff=True)
    outsider = User.objects.create(username="m-other", is_staff=True)
    operator = User.objects.create(username="m-op", is_staff=True, is_superuser=True)
    Membership.objects.create(user=owner, shop=shop, role="owner")
    Membership.objects.create(user=viewer, shop=shop, role="viewer")
    Membership.objects.create(user=outsider, shop=other, role="owner")
    read = Notice.objects.create(shop=shop, title="read", body="b", read_at=READ_AT)
    unread = Notice.objects.create(shop=shop, title="unread", body="b")

    apps = migrate(AFTER)
    NoticeRead = apps.get_model("notifications", "NoticeRead")
    rows = set(NoticeRead.objects.values_list("notice_id", "user_id", "read_at"))
    assert rows == {
        (read.pk, owner.pk, READ_AT),
        (read.pk, viewer.pk, READ_AT),
        (read.pk, operator.pk, READ_AT),
    }
    assert not NoticeRead.objects.filter(notice_id=unread.pk).exists()

    apps = migrate(BEFORE)
    Notice = apps.get_model("notifications", "Notice")
    assert Notice.objects.get(pk=read.pk).read_at == READ_AT
    assert Notice.objects.get(pk=unread.pk).read_at is None
    migrate(AFTER)
