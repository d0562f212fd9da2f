"""Read state per user: a ``NoticeRead`` row per (notice, user) replaces ``Notice.read_at``.

A notice read before this migration was read for everyone (the state was shared), so each
member of its shop and each operator keeps it as read, at the same time; nobody's inbox
changes. Backwards, a notice is read again from the first time anyone read it.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def copy_shared_read_state(apps, schema_editor):
    Notice = apps.get_model("notifications", "Notice")
    NoticeRead = apps.get_model("notifications", "NoticeRead")
    Membership = apps.get_model("strategies", "Membership")
    User = apps.get_model(*settings.AUTH_USER_MODEL.split("."))
    operators = list(User.objects.filter(is_superuser=True).values_list("id", flat=True))
    members: dict[int, list[int]] = {}
    for user_id, shop_id in Membership.objects.values_list("user_id", "shop_id"):
        members.setdefault(shop_id, []).append(user_id)
    read = Notice.objects.filter(read_at__isnull=False).values_list("id", "shop_id", "read_at")
    rows = [
        NoticeRead(notice_id=notice_id, user_id=user_id, read_at=read_at)
        for notice_id, shop_id, read_at in read.iterator()
        for user_id in {*members.get(shop_id, []), *operators}
    ]
    NoticeRead.objects.bulk_create(rows, batch_size=1000, ignore_conflicts=True)


def restore_shared_read_state(apps, schema_editor):
    Notice = apps.get_model("notifications", "Notice")
    NoticeRead = apps.get_model("notifications", "NoticeRead")
    first = NoticeRead.objects.filter(notice=models.OuterRef("pk")).order_by("read_at")
    Notice.objects.update(read_at=models.Subquery(first.values("read_at")[:1]))


class Migration(migrations.Migration):
    dependencies = [
        ("notifications", "0001_alerts_notices_deliveries"),
        ("strategies", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="NoticeRead",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("read_at", models.DateTimeField(verbose_name="read at")),
                (
                    "notice",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="reads",
                        to="notifications.notice",
                        verbose_name="notice",
                    ),
                ),
                (
                    "user",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="notice_reads",
                        to=settings.AUTH_USER_MODEL,
                        verbose_name="user",
                    ),
                ),
            ],
            options={
                "verbose_name": "notice read",
                "verbose_name_plural": "notices read",
                "constraints": [
                    models.UniqueConstraint(
                        fields=("notice", "user"), name="notice_read_once_per_user"
                    )
                ],
            },
        ),
        migrations.RunPython(copy_shared_read_state, restore_shared_read_state),
        migrations.RemoveIndex(model_name="notice", name="notice_shop_unread"),
        migrations.RemoveField(model_name="notice", name="read_at"),
    ]
