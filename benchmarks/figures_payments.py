"""Payments figures of `make bench`: transactions and ledger lists against the Django admin,
and the withdrawal queue against raw SQL. Throughput figures (postings, webhooks,
reconciliation) run the standalone scripts beside this file (see `throughput`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from .figures import ADMIN_FACTOR, PAGE_TARGET_MS, _page, _sql
from .harness import Figure

ROOT = Path(__file__).resolve().parent.parent


def register_admin(site) -> None:
    from django.contrib import admin

    from payments.models import LedgerEntry, Payment

    class PaymentAdmin(admin.ModelAdmin):
        list_per_page = 50
        list_display = (
            "id",
            "reference",
            "kind",
            "player",
            "status",
            "amount",
            "currency",
            "created_at",
        )
        list_filter = ("kind", "status", "currency", "brand", "psp")

    class EntryAdmin(admin.ModelAdmin):
        list_per_page = 50
        list_display = ("id", "transaction", "account", "amount", "balance_after", "created_at")
        list_filter = ("brand", "currency")

    for model, model_admin in ((Payment, PaymentAdmin), (LedgerEntry, EntryAdmin)):
        if not site.is_registered(model):
            site.register(model, model_admin)


def _list_vs_admin(name, client, admin, url, admin_url, runs) -> Figure:
    ours = _page(client, url, runs)
    theirs = _page(admin, admin_url, max(5, runs // 3))
    return Figure(
        name=name,
        how=f"GET {url} as a scoped Payments user",
        ours=ours,
        compared_with="Django admin changelist, same filters (superuser)",
        theirs=theirs,
        target=f"p95 < {PAGE_TARGET_MS} ms, ≤ 10 queries, ≥ {ADMIN_FACTOR}x faster than admin",
        met=ours["p95"] < PAGE_TARGET_MS
        and ours["queries"] <= 10
        and theirs["p50"] >= ADMIN_FACTOR * ours["p50"],
    )


def pages(args) -> list[Figure]:
    from django.urls import NoReverseMatch, reverse

    from payments.models import Payment

    from .run import client_for

    payments = client_for("bench_payments")
    admin = client_for("bench_admin")
    figures = []
    base = reverse("payments:transaction_list")
    filters = "kind=deposit&status=credited&currency=EUR"
    admin_filters = "kind__exact=deposit&status__exact=credited&currency__code__exact=EUR"
    matching = Payment.objects.filter(kind="deposit", status="credited", currency="EUR").count()
    deep = max(1, min(50, matching // 50))
    figures.append(
        _list_vs_admin(
            "transactions, 3 filters, page 1", payments, admin, f"{base}?{filters}",
            f"/django-admin/payments/payment/?{admin_filters}", args.runs,
        )
    )  # fmt: skip
    figures.append(
        _list_vs_admin(
            f"transactions, 3 filters, page {deep}", payments, admin,
            f"{base}?{filters}&page={deep}",
            f"/django-admin/payments/payment/?{admin_filters}&p={deep}", args.runs,
        )
    )  # fmt: skip
    entries = reverse("payments:entry_list")
    figures.append(
        _list_vs_admin(
            "ledger entries, 2 filters", payments, admin, f"{entries}?brand=1&currency=EUR",
            "/django-admin/payments/ledgerentry/?brand__id__exact=1&currency__code__exact=EUR",
            args.runs,
        )
    )  # fmt: skip
    try:
        queue = reverse("payments:withdrawal_queue")
    except NoReverseMatch:
        return figures
    pending = Payment.objects.filter(
        kind="withdrawal", status__in=["requested", "in_review"]
    ).count()
    ours = _page(payments, queue, args.runs)
    figures.append(
        Figure(
            name=f"withdrawal queue, {pending:,} pending",
            how=f"GET {queue} as a scoped Payments user",
            ours=ours,
            compared_with="raw SQL: first 50 pending with their assessment",
            theirs=_sql(
                "SELECT p.*, r.score, r.path, r.factors FROM payments_payment p "
                "JOIN payments_riskassessment r ON r.withdrawal_id = p.id "
                "WHERE p.kind = 'withdrawal' AND p.status IN ('requested', 'in_review') "
                "AND p.brand_id = ANY(%s) ORDER BY p.created_at, p.id LIMIT 50",
                [[1, 2]],
                args.runs,
            ),
            target=f"p95 < {PAGE_TARGET_MS} ms, ≤ 10 queries",
            met=ours["p95"] < PAGE_TARGET_MS and ours["queries"] <= 10,
        )
    )
    return figures


def _script(module: str, extra: list[str]) -> dict | None:
    """Run `python -m benchmarks.<module> --json ...` and return its JSON, or None."""
    path = ROOT / "benchmarks" / f"{module}.py"
    if not path.exists():
        return None
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", f"benchmarks.{module}", "--json", *extra],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        print(done.stdout[-2000:], done.stderr[-4000:], file=sys.stderr)
        raise RuntimeError(f"benchmarks/{module}.py failed with exit code {done.returncode}")
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    return json.loads(lines[-1]) if lines else None


def throughput(args) -> list[Figure]:
    """Postings, webhook intake and reconciliation, each from its own script (own database)."""
    small = args.scale == "S"
    figures = []
    postings = _script("bench_postings", ["--postings", "400" if small else "4000"])
    if postings:
        figures.append(
            Figure(
                name="ledger postings/s (8 writers)",
                how="python -m benchmarks.bench_postings",
                ours={k: v for k, v in postings.items() if k != "raw_sql"},
                compared_with="raw SQL, hot account",
                theirs={"raw_sql": postings.get("raw_sql")},
                target="hot ≥ 80% of raw SQL; spread ≥ 1,500/s; batched ≥ 10,000/s",
                met=None if small else postings.get("met"),
                notes="S runs too few postings for the rates to mean much",
            )
        )
    webhooks = _script(
        "bench_webhooks",
        ["--deliveries", "500" if small else "20000", "--seconds", "3" if small else "10"]
        + (["--rounds", "1"] if small else []),
    )
    if webhooks:
        figures.append(
            Figure(
                name="webhook intake, deliveries/s; callbacks applied/s",
                how="python -m benchmarks.bench_webhooks (gunicorn 2 workers, wrk 16 connections;"
                " then process_psp_inbox, one process)",
                ours={k: v for k, v in webhooks.items() if not k.startswith("ceiling")},
                compared_with="bare Django insert view, same gunicorn and settings",
                theirs={k: v for k, v in webhooks.items() if k.startswith("ceiling")},
                target="intake ≥ 80% of the bare view, p99 < 50 ms; applying ≥ 400 events/s, "
                "100,000 in < 5 min",
                met=None if small else webhooks.get("met"),
            )
        )
    lines = "10000" if small else "1000000"
    # At full size it also reconciles a 10,000-line report, to compare peak memory.
    recon = _script("bench_reconcile", ["--lines", lines, *(["--small", "0"] if small else [])])
    if recon:
        figures.append(
            Figure(
                name=f"reconciliation, {int(lines):,} lines",
                how=f"python -m benchmarks.bench_reconcile --lines {lines}",
                ours={k: v for k, v in recon.items() if k != "floor"},
                compared_with="COPY + one SQL join",
                theirs={"floor": recon.get("floor")},
                target="< 10 s and < 100 MB at 1,000,000 lines, peak ≤ 20 MB above 10,000 lines",
                met=None if small else recon.get("met"),
            )
        )
    return figures


def groups() -> dict:
    return {"payments": pages, "throughput": throughput}
