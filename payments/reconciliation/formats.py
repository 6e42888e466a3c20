"""Settlement report formats: the columns each PSP adapter's reports have, and what their words
mean in ours.

A format names the report's columns in order and says which column holds each value the
matcher needs (`roles`), how amounts are written (integer minor units, or decimal major units
converted with the currency's exponent), and how the PSP's transaction types and statuses map
to our payment kinds and statuses. To support a new PSP's report, add its `ReportFormat` to
`FORMATS` under its adapter key.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..models import PaymentKind, PaymentStatus

S = PaymentStatus
DEPOSIT, WITHDRAWAL = PaymentKind.DEPOSIT.value, PaymentKind.WITHDRAWAL.value

ROLES = (
    "psp_reference",
    "merchant_reference",
    "kind",
    "amount",
    "currency",
    "status",
    "occurred_at",
)


@dataclass(frozen=True)
class ReportFormat:
    adapter: str
    columns: tuple[str, ...]
    roles: dict[str, str]  # role (see ROLES) → column name
    amount_format: str  # "minor" (integer minor units) or "decimal" (major units, "12.50")
    kinds: dict[str, str]  # the report's type word → "deposit" / "withdrawal"
    statuses: dict[tuple[str, str], str]  # (our kind, the report's status word) → our status
    description: str = ""

    def __post_init__(self):
        missing = [r for r in ROLES if r not in self.roles]
        unknown = [c for c in self.roles.values() if c not in self.columns]
        if missing or unknown or self.amount_format not in ("minor", "decimal"):
            raise ValueError(f"Bad report format for {self.adapter}: {missing or unknown}")

    def position(self, role: str) -> int:
        """1-based position of the role's column (SQL arrays start at 1)."""
        return self.columns.index(self.roles[role]) + 1

    def example_header(self) -> str:
        return ",".join(self.columns)


# Which of our statuses agree with what the report says a payment reached. A captured deposit
# is credited at once on our side, so either agrees with the PSP's "captured".
AGREEING_STATUSES: dict[tuple[str, str], tuple[str, ...]] = {
    (DEPOSIT, S.CAPTURED): (S.CAPTURED, S.CREDITED),
    (DEPOSIT, S.REFUNDED): (S.REFUNDED,),
    (DEPOSIT, S.REVERSED): (S.REVERSED,),
    (DEPOSIT, S.CHARGED_BACK): (S.CHARGED_BACK,),
    (DEPOSIT, S.FAILED): (S.FAILED, S.EXPIRED),
    (WITHDRAWAL, S.PAID): (S.PAID,),
    (WITHDRAWAL, S.FAILED): (S.FAILED,),
}

# Our payments a settlement report must list: money the PSP moved, or was asked to move.
EXPECTED_IN_REPORT: dict[str, tuple[str, ...]] = {
    DEPOSIT: (S.CAPTURED, S.CREDITED, S.REFUNDED, S.REVERSED, S.CHARGED_BACK),
    WITHDRAWAL: (S.SENT_TO_PSP, S.PAID),
}


CARDPAY = ReportFormat(
    adapter="cardpay",
    columns=("id", "merchant_reference", "type", "amount", "currency", "status", "created"),
    roles={
        "psp_reference": "id",
        "merchant_reference": "merchant_reference",
        "kind": "type",
        "amount": "amount",
        "currency": "currency",
        "status": "status",
        "occurred_at": "created",
    },
    amount_format="minor",
    kinds={"payment": DEPOSIT, "payout": WITHDRAWAL},
    statuses={
        (DEPOSIT, "captured"): S.CAPTURED,
        (DEPOSIT, "refunded"): S.REFUNDED,
        (DEPOSIT, "reversed"): S.REVERSED,
        (DEPOSIT, "chargeback"): S.CHARGED_BACK,
        (DEPOSIT, "declined"): S.FAILED,
        (WITHDRAWAL, "paid"): S.PAID,
        (WITHDRAWAL, "failed"): S.FAILED,
    },
    description="Amounts in minor units; created is ISO 8601 UTC.",
)

OPENBANK = ReportFormat(
    adapter="openbank",
    columns=("TxId", "EndToEndId", "Direction", "Amount", "Ccy", "Status", "BookingDateTime"),
    roles={
        "psp_reference": "TxId",
        "merchant_reference": "EndToEndId",
        "kind": "Direction",
        "amount": "Amount",
        "currency": "Ccy",
        "status": "Status",
        "occurred_at": "BookingDateTime",
    },
    amount_format="decimal",
    kinds={"CRDT": DEPOSIT, "DBIT": WITHDRAWAL},
    statuses={
        (DEPOSIT, "ACSC"): S.CAPTURED,
        (DEPOSIT, "RFND"): S.REFUNDED,
        (DEPOSIT, "RCLL"): S.REVERSED,
        (DEPOSIT, "RJCT"): S.FAILED,
        (WITHDRAWAL, "ACSC"): S.PAID,
        (WITHDRAWAL, "RJCT"): S.FAILED,
    },
    description="Amounts in major units with a decimal point; BookingDateTime is ISO 8601.",
)

FORMATS: dict[str, ReportFormat] = {f.adapter: f for f in (CARDPAY, OPENBANK)}


def format_for(adapter: str) -> ReportFormat:
    from ..exceptions import PaymentsError

    try:
        return FORMATS[adapter]
    except KeyError:
        raise PaymentsError(f"No settlement report format is known for the {adapter} adapter.")


def report_words(fmt: ReportFormat, kind: str, status: str) -> tuple[str, str]:
    """The (type, status) words `fmt` writes for one of our kinds and statuses (the report
    writer uses it). Raises KeyError when the report has no word for it."""
    kind_word = next(word for word, k in fmt.kinds.items() if k == kind)
    status_word = next(w for (k, w), s in fmt.statuses.items() if k == kind and s == status)
    return kind_word, status_word
