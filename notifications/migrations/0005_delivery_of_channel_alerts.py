# A delivery carries its shop and belongs to a cap alert or to a channel alert's notice.

import django.db.models.deletion
from django.db import migrations, models
from django.db.models import OuterRef, Q, Subquery


def shops_from_alerts(apps, schema_editor):
    """Every existing delivery is a cap alert's: its shop is the alert's."""
    Alert = apps.get_model("notifications", "Alert")
    Delivery = apps.get_model("notifications", "Delivery")
    Delivery.objects.filter(shop__isnull=True).update(
        shop=Subquery(Alert.objects.filter(pk=OuterRef("alert_id")).values("shop_id")[:1])
    )


class Migration(migrations.Migration):
    dependencies = [
        ("notifications", "0004_deadline_reminder"),
        ("strategies", "0011_review_queue"),
    ]

    operations = [
        migrations.AddField(
            model_name="delivery",
            name="shop",
            field=models.ForeignKey(
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="deliveries",
                to="strategies.shop",
                verbose_name="shop",
            ),
        ),
        migrations.RunPython(shops_from_alerts, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="delivery",
            name="shop",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE,
                related_name="deliveries",
                to="strategies.shop",
                verbose_name="shop",
            ),
        ),
        migrations.AlterField(
            model_name="delivery",
            name="alert",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="deliveries",
                to="notifications.alert",
                verbose_name="alert",
            ),
        ),
        migrations.AddField(
            model_name="delivery",
            name="notice",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="deliveries",
                to="notifications.notice",
                verbose_name="notice",
            ),
        ),
        migrations.AddConstraint(
            model_name="delivery",
            constraint=models.UniqueConstraint(
                fields=("notice", "channel"), name="delivery_once_per_notice_channel"
            ),
        ),
        migrations.AddConstraint(
            model_name="delivery",
            constraint=models.CheckConstraint(
                condition=Q(alert__isnull=False, notice__isnull=True)
                | Q(alert__isnull=True, notice__isnull=False),
                name="delivery_of_an_alert_or_a_notice",
            ),
        ),
    ]
