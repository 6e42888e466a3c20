"""Errors the payments services raise. Their messages are safe to show to staff; views turn them
into a message beside the form or a 4xx answer."""

from backoffice.exceptions import BackofficeError


class PaymentsError(BackofficeError):
    """Base of every payments error."""

    code = "payments_error"


class LedgerError(PaymentsError):
    code = "ledger_error"


class UnbalancedTransfer(LedgerError):
    """The legs do not sum to zero per currency, or are otherwise not a valid posting."""

    code = "unbalanced"


class InsufficientFunds(LedgerError):
    """The posting would take a player balance below zero."""

    code = "insufficient_funds"

    def __init__(self, message: str, *, account_id: int | None = None, shortfall: int = 0):
        super().__init__(message)
        self.account_id = account_id
        self.shortfall = shortfall


class IdempotencyConflict(LedgerError):
    """The idempotency key was used before for a different posting."""

    code = "idempotency_conflict"


class AlreadyReversed(LedgerError):
    code = "already_reversed"


class UnknownCurrency(PaymentsError):
    code = "unknown_currency"


class InvalidTransition(PaymentsError):
    """The payment's state machine does not allow this change from its current status."""

    code = "invalid_transition"


class PaymentRefused(PaymentsError):
    """A new payment may not start (restriction, disabled PSP or method, amount limits)."""

    code = "refused"


class DepositsBlocked(PaymentRefused):
    code = "deposits_blocked"


class WithdrawalsBlocked(PaymentRefused):
    code = "withdrawals_blocked"


class MethodUnavailable(PaymentRefused):
    code = "method_unavailable"


class AmountOutOfRange(PaymentRefused):
    code = "amount_out_of_range"


class PspError(PaymentsError):
    code = "psp_error"


class WebhookRejected(PspError):
    """A webhook delivery failed verification; `reason` is a PspWebhookRejection.Reason."""

    code = "webhook_rejected"

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(detail or reason)
        self.reason = reason
        self.detail = detail


class PspUnavailable(PspError):
    """The PSP did not answer (timeout, connection error): the outcome is unknown."""

    code = "psp_unavailable"


class EventNotApplicable(PspError):
    """A valid PSP event that cannot change anything (unknown payment, contradicts a final
    status). The inbox row is marked ignored with this message."""

    code = "event_not_applicable"

    def __init__(self, message: str, *, payment=None):
        super().__init__(message)
        self.payment = payment


# -- the withdrawal queue and reconciliation ------------------------------------------------


class ClaimedByOther(PaymentsError):
    """Someone else has claimed the withdrawal: only they act on it until they release it."""

    code = "claimed_by_other"


class AboveApprovalLimit(PaymentsError):
    """The amount (or a bulk approval's total) is above what this approver may approve."""

    code = "above_approval_limit"


class ReportRejected(PaymentsError):
    """A settlement report that cannot be read: wrong columns, bad values, wrong encoding.
    `errors` lists (line number, reason); nothing of the file was applied."""

    code = "report_rejected"

    def __init__(
        self, message: str, errors: list[tuple[int, str]] | None = None, total: int | None = None
    ):
        super().__init__(message)
        self.errors = errors or []
        self.total = len(self.errors) if total is None else total
