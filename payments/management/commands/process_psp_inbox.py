"""`manage.py process_psp_inbox`: apply every pending PSP event now, synchronously.

What the beat sweeper runs, and what an operator runs after a Redis or worker outage. Events
are applied in batches (one transaction each, set-based, see `payments.services.psp_batch`).
Rows another worker is applying at the same moment are skipped (SKIP LOCKED), never applied
twice.
"""

from django.core.management.base import BaseCommand

from payments.services.psp_events import BATCH_SIZE, process_pending_events


class Command(BaseCommand):
    help = "Apply the pending PSP webhook events stored in the inbox."

    def add_arguments(self, parser):
        parser.add_argument("--limit", type=int, default=None, help="Stop after this many.")
        parser.add_argument(
            "--batch-size", type=int, default=BATCH_SIZE, help="Events per transaction."
        )

    def handle(self, *args, limit=None, batch_size=BATCH_SIZE, **options):
        counts = process_pending_events(limit=limit, batch_size=batch_size)
        total = sum(counts.values())
        detail = ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "nothing"
        self.stdout.write(f"Processed {total} PSP event(s): {detail}.")
