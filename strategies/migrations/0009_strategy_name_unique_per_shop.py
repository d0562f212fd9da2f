"""Strategy names are unique within a shop (among live strategies). Names already taken twice
are told apart first by a number, " (2)", " (3)"..., so the constraint can be added."""

from django.db import migrations, models


def number_duplicate_names(apps, schema_editor):
    Strategy = apps.get_model("strategies", "Strategy")
    seen: dict[tuple[int, str], int] = {}
    rows = Strategy._base_manager.filter(archived_at__isnull=True).order_by("shop_id", "id")
    taken = set(rows.values_list("shop_id", "name"))
    for strategy in rows.only("id", "shop_id", "name"):
        key = (strategy.shop_id, strategy.name)
        count = seen.get(key, 0) + 1
        seen[key] = count
        if count == 1:
            continue
        number = count
        while True:
            suffix = f" ({number})"
            name = f"{strategy.name[: 60 - len(suffix)]}{suffix}"
            if (strategy.shop_id, name) not in taken:
                break
            number += 1
        taken.add((strategy.shop_id, name))
        Strategy._base_manager.filter(pk=strategy.pk).update(name=name)


class Migration(migrations.Migration):
    dependencies = [
        ("strategies", "0008_backtest"),
    ]

    operations = [
        migrations.RunPython(number_duplicate_names, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="strategy",
            constraint=models.UniqueConstraint(
                condition=models.Q(("archived_at__isnull", True)),
                fields=("shop", "name"),
                name="strategy_name_unique_per_shop",
                violation_error_message=(
                    "This shop already has a strategy of this name: choose another name."
                ),
            ),
        ),
    ]
