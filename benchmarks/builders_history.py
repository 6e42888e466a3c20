"""The django-simple-history rows the generated data implies, written set-based.

The app writes a "+" row when a player, payment, ticket or wallet account is created and a
"~" row on every later save. Rows loaded with INSERT ... SELECT bypass those signals, so this
step writes them from the loaded tables: one "+" row per player, account, ticket, risk
assessment and review, and for payments a "+" row with the payment as it was created plus a
"~" row with its current status for every payment that has moved on (as PaymentTransition
records). The copied columns come from the historical model, so a field added to a model
later is copied without a change here.
"""

from __future__ import annotations

from django.db import models

from .sqlgen import insert_select

INITIAL_STATUS = "CASE WHEN s.kind = 'deposit' THEN 'initiated' ELSE 'requested' END"


def insert_history(
    model: type[models.Model],
    source: str,
    *,
    history_type: str,
    history_date: str,
    overrides: dict[str, str] | None = None,
) -> int:
    """One historical row of `model` per row of `source` (a FROM clause aliased `s` over the
    model's own table), copying every tracked column unless `overrides` gives an expression."""
    historical = model.history.model
    tracked = {f.attname for f in model._meta.concrete_fields}
    exprs = {
        f.attname: f's."{f.column}"'
        for f in historical._meta.concrete_fields
        if f.attname in tracked
    }
    exprs.update(overrides or {})
    exprs.update(
        {
            "history_date": history_date,
            "history_type": f"'{history_type}'",
            # Players register themselves and PSPs move payments: no staff user.
            "history_user_id": "NULL",
        }
    )
    return insert_select(historical, exprs, source)


def build_player_history(scale) -> int:
    from players.models import Player

    return insert_history(
        Player, "players_player AS s", history_type="+", history_date="s.registered_at"
    )


def build_account_history(scale) -> int:
    from payments.models import Account

    return insert_history(
        Account, "payments_account AS s", history_type="+", history_date="s.created_at"
    )


def build_payment_history(scale) -> int:
    from payments.models import Payment

    rows = insert_history(
        Payment,
        "payments_payment AS s",
        history_type="+",
        history_date="s.created_at",
        overrides={"status": INITIAL_STATUS, "status_changed_at": "s.created_at"},
    )
    rows += insert_history(
        Payment,
        f"payments_payment AS s WHERE s.status <> {INITIAL_STATUS}",
        history_type="~",
        history_date="s.status_changed_at",
    )
    return rows


def build_ticket_history(scale) -> int:
    from support.models import Ticket

    return insert_history(
        Ticket, "support_ticket AS s", history_type="+", history_date="s.created_at"
    )


def build_queue_history(scale) -> int:
    try:
        from payments.models import RiskAssessment, WithdrawalReview
    except ImportError:
        return 0
    rows = insert_history(
        RiskAssessment,
        "payments_riskassessment AS s",
        history_type="+",
        history_date="s.assessed_at",
    )
    rows += insert_history(
        WithdrawalReview,
        "payments_withdrawalreview AS s",
        history_type="+",
        history_date="s.updated_at",
    )
    return rows


def steps(scale):
    return [
        ("player history", build_player_history),
        ("account history", build_account_history),
        ("payment history", build_payment_history),
        ("ticket history", build_ticket_history),
        ("withdrawal queue history", build_queue_history),
    ]
