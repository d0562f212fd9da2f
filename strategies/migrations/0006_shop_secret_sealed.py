"""Shop API secrets encrypted at rest (issue 11, point 11), with a previous secret for rotation.

The existing plaintext secrets are sealed in place; going back opens them again.
"""

from django.db import migrations, models


def seal_secrets(apps, schema_editor):
    from strategies.encryption import secret_seal

    Shop = apps.get_model("strategies", "Shop")
    shops = Shop.objects.using(schema_editor.connection.alias)
    for pk, plain in shops.values_list("pk", "api_secret_sealed"):
        shops.filter(pk=pk).update(api_secret_sealed=secret_seal(plain))


def open_secrets(apps, schema_editor):
    from strategies.encryption import secret_open

    Shop = apps.get_model("strategies", "Shop")
    shops = Shop.objects.using(schema_editor.connection.alias)
    for pk, sealed in shops.values_list("pk", "api_secret_sealed"):
        shops.filter(pk=pk).update(api_secret_sealed=secret_open(sealed))


class Migration(migrations.Migration):
    dependencies = [
        ("strategies", "0005_strategy_version_archive_and_bounds"),
    ]

    operations = [
        migrations.RenameField(
            model_name="shop",
            old_name="api_secret",
            new_name="api_secret_sealed",
        ),
        migrations.AlterField(
            model_name="shop",
            name="api_secret_sealed",
            field=models.TextField(editable=False, verbose_name="API secret (encrypted)"),
        ),
        migrations.AddField(
            model_name="shop",
            name="api_secret_previous_sealed",
            field=models.TextField(
                blank=True,
                default="",
                editable=False,
                verbose_name="previous API secret (encrypted)",
            ),
        ),
        migrations.AddField(
            model_name="shop",
            name="api_secret_previous_until",
            field=models.DateTimeField(
                blank=True,
                editable=False,
                null=True,
                verbose_name="previous API secret accepted until",
            ),
        ),
        migrations.RunPython(seal_secrets, open_secrets),
    ]
