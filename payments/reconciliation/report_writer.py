"""Writing a PSP's settlement report for a set of our payments, in the PSP's own format, with
discrepancies planted on purpose if asked: what the PSP simulator hands over at the end of a
run, and what the tests and the benchmark reconcile.

The report says what the PSP did: a payout we sent but never heard back about is reported as
paid (the PSP paid it), which the matcher shows as a status mismatch until its callback lands.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import TextIO

from backoffice.money import exponent_for

from ..models import Payment, PaymentStatus, Psp
from .formats import EXPECTED_IN_REPORT, ReportFormat, format_for, report_words

S = PaymentStatus

# What the PSP reports for our statuses it would agree with.
REPORTED_STATUS = {
    S.CAPTURED: S.CAPTURED,
    S.CREDITED: S.CAPTURED,
    S.REFUNDED: S.REFUNDED,
    S.REVERSED: S.REVERSED,
    S.CHARGED_BACK: S.CHARGED_BACK,
    S.PAID: S.PAID,
    S.SENT_TO_PSP: S.PAID,  # the PSP paid it; we never heard
}
OTHER_CURRENCY = {"EUR": "USD", "USD": "EUR", "SEK": "EUR", "GBP": "EUR", "BTC": "ETH"}

ROW_FIELDS = ("kind", "status", "amount", "currency_id", "reference", "psp_reference", "created_at")


@dataclass(frozen=True)
class Plant:
    """How many discrepancies of each kind to plant (each on a different payment)."""

    amount_mismatch: int = 0
    currency_mismatch: int = 0
    status_mismatch: int = 0
    missing_ours: int = 0  # lines for payments we never had
    missing_psp: int = 0  # payments left out of the report
    duplicate: int = 0  # lines written twice

    @property
    def on_payments(self) -> int:
        return (self.amount_mismatch + self.currency_mismatch + self.status_mismatch
                + self.missing_psp + self.duplicate)  # fmt: skip


@dataclass
class Written:
    """What went into the file: the line count and the references of each planted class."""

    lines: int = 0
    planted: dict[str, list[str]] = field(default_factory=dict)


def payments_for_report(psp: Psp, start: date, end: date):
    """Our payments through `psp` created in [start, end] that its report should list."""
    begin = datetime.combine(start, time.min, tzinfo=UTC)
    stop = datetime.combine(end + timedelta(days=1), time.min, tzinfo=UTC)
    statuses = [s for group in EXPECTED_IN_REPORT.values() for s in group]
    return Payment.objects.filter(
        psp=psp, created_at__gte=begin, created_at__lt=stop, status__in=statuses
    ).order_by("id")


def _amount(fmt: ReportFormat, amount: int, currency: str) -> str:
    if fmt.amount_format == "minor":
        return str(amount)
    exponent = exponent_for(currency)
    if not exponent:
        return str(amount)
    sign, digits = ("", str(amount))
    digits = digits.rjust(exponent + 1, "0")
    return f"{sign}{digits[:-exponent]}.{digits[-exponent:]}"


def _psp_reference(row: dict) -> str:
    return row["psp_reference"] or f"po_{row['reference']}"


def _line(fmt: ReportFormat, row: dict, *, status: str | None = None) -> list[str]:
    kind_word, status_word = report_words(
        fmt, row["kind"], status or REPORTED_STATUS[row["status"]]
    )
    values = {
        "psp_reference": _psp_reference(row),
        "merchant_reference": row["reference"],
        "kind": kind_word,
        "amount": _amount(fmt, row["amount"], row["currency_id"]),
        "currency": row["currency_id"],
        "status": status_word,
        "occurred_at": row["created_at"].astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    by_column = {fmt.roles[role]: value for role, value in values.items()}
    return [by_column[c] for c in fmt.columns]


def _wrong_status(row: dict) -> str:
    """A status the PSP could report that disagrees with ours."""
    if row["kind"] == "withdrawal":
        return S.FAILED
    return S.REFUNDED if row["status"] != S.REFUNDED else S.CHARGED_BACK


def write_settlement_report(
    out: TextIO,
    psp: Psp,
    payments: Iterable[dict] | None = None,
    *,
    start: date | None = None,
    end: date | None = None,
    plant: Plant | None = None,
    seed: int = 0,
) -> Written:
    """Write `psp`'s settlement report of `payments` (dicts with `ROW_FIELDS`, or the
    payments of [start, end] when None) to `out` (a text file opened with newline="").

    Planted discrepancies go on distinct payments drawn with `seed`; `Written.planted` gives
    their references by class (the PSP reference, or our reference for missing_psp).
    """
    fmt = format_for(psp.adapter)
    if payments is None:
        if start is None or end is None:
            raise ValueError("Give the payments, or the period to take them from.")
        qs = payments_for_report(psp, start, end)
        total = qs.count()
        rows: Iterable[dict] = qs.values(*ROW_FIELDS).iterator(chunk_size=5000)
    else:
        rows = list(payments)
        total = len(rows)
    plant = plant or Plant()
    if plant.on_payments > total:
        raise ValueError(f"Cannot plant {plant.on_payments} discrepancies on {total} payments.")
    rng = random.Random(seed)
    chosen = rng.sample(range(total), plant.on_payments)
    marks: dict[int, str] = {}
    for name in ("amount_mismatch", "currency_mismatch", "status_mismatch", "missing_psp",
                 "duplicate"):  # fmt: skip
        for _ in range(getattr(plant, name)):
            marks[chosen.pop()] = name
    written = Written(planted={name: [] for name in (
        "amount_mismatch", "currency_mismatch", "status_mismatch", "missing_ours",
        "missing_psp", "duplicate")})  # fmt: skip
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(fmt.columns)
    first = None
    for i, row in enumerate(rows):
        first = first or row
        mark = marks.get(i)
        if mark == "missing_psp":
            written.planted[mark].append(row["psp_reference"] or row["reference"])
            continue
        line_row = row
        status = None
        if mark == "amount_mismatch":
            line_row = {**row, "amount": row["amount"] + 1 + rng.randrange(100)}
        elif mark == "currency_mismatch":
            line_row = {**row, "currency_id": OTHER_CURRENCY.get(row["currency_id"], "EUR")}
        elif mark == "status_mismatch":
            status = _wrong_status(row)
        writer.writerow(_line(fmt, line_row, status=status))
        written.lines += 1
        if mark == "duplicate":
            writer.writerow(_line(fmt, line_row))
            written.lines += 1
        if mark:
            written.planted[mark].append(_psp_reference(row))
    for n in range(plant.missing_ours):
        ghost = {
            "kind": "deposit",
            "status": S.CREDITED,
            "amount": 1000 + rng.randrange(100_000),
            "currency_id": first["currency_id"] if first else "EUR",
            "reference": f"D-GHOST{seed:04d}{n:05d}",
            "psp_reference": f"ghost_{seed}_{n}",
            "created_at": first["created_at"] if first else datetime.now(UTC),
        }
        writer.writerow(_line(fmt, ghost))
        written.lines += 1
        written.planted["missing_ours"].append(ghost["psp_reference"])
    return written
