"""Where payments objects live in the UI (links from the timeline, audit trail and search)."""

from backoffice.links import register_object_url

register_object_url("payments.payment", "payments:transaction_detail")
register_object_url("payments.deposit", "payments:transaction_detail")
register_object_url("payments.withdrawal", "payments:transaction_detail")
register_object_url("payments.ledgertransaction", "payments:ledger_transaction_detail")
