"""Each role's main workflow, end to end in headless Chromium against the live server."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _fund(player, amount: int) -> None:
    """Credit the player's cash wallet from PSP clearing, as a credited deposit would."""
    from payments.services import ledger

    ledger.do_post_transfer(
        idempotency_key=f"browser-fund:{player.pk}:{amount}",
        kind="deposit",
        legs=[
            (
                ledger.get_house_account(player.brand_id, "psp_clearing", "EUR", ref="cardpay"),
                -amount,
            ),
            (ledger.get_wallet(player, "EUR")["cash"], amount),
        ],
        brand=player.brand_id,
        player=player,
    )


def _risk_note(player, author, body: str) -> None:
    from players.models import NoteReason
    from players.services import do_add_player_note

    reason, _ = NoteReason.objects.get_or_create(
        code="browser-risk", defaults={"label": "Fraud suspicion", "category": "risk"}
    )
    do_add_player_note(player, reason=reason, body=body, acting_user=author)


def test_anonymous_visitor_gets_the_login_page_and_a_wrong_password_is_explained(
    live_server, page, make_staff
):
    make_staff("Support", username="ann")
    page.goto(f"{live_server.url}/support/")

    expect(page).to_have_url(re.compile(r"/accounts/login/\?next=/support/"))
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()

    page.get_by_label("Username").fill("ann")
    page.get_by_label("Password").fill("not-her-password")
    page.get_by_role("button", name="Sign in").click()

    form = page.locator("form").filter(has=page.get_by_role("button", name="Sign in"))
    expect(form.get_by_role("alert")).to_contain_text(
        "That username and password do not match an active account"
    )
    expect(page.get_by_label("Username")).to_have_value("ann")
    expect(page.get_by_label("Password")).to_have_value("")
    expect(page).to_have_url(re.compile(r"/accounts/login/"))


def test_support_agent_finds_a_player_and_opens_a_ticket(
    live_server, page, login, make_staff, brand_a, currencies
):
    from tests.factories import PlayerFactory

    player = PlayerFactory(
        brand=brand_a, username="mlopez", email="maria.lopez@mail.test",
        first_name="Maria", last_name="Lopez",
    )  # fmt: skip
    _fund(player, 12_550)
    _risk_note(player, make_staff("Risk"), "Suspected collusion ring with account P-4471")
    agent = make_staff("Support", username="sam")

    login(agent)
    page.keyboard.press("/")
    search = page.get_by_role("searchbox", name="Search players, payments, tickets, staff")
    expect(search).to_be_focused()
    search.fill("maria.lopez@mail.test")
    search.press("Enter")
    page.get_by_role("link", name=re.compile("Maria Lopez")).click()

    expect(page.get_by_role("heading", level=1)).to_contain_text("Maria Lopez")
    summary = page.get_by_role("region", name="Player summary")
    expect(summary).to_contain_text("Active")
    expect(summary.locator("#header-balance")).to_contain_text("125.50 EUR")
    timeline = page.locator("#timeline-rows")
    expect(timeline).to_contain_text("+125.50 EUR")
    # Risk notes are Risk's and Compliance's: no panel, no timeline line, no text.
    expect(page.get_by_role("heading", name="Risk notes")).to_have_count(0)
    expect(page.get_by_text("collusion ring")).to_have_count(0)

    page.get_by_role("group", name="Actions on this player").get_by_role(
        "link", name="Open a ticket"
    ).click()
    page.get_by_label("Subject").fill("Where is my withdrawal?")
    page.get_by_label("Category").select_option(label="Withdrawal")
    expect(page.get_by_label("Assign to me")).to_be_checked()
    page.get_by_role("button", name="Open ticket").click()
    expect(page.get_by_role("alert")).to_contain_text(re.compile(r"Ticket #\d+ opened\."))

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Tickets").click()
    page.get_by_role("link", name=re.compile(r"^Mine")).click()
    row = page.get_by_role("row").filter(has_text="Where is my withdrawal?")
    expect(row).to_contain_text("mlopez")
    expect(row).to_contain_text("You")


def test_support_agent_claims_a_ticket_in_place_and_the_counts_follow(
    live_server, page, login, make_staff, brand_a
):
    from tests.factories import PlayerFactory, TicketFactory

    TicketFactory(player=PlayerFactory(brand=brand_a), subject="Bonus not credited")
    TicketFactory(player=PlayerFactory(brand=brand_a), subject="Cannot verify my address")
    agent = make_staff("Support", username="sam")

    login(agent)
    page.goto(f"{live_server.url}/support/?queue=unassigned")
    queues = page.get_by_role("navigation", name="Queues")
    unassigned = queues.get_by_role("link", name=re.compile(r"^Unassigned"))
    mine = queues.get_by_role("link", name=re.compile(r"^Mine"))
    expect(unassigned).to_have_text(re.compile(r"Unassigned\s+2$"))
    expect(mine).to_have_text(re.compile(r"Mine\s+0$"))

    page.evaluate("window.sameDocument = true")  # gone if the page were loaded again
    row = page.get_by_role("row").filter(has_text="Bonus not credited")
    row.get_by_role("button", name=re.compile(r"^Claim")).click()

    expect(row.get_by_role("cell", name="You", exact=True)).to_be_visible()
    expect(row.get_by_role("button", name=re.compile(r"^Claim"))).to_have_count(0)
    expect(unassigned).to_have_text(re.compile(r"Unassigned\s+1$"))
    expect(mine).to_have_text(re.compile(r"Mine\s+1$"))
    other = page.get_by_role("row").filter(has_text="Cannot verify my address")
    expect(other.get_by_role("button", name=re.compile(r"^Claim"))).to_be_visible()
    assert page.evaluate("window.sameDocument") is True
    expect(page).to_have_url(re.compile(r"/support/\?queue=unassigned$"))


def test_compliance_filters_the_audit_trail_reads_an_event_and_exports_the_filtered_rows(
    live_server, page, login, make_staff, brand_a
):
    import csv
    import io

    from players.services import do_change_player_status
    from tests.factories import PlayerFactory

    agent = make_staff("Support")
    for username, reason in [("jdoe", "Chargeback under investigation"),
                             ("ksmith", "Asked for a break by phone")]:  # fmt: skip
        player = PlayerFactory(brand=brand_a, username=username)
        do_change_player_status(player, "suspended", acting_user=agent, reason=reason)
    _risk_note(PlayerFactory(brand=brand_a), make_staff("Risk"), "Same card as a closed account")
    officer = make_staff("Compliance", username="cora")

    login(officer)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Audit trail").click()
    expect(page.get_by_role("row").filter(has_text="players.risk_note_added")).to_have_count(1)

    page.get_by_label("Action").fill("players.status")
    page.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(re.compile(r"action=players\.status"))
    rows = page.locator("#list-table tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.filter(has_text="players.status_changed")).to_have_count(2)
    expect(page.locator("#row-count")).to_have_text("2 rows")

    with page.expect_download() as download_info:
        page.get_by_role("link", name="Export CSV").click()
    download = download_info.value
    assert download.suggested_filename.startswith("audit-trail-")
    with open(download.path(), encoding="utf-8") as f:
        exported = list(csv.DictReader(io.StringIO(f.read())))
    assert [(r["action"], r["object"].split()[0], r["reason"]) for r in exported] == [
        ("players.status_changed", "jdoe", "Chargeback under investigation"),
        ("players.status_changed", "ksmith", "Asked for a break by phone"),
    ]

    rows.filter(has_text="jdoe").get_by_role("link", name=re.compile(r"^\d+$")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(re.compile(r"Audit event #\d+"))
    diff = page.get_by_role("table").filter(has_text="Before")
    status_row = diff.get_by_role("row", name=re.compile(r"^status\b"))
    expect(status_row).to_contain_text("changed")
    expect(status_row.get_by_role("cell").nth(0)).to_have_text("active")
    expect(status_row.get_by_role("cell").nth(1)).to_have_text("suspended")
    expect(diff.get_by_role("row", name=re.compile(r"^status_reason\b"))).to_contain_text(
        "Chargeback under investigation"
    )

    # Back to the filtered list as it was (not a cached table fragment on a blank page).
    page.go_back()
    expect(page.get_by_label("Action")).to_have_value("players.status")
    expect(rows).to_have_count(2)


def test_admin_creates_a_member_of_staff_who_then_sees_only_their_roles_menu(
    live_server, page, new_context, login, make_staff, brand_a, brand_b
):
    from backoffice.models import User

    admin = make_staff("Admin", username="ada", brands=[])

    login(admin)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Staff").click()
    page.get_by_role("link", name="New member of staff").click()
    page.get_by_label("Username").fill("pat")
    page.get_by_label("First name").fill("Pat")
    page.get_by_label("Last name").fill("Payne")
    page.get_by_label("Email").fill("pat.payne@example.test")
    page.get_by_role("group", name="Roles").get_by_role("checkbox", name="Payments").check()
    page.get_by_role("group", name="Brands").get_by_role("checkbox", name="Alpha Casino").check()
    page.get_by_role("radio", name="Set a password now").check()
    page.get_by_label("Password to set").fill("Tidal-Orchard-Lantern-93")
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("alert")).to_contain_text("Created pat.")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Staff").click()
    row = page.get_by_role("row").filter(has=page.get_by_role("link", name="pat", exact=True))
    expect(row).to_contain_text("Pat Payne")
    expect(row).to_contain_text("Payments")
    expect(row).to_contain_text("Alpha Casino")
    expect(row).not_to_contain_text("Beta Bets")

    pat_page = new_context().new_page()
    login(User.objects.get(username="pat"), "Tidal-Orchard-Lantern-93", page=pat_page)
    menu = pat_page.get_by_role("navigation", name="Main")
    for label in ("Players", "Tickets", "Transactions", "Ledger", "PSPs"):
        expect(menu.get_by_role("link", name=label, exact=True)).to_be_visible()
    for label in ("Staff", "Roles", "Audit trail"):
        expect(menu.get_by_role("link", name=label, exact=True)).to_have_count(0)
    expect(pat_page.get_by_title("Brands you work with")).to_have_text("Alpha Casino")


def test_payments_approves_a_withdrawal_in_place_in_the_queue(
    live_server, page, login, make_staff, brand_a, currencies, monkeypatch
):
    from datetime import timedelta

    from django.utils import timezone

    import payments.tasks
    from payments.models import PaymentMethod, RiskPolicy
    from payments.services.payments import do_request_withdrawal
    from tests.factories import PaymentMethodFactory, PlayerFactory, PspFactory

    payouts = []  # what would go to the PSP: the approved withdrawal, once
    monkeypatch.setattr(payments.tasks, "enqueue_payout", payouts.append)
    RiskPolicy.objects.create(
        brand=brand_a, currency_id="EUR", review_score=30, manual_score=70,
        auto_pay_max_amount=50_000, daily_auto_pay_cap=100_000, approver_limit=500_000,
        kyc0_limit=0, kyc1_limit=20_000, kyc2_limit=200_000,
    )  # fmt: skip
    psp = PspFactory(brand=brand_a, code="cardpay-alpha", name="CardPay", adapter="cardpay")
    card = PaymentMethodFactory(psp=psp, kind=PaymentMethod.Kind.CARD, currency_id="EUR")
    waiting = {}
    for username, amount in [("olga", 15_000), ("piet", 9_000)]:
        player = PlayerFactory(
            brand=brand_a, username=username, kyc_level=2,
            registered_at=timezone.now() - timedelta(days=90),
        )  # fmt: skip
        _fund(player, 50_000)
        waiting[username] = do_request_withdrawal(
            player, method=card, amount=amount, instrument="VISA •••• 1881"
        )
    olga, piet = waiting["olga"], waiting["piet"]
    officer = make_staff("Payments", username="pia")

    login(officer)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Withdrawal queue").click()
    row = page.get_by_role("row").filter(has_text=olga.reference)
    other = page.get_by_role("row").filter(has_text=piet.reference)
    expect(row).to_contain_text("150.00")
    expect(row).to_contain_text("olga")

    page.evaluate("window.sameDocument = true")  # gone if the page were loaded again
    page.once("dialog", lambda dialog: dialog.accept())  # "Approve W-… (150.00 EUR)?"
    row.get_by_role("button", name=f"Approve {olga.reference}").click()

    expect(row.get_by_role("status")).to_have_text(
        f"Withdrawal {olga.reference} approved: the payout goes to the PSP."
    )
    expect(row.get_by_text("Approved", exact=True)).to_be_visible()
    expect(row.get_by_role("button", name=re.compile(r"^Approve"))).to_have_count(0)
    expect(row.get_by_text("You", exact=True)).to_be_visible()
    expect(other.get_by_role("button", name=f"Approve {piet.reference}")).to_be_visible()
    assert page.evaluate("window.sameDocument") is True
    assert payouts == [olga.pk]
