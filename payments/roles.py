"""Default payments permissions of the seeded roles."""

from backoffice.roles import (
    COMPLIANCE,
    PAYMENTS,
    RISK,
    SUPPORT,
    grant,
    grant_view_all_to_auditor,
)

VIEW_PAYMENTS = ("payments.view_deposit", "payments.view_withdrawal", "payments.view_account")
VIEW_LEDGER = ("payments.view_ledgerentry", "payments.view_ledgertransaction")

grant(SUPPORT, *VIEW_PAYMENTS)
grant(RISK, *VIEW_PAYMENTS, *VIEW_LEDGER, "payments.review_withdrawal")
grant(COMPLIANCE, *VIEW_PAYMENTS, *VIEW_LEDGER)
grant(
    PAYMENTS,
    *VIEW_PAYMENTS,
    *VIEW_LEDGER,
    "payments.approve_withdrawal",
    "payments.review_withdrawal",
    "payments.refund_deposit",
    "payments.request_adjustment",
    "payments.approve_adjustment",
    "payments.view_psp",
    "payments.change_psp",
    "payments.view_paymentmethod",
    "payments.change_paymentmethod",
    "payments.view_pspinboxevent",
    "payments.view_pspwebhookrejection",
    "payments.view_approvalthreshold",
    "payments.change_approvalthreshold",
    "payments.view_currency",
)
grant_view_all_to_auditor(
    *VIEW_PAYMENTS,
    *VIEW_LEDGER,
    "payments.view_psp",
    "payments.view_paymentmethod",
    "payments.view_pspinboxevent",
    "payments.view_pspwebhookrejection",
    "payments.view_approvalthreshold",
    "payments.view_currency",
)
# Admin manages staff, not money: no payments permissions by default.

# The withdrawal queue's risk policies and reconciliation. `manage_riskpolicy` is what makes a
# Payments lead: it comes with the seeded Payments role; move it to a "Payments lead" role in
# the role editor to keep it to fewer people.
RISK_AND_RECONCILIATION = (
    "payments.view_riskpolicy",
    "payments.view_settlementreport",
    "payments.view_reconciliationexception",
)
grant(PAYMENTS, *RISK_AND_RECONCILIATION, "payments.manage_riskpolicy",
      "payments.add_settlementreport", "payments.change_reconciliationexception")  # fmt: skip
grant(RISK, "payments.view_riskpolicy")
grant_view_all_to_auditor(*RISK_AND_RECONCILIATION)
