"""The payments pages: what they show, what they let staff do, and how many queries it costs."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from backoffice.models import ApprovalRequest, AuditEvent
from backoffice.search import search_all
from payments.models import ApprovalThreshold, LedgerTransaction, Payment, PaymentMethod
from payments.selectors import where_is_the_money
from payments.services import ledger
from payments.services.payments import do_request_withdrawal
from tests.factories import PaymentMethodFactory, PlayerFactory, PspFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def payments_client(make_staff, client_for):
    user = make_staff("Payments")
    return user, client_for(user)


def test_transaction_list_filters_and_stays_within_a_query_budget(
    player, credited_deposit, payments_client, django_assert_max_num_queries
):
    for amount in (1_000, 25_000, 90_000):
        credited_deposit(player, amount)
    _, client = payments_client
    client.get("/payments/transactions/")  # the first request of a process loads exponents
    with django_assert_max_num_queries(10):
        response = client.get("/payments/transactions/?kind=deposit&amount_min=100&amount_max=500")
    assert response.status_code == 200
    body = response.content.decode()
    assert "250.00 EUR" in body and "900.00 EUR" not in body and "10.00 EUR" not in body
    assert "1 row" in body
    by_name = client.get(f"/payments/transactions/?player={player.username}").content.decode()
    assert "3 rows" in by_name
    # more rows do not mean more queries
    for amount in range(20):
        credited_deposit(player, 30_000 + amount)
    with django_assert_max_num_queries(10):
        assert client.get("/payments/transactions/?kind=deposit").status_code == 200


def test_amount_filter_converts_per_currency(brand_a, payments_client):
    """ "From 100" is 100.00 EUR (10 000 cents) and 100 JPY (100 yen) alike."""
    psp = PspFactory(brand=brand_a, code="cardpay-jp")
    eur = PaymentMethodFactory(psp=psp, kind="card", currency_id="EUR")
    jpy = PaymentMethodFactory(psp=psp, kind="card", currency_id="JPY")
    p = PlayerFactory(brand=brand_a, currency="EUR", country="MT")
    from payments.services.payments import do_initiate_deposit

    do_initiate_deposit(p, method=eur, amount=9_999)  # 99.99 EUR: out
    do_initiate_deposit(p, method=jpy, amount=150)  # 150 JPY: in
    do_initiate_deposit(p, method=eur, amount=10_000)  # 100.00 EUR: in
    _, client = payments_client
    body = client.get("/payments/transactions/?amount_min=100").content.decode()
    assert "150 JPY" in body and "100.00 EUR" in body and "99.99 EUR" not in body


def test_csv_export_is_audited(player, credited_deposit, payments_client):
    deposit = credited_deposit(player, 4_200)
    _, client = payments_client
    response = client.get("/payments/transactions/?export=csv")
    content = b"".join(response.streaming_content).decode()
    assert content.splitlines()[0].startswith("id,created_at,kind,brand")
    assert deposit.reference in content and ",4200," in content
    assert AuditEvent.objects.filter(action="export.csv").exists()


def test_detail_shows_where_the_money_is_timeline_entries_and_callbacks(
    player, credited_deposit, payments_client, django_assert_max_num_queries
):
    deposit = credited_deposit(player, 5_000)
    _, client = payments_client
    with django_assert_max_num_queries(20):
        response = client.get(f"/payments/transactions/{deposit.pk}/")
    body = response.content.decode()
    assert "is in the player&#x27;s cash balance since" in body
    assert "Ledger entries" in body and "PSP clearing cardpay-alpha EUR" in body
    assert 'data-status="credited"' in body
    assert "Refund…" in body and "Chargeback…" in body


def test_support_sees_the_line_but_not_the_ledger_or_raw_events(
    player, credited_deposit, make_staff, client_for
):
    deposit = credited_deposit(player, 5_000)
    body = client_for(make_staff("Support")).get(f"/payments/transactions/{deposit.pk}/")
    text = body.content.decode()
    assert "Where is this money now" in text
    assert "Ledger entries" not in text and "PSP callbacks" not in text
    assert "Refund…" not in text


def test_where_is_the_money_after_a_chargeback_of_spent_money(
    player, credited_deposit, payments_client
):
    from payments.models import ApprovalThreshold as T
    from payments.services import corrections

    T.objects.create(currency_id="EUR", amount=1_000_00)
    deposit = credited_deposit(player, 5_000)
    ledger.do_post_transfer(
        idempotency_key="spent", kind="bet",
        legs=[(ledger.get_wallet(player, "EUR")["cash"], -3_000),
              (ledger.get_house_account(player.brand_id, "game_provider", "EUR", "g"), 3_000)],
        brand=player.brand_id, player=player,
    )  # fmt: skip
    staff, client = payments_client
    corrections.do_request_deposit_correction(
        deposit.pk, operation="chargeback", reason_code="dispute", note="bank", acting_user=staff
    )
    body = client.get(f"/payments/transactions/{deposit.pk}/").content.decode()
    assert "The balance held only 20.00 EUR, which was taken" in body


def test_where_is_the_money_for_an_unconfirmed_payout(player, card_method, fund):
    fund(player, 5_000)
    w = do_request_withdrawal(player, method=card_method, amount=2_000, instrument="VISA 1")
    w.status = Payment.Status.SENT_TO_PSP
    w.status_changed_at = timezone.now() - timedelta(days=3)
    line = where_is_the_money(w)
    assert "has not confirmed the outcome for 3 days" in line and "will not be lost" in line


def test_adjustment_form_posts_below_threshold_and_keeps_input_on_error(
    player, payments_client, fund
):
    ApprovalThreshold.objects.create(currency_id="EUR", amount=100_00)
    _, client = payments_client
    url = f"/payments/players/{player.pk}/adjust/"
    form = client.get(url)
    assert form.status_code == 200
    key = form.context["form"].initial["idempotency_key"]
    data = {
        "currency": "EUR", "balance": "cash", "direction": "debit", "amount": "12.505",
        "reason_code": "goodwill", "note": "keep me", "idempotency_key": key,
    }  # fmt: skip
    bad = client.post(url, data)
    assert bad.status_code == 200 and "EUR has 2 decimals" in bad.content.decode()
    assert "keep me" in bad.content.decode()
    data["amount"] = "12.50"
    refused = client.post(url, data)  # a debit on an empty wallet
    assert refused.status_code == 200 and "cannot debit" in refused.content.decode()
    data["direction"] = "credit"
    assert client.post(url, data).status_code == 302
    assert client.post(url, data).status_code == 302  # double submit: same key, one posting
    assert LedgerTransaction.objects.filter(kind="adjustment").count() == 1
    assert ledger.get_wallet(player, "EUR")["cash"].balance == 1_250


def test_large_adjustment_form_creates_an_approval_request(player, payments_client):
    _, client = payments_client
    response = client.post(
        f"/payments/players/{player.pk}/adjust/",
        {"currency": "EUR", "balance": "bonus", "direction": "credit", "amount": "500",
         "reason_code": "promotion", "note": "missed promo", "idempotency_key": "k1"},
        follow=True,
    )  # fmt: skip
    assert "Sent for approval" in response.content.decode()
    assert ApprovalRequest.objects.filter(action="payments.adjustment", status="pending").count()


def test_refund_form_runs_the_service(player, credited_deposit, payments_client):
    ApprovalThreshold.objects.create(currency_id="EUR", amount=1_000_00)
    deposit = credited_deposit(player, 5_000)
    _, client = payments_client
    url = f"/payments/transactions/{deposit.pk}/refund/"
    assert "Refund of" in client.get(url).content.decode()
    assert client.post(url, {"reason_code": "player_request", "note": "asked"}).status_code == 302
    deposit.refresh_from_db()
    assert deposit.status == "refunded"
    assert client.get(f"/payments/transactions/{deposit.pk}/bogus/").status_code == 404


def test_switching_a_method_off_needs_a_reason_and_is_audited(card_method, payments_client):
    _, client = payments_client
    url = f"/payments/methods/{card_method.pk}/switch/"
    assert client.post(url, {"reason": ""}).status_code == 200
    assert client.post(url, {"reason": "issuer outage"}).status_code == 302
    card_method.refresh_from_db()
    assert (card_method.is_enabled, card_method.status_reason) == (False, "issuer outage")
    assert AuditEvent.objects.filter(action="payments.method.switched").count() == 1
    listing = client.get("/payments/psps/").content.decode()
    assert "issuer outage" in listing and "Switch on" in listing


def test_ledger_and_account_pages(player, fund, payments_client, django_assert_max_num_queries):
    txn = fund(player, 7_000)
    _, client = payments_client
    client.get("/payments/ledger/")
    with django_assert_max_num_queries(10):
        assert client.get(f"/payments/ledger/?player={player.pk}").status_code == 200
    detail = client.get(f"/payments/ledger/transactions/{txn.pk}/").content.decode()
    assert "70.00 EUR" in detail and "-70.00 EUR" in detail
    accounts = client.get("/payments/accounts/?owner=house")
    rows = list(accounts.context["table"].data)
    assert rows and all(a.player_id is None for a in rows)
    assert "PSP clearing" in accounts.content.decode()


def test_player_page_shows_wallet_and_payments_panels(
    player, credited_deposit, payments_client, django_assert_max_num_queries
):
    credited_deposit(player, 3_300)
    _, client = payments_client
    response = client.get(f"/players/{player.pk}/")
    body = response.content.decode()
    assert response.status_code == 200
    assert 'id="panel-wallet"' in body and 'id="panel-payments"' in body
    assert "33.00 EUR" in body and "Adjust balance" in body
    assert "is in the player&#x27;s cash balance" in body


def test_search_finds_a_payment_by_reference_within_scope(
    player, credited_deposit, make_staff, brand_b
):
    deposit = credited_deposit(player, 100)
    hits = search_all(make_staff("Support"), deposit.reference)
    assert [h.url for h in hits if h.kind == "Payment"] == [f"/payments/transactions/{deposit.pk}/"]
    outsider = make_staff("Support", brands=[brand_b])
    assert not [h for h in search_all(outsider, deposit.psp_reference) if h.kind == "Payment"]


def test_psp_reference_lookups_probe_the_unique_index(
    player, credited_deposit, make_staff, payments_client
):
    """The PSP reference is matched exactly with psp_id named in the same index condition
    (`psp_id = ANY(ARRAY(SELECT ...))`), so (psp_id, psp_reference) is probed, not read whole."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    deposit = credited_deposit(player, 100)
    assert deposit.psp_reference
    with CaptureQueriesContext(connection) as ctx:
        hits = search_all(make_staff("Support"), deposit.psp_reference)
    assert [h.url for h in hits if h.kind == "Payment"] == [f"/payments/transactions/{deposit.pk}/"]
    _, client = payments_client
    with CaptureQueriesContext(connection) as listed:
        body = client.get(f"/payments/transactions/?q={deposit.psp_reference}").content.decode()
    assert deposit.reference in body
    for captured in (ctx.captured_queries, listed.captured_queries):
        sql = next(q["sql"] for q in captured if 'FROM "payments_payment"' in q["sql"])
        assert '"payments_payment"."psp_id" = ANY(ARRAY(SELECT' in sql
        assert f'"payments_payment"."psp_reference" = \'{deposit.psp_reference}\'' in sql
        assert "UPPER(" not in sql and " IN (SELECT" not in sql


def test_transaction_list_page_query_joins_no_players(
    player, credited_deposit, payments_client, django_assert_max_num_queries
):
    """Rows are paged on payments alone (the player comes in one query for the shown rows), so
    a deep page does not probe players_player for every row it skips."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for amount in (1_000, 2_000):
        credited_deposit(player, amount)
    _, client = payments_client
    client.get("/payments/transactions/")
    with CaptureQueriesContext(connection) as ctx:
        body = client.get("/payments/transactions/?kind=deposit&status=credited&currency=EUR")
    assert len(ctx.captured_queries) <= 10
    assert player.username in body.content.decode()
    page = next(
        q["sql"] for q in ctx.captured_queries
        if q["sql"].startswith('SELECT "payments_payment"."id"') and "LIMIT" in q["sql"]
    )  # fmt: skip
    assert "players_player" not in page
    assert 'ORDER BY "payments_payment"."id" DESC' in page


def test_status_of_one_kind_also_names_that_kind(player, credited_deposit, payments_client):
    """?status=credited lists the same rows with kind = 'deposit' added (statuses belong to
    one kind, bar "failed"), so PostgreSQL can walk the deposits' index newest first."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    deposit = credited_deposit(player, 1_500)
    _, client = payments_client
    client.get("/payments/transactions/")

    def page_sql(url):
        with CaptureQueriesContext(connection) as ctx:
            response = client.get(url)
        sql = next(
            q["sql"] for q in ctx.captured_queries
            if q["sql"].startswith('SELECT "payments_payment"."id"') and "LIMIT" in q["sql"]
        )  # fmt: skip
        return response, sql

    response, sql = page_sql("/payments/transactions/?status=credited&status=captured")
    assert [p.pk for p in response.context["table"].data] == [deposit.pk]
    assert '"payments_payment"."kind" = \'deposit\'' in sql
    response, sql = page_sql("/payments/transactions/?status=credited&status=paid")
    assert [p.pk for p in response.context["table"].data] == [deposit.pk]
    assert '"kind" =' not in sql
    response, sql = page_sql("/payments/transactions/?status=failed")
    assert '"kind" =' not in sql
    assert not list(response.context["table"].data)
    response, _ = page_sql("/payments/transactions/?kind=withdrawal&status=credited")
    assert not list(response.context["table"].data)


def test_threshold_pages(payments_client):
    _, client = payments_client
    assert "every amount" in client.get("/payments/thresholds/").content.decode()
    response = client.post("/payments/thresholds/eur/", {"amount": "150.50", "reason": "policy"})
    assert response.status_code == 302
    assert ApprovalThreshold.objects.get(pk="EUR").amount == 15_050


def test_callback_pages_list_inbox_and_refusals(card_method, player, client, payments_client):
    from payments.models import PspWebhookRejection

    client.post(
        f"/webhooks/psp/{card_method.psp.code}/", data="{}", content_type="application/json"
    )
    assert PspWebhookRejection.objects.count() == 1
    _, staff_client = payments_client
    body = staff_client.get("/payments/callbacks/refused/").content.decode()
    assert "Missing signature" in body
    assert staff_client.get("/payments/callbacks/?status=pending").status_code == 200


def test_method_list_hides_switches_from_auditors(card_method, make_staff, client_for):
    body = client_for(make_staff("Auditor")).get("/payments/psps/").content.decode()
    assert "CardPay" in body and "Switch off" not in body
    assert PaymentMethod.objects.count() == 1
