"""Put the shipped price list (billing/prices.py) into the editable price book.

Every entry becomes a ModelPrice row in effect from 2026-11-25 00:00 UTC, so admins see and edit
the prices Tollgate bills by rather than an empty table. billing/prices.py stays the fallback for
ids without a row. Re-running adds nothing (get_or_create on price list, model and date); the
reverse deletes only these shipped rows, never an admin's.

The list is read from billing/prices.py as it stands when the migration runs; once 0.1 is
released, freeze it here and ship later price changes as new migrations with a later date.
"""

from datetime import UTC, datetime

from django.db import migrations

SHIPPED_FROM = datetime(2026, 11, 25, tzinfo=UTC)
NOTE = "shipped with Tollgate 0.1"


def load_shipped(apps, schema_editor):
    from billing import prices

    ModelPrice = apps.get_model("billing", "ModelPrice")
    for price_list, listed_models in prices.LISTS.items():
        for model, listed in listed_models.items():
            ModelPrice.objects.get_or_create(
                price_list=price_list,
                model=model,
                effective_from=SHIPPED_FROM,
                defaults={
                    "input_cost_per_token": listed.input,
                    "output_cost_per_token": listed.output,
                    "max_output_tokens": listed.max_output,
                    "note": NOTE,
                },
            )


def unload_shipped(apps, schema_editor):
    ModelPrice = apps.get_model("billing", "ModelPrice")
    ModelPrice.objects.filter(effective_from=SHIPPED_FROM, note=NOTE).delete()


class Migration(migrations.Migration):
    dependencies = [("billing", "0001_ledger_prices_daily")]

    operations = [migrations.RunPython(load_shipped, unload_shipped)]
