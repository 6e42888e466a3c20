"""The transactions list filtered by kind, newest first: one partial index per kind on id.

Built CONCURRENTLY so an operator's live table keeps taking payments while it builds
(about 20 s per index at 5M payments).
"""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("payments", "0005_ledger_post_function"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="payment",
            index=models.Index(
                condition=models.Q(("kind", "deposit")), fields=["-id"], name="payment_deposit_idx"
            ),
        ),
        AddIndexConcurrently(
            model_name="payment",
            index=models.Index(
                condition=models.Q(("kind", "withdrawal")),
                fields=["-id"],
                name="payment_withdrawal_idx",
            ),
        ),
    ]
