"""The currencies every installation knows; more are added as rows."""

from django.db import migrations

CURRENCIES = [
    ("EUR", "Euro", 2, False),
    ("USD", "US dollar", 2, False),
    ("GBP", "Pound sterling", 2, False),
    ("SEK", "Swedish krona", 2, False),
    ("NOK", "Norwegian krone", 2, False),
    ("DKK", "Danish krone", 2, False),
    ("CAD", "Canadian dollar", 2, False),
    ("BRL", "Brazilian real", 2, False),
    ("MXN", "Mexican peso", 2, False),
    ("JPY", "Japanese yen", 0, False),
    ("BTC", "Bitcoin", 8, True),
    ("ETH", "Ether", 8, True),
    ("USDT", "Tether", 6, True),
]


def add(apps, schema_editor):
    Currency = apps.get_model("payments", "Currency")
    for code, name, exponent, crypto in CURRENCIES:
        Currency.objects.get_or_create(
            code=code, defaults={"name": name, "exponent": exponent, "is_crypto": crypto}
        )


class Migration(migrations.Migration):
    dependencies = [("payments", "0002_append_only")]

    operations = [migrations.RunPython(add, migrations.RunPython.noop)]
