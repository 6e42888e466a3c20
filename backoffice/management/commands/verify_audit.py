"""`manage.py verify_audit`: walk the audit chain and say whether every row still holds."""

from django.core.management.base import BaseCommand, CommandError

from backoffice.audit import ChainStats, verify_chain


class Command(BaseCommand):
    help = (
        "Check every audit event's hash and its link to the row before it. Prints 'OK: N rows' "
        "and exits 0, or names the first broken row and exits 1."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--all",
            action="store_true",
            help="Report every broken row, not only the first.",
        )
        parser.add_argument(
            "--batch-size", type=int, default=5000, help="Rows read per query (default 5000)."
        )

    def handle(self, *args, all=False, batch_size=5000, **options):
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        stats = ChainStats()
        broken = 0
        for row_id, problem in verify_chain(batch_size=batch_size, stats=stats):
            broken += 1
            self.stderr.write(f"BROKEN: audit event #{row_id} {problem}.")
            if not all:
                break
        if broken:
            raise CommandError(
                f"The audit chain is broken ({broken} row(s) reported, {stats.rows} checked).",
                returncode=1,
            )
        self.stdout.write(f"OK: {stats.rows} rows")
