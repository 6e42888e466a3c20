"""The per-kind list indexes carry the list's usual filters (brand, status, currency), so the
list's bounded count reads the index alone. New ones built CONCURRENTLY before the old ones
are dropped, so the list never goes without one."""

from django.contrib.postgres.operations import AddIndexConcurrently, RemoveIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("payments", "0008_inbox_fewer_indexes"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="payment",
            index=models.Index(
                condition=models.Q(("kind", "deposit")),
                fields=["-id"],
                include=("brand", "status", "currency"),
                name="payment_deposit_list_idx",
            ),
        ),
        AddIndexConcurrently(
            model_name="payment",
            index=models.Index(
                condition=models.Q(("kind", "withdrawal")),
                fields=["-id"],
                include=("brand", "status", "currency"),
                name="payment_withdrawal_list_idx",
            ),
        ),
        RemoveIndexConcurrently(model_name="payment", name="payment_deposit_idx"),
        RemoveIndexConcurrently(model_name="payment", name="payment_withdrawal_idx"),
    ]
