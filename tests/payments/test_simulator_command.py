"""`manage.py psp_simulate` over real HTTP against a live server: records, replays, and drives
cashier deposits and payouts through the services."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command

from payments.ledger_check import find_ledger_problems
from payments.models import Account, Payment, PaymentMethod, PspInboxEvent
from tests.factories import PaymentMethodFactory, PlayerFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture
def players(brand_a, card_psp, card_method, bank_psp):
    PaymentMethodFactory(psp=bank_psp, kind=PaymentMethod.Kind.OPEN_BANKING, currency_id="EUR")
    return [PlayerFactory(brand=brand_a, currency="EUR", country="MT") for _ in range(6)]


def _state():
    balances = {
        (player_id or 0, kind, ref): balance
        for player_id, kind, ref, balance in Account.objects.values_list(
            "player_id", "kind", "ref", "balance"
        )
    }
    payments = dict(Payment.objects.values_list("psp_reference", "status"))
    return balances, payments


def test_callbacks_only_run_records_and_its_replay_changes_nothing(
    live_server, players, tmp_path, capsys
):
    record = tmp_path / "run.jsonl"
    call_command(
        "psp_simulate", "--base-url", live_server.url, "--count", "12", "--callbacks-only",
        "--seed", "5", "--record", str(record), "--concurrency", "2",
    )  # fmt: skip
    assert "deliveries in" in capsys.readouterr().out
    lines = [json.loads(line) for line in record.read_text().splitlines()]
    assert lines and set(lines[0]) == {"method", "path", "headers", "body"}
    assert all(line["path"].startswith("/webhooks/psp/") for line in lines)
    call_command("process_psp_inbox")
    after_run = _state()
    assert Payment.objects.filter(status="credited").exists()
    stored = PspInboxEvent.objects.count()

    # the same deliveries again, up to three times each, re-signed: all duplicates
    call_command(
        "psp_simulate", "--base-url", live_server.url, "--replay", str(record), "--copies", "3",
        "--resign", "--seed", "9",
    )  # fmt: skip
    call_command("process_psp_inbox")
    assert PspInboxEvent.objects.count() == stored
    assert _state() == after_run
    assert list(find_ledger_problems()) == []


def test_full_run_plays_players_and_psps_and_leaves_decisions_to_staff(
    live_server, players, fund, make_staff, capsys
):
    from payments.services.payments import do_approve_withdrawal

    for p in players:
        fund(p, 100_000)
    args = ["--base-url", live_server.url, "--count", "40", "--seed", "21", "--concurrency", "2"]
    call_command("psp_simulate", *args)
    out = capsys.readouterr().out
    assert "withdrawal_requested" in out and "cashier_deposit_" in out
    waiting = list(Payment.objects.filter(kind="withdrawal", status__in=["requested", "in_review"]))
    assert waiting, "withdrawal requests wait for the payments team"
    assert not Payment.objects.filter(kind="withdrawal", status="paid").exists()
    staff = make_staff("Payments")
    for w in waiting:
        do_approve_withdrawal(w.pk, acting_user=staff)  # the payout is sent inline (eager)
    assert Payment.objects.filter(kind="withdrawal", status="sent_to_psp").count() == len(waiting)
    call_command("psp_simulate", *args[:2], "--count", "60", "--seed", "22")
    call_command("process_psp_inbox")
    outcomes = set(Payment.objects.filter(kind="withdrawal").values_list("status", flat=True))
    assert outcomes & {"paid", "failed"}
    assert list(find_ledger_problems()) == []


def test_settlement_report_per_psp_with_planted_breaks_reconciles_to_them(
    live_server, players, fund, tmp_path, capsys
):
    """`--settlement-report FOLDER --plant 1` writes one report per PSP; reconciling the card
    PSP's report finds exactly the planted break of each class."""
    for p in players:
        fund(p, 100_000)
    args = ["--base-url", live_server.url, "--count", "60", "--seed", "31", "--concurrency", "2"]
    call_command("psp_simulate", *args, "--callbacks-only")
    call_command("process_psp_inbox")
    capsys.readouterr()
    folder = tmp_path / "reports"
    call_command(
        "psp_simulate", *args, "--callbacks-only", "--settlement-report", str(folder),
        "--plant", "1",
    )  # fmt: skip
    call_command("process_psp_inbox")
    out = capsys.readouterr().out
    written = sorted(p.name for p in folder.iterdir())
    assert len(written) == 2 and all(name.endswith(".csv") for name in written)
    assert "planted" in out
    card = next(p for p in folder.iterdir() if "card" in p.name)
    call_command("reconcile", card.stem, str(card), "--json")
    counts = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for klass in ("amount_mismatch", "currency_mismatch", "status_mismatch", "missing_ours",
                  "duplicate"):  # fmt: skip
        assert counts.get(klass, 0) >= 1, (klass, counts)
