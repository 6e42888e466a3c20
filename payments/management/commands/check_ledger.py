"""`manage.py check_ledger`: recompute every balance from the entries and check every
transaction sums to zero. Exits 1 naming the first wrong transaction, entry or account."""

from django.core.management.base import BaseCommand, CommandError

from payments.ledger_check import find_ledger_problems, ledger_totals


class Command(BaseCommand):
    help = (
        "Check that every ledger transaction sums to zero per currency and that every cached "
        "account balance equals the sum of its entries. Exits non-zero on the first problem."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--limit", type=int, default=20, help="Problems listed per check (default 20)."
        )

    def handle(self, *args, limit: int, **options):
        problems = list(find_ledger_problems(limit_per_check=max(limit, 1)))
        if problems:
            for problem in problems:
                self.stderr.write(str(problem))
            raise CommandError(f"Ledger check failed: first problem is {problems[0]}")
        totals = ledger_totals()
        self.stdout.write(
            self.style.SUCCESS(
                f"Ledger OK: {totals['transactions']} transactions, {totals['entries']} entries, "
                f"{totals['accounts']} accounts balance."
            )
        )
