"""One function per table group; each returns the number of rows it wrote.

Ids are predictable (tables are truncated with RESTART IDENTITY): player `p` belongs to brand
`brands[p % 3]`, so dependent rows (tickets, timeline, payments) derive their brand from the
player id without a join.
"""

from __future__ import annotations

from django.db import connection

from .sqlgen import insert_select, reset_sequence

FIRST = "ARRAY['Anna','Ben','Carla','Dan','Elif','Finn','Greta','Hugo','Ines','Jon','Kaja','Leo','Mia','Nils','Olga','Pau','Rita','Sven','Tara','Ugo']"  # noqa: E501
LAST = "ARRAY['Andersson','Borg','Camilleri','Dahl','Ekström','Farrugia','Grech','Holm','Isaksen','Johansson','Karlsson','Lindqvist','Mifsud','Nyberg','Olsen','Pace','Quist','Rossi','Sandberg','Vella']"  # noqa: E501
BRAND_CODES = [("aurora", "Aurora Casino", "MT", "EUR"), ("nordic", "Nordic Spins", "SE", "SEK"),
               ("satoshi", "Satoshi Slots", "CW", "BTC")]  # fmt: skip
HEAVY_PLAYER_ID = 1  # brand 2 (1 % 3 = 1 → brands[1])


def brand_of(expr: str) -> str:
    """SQL: the brand id of player id `expr` (brands are 1, 2, 3)."""
    return f"(1 + ({expr}) % 3)"


def build_brands_and_staff(scale) -> int:
    from guardian.shortcuts import assign_perm

    from backoffice.models import Brand, User
    from backoffice.staff_services import ensure_roles

    brands = [
        Brand.objects.create(code=c, name=n, jurisdiction=j, default_currency=cur)
        for c, n, j, cur in BRAND_CODES
    ]
    groups = {g.name: g for g in ensure_roles(reset=True)}
    User.objects.create_superuser("bench_admin", "admin@bench.test", "bench-password-123")
    for role in ("Support", "Payments", "Compliance"):
        user = User.objects.create_user(
            f"bench_{role.lower()}", f"{role.lower()}@bench.test", "bench-password-123"
        )
        user.groups.add(groups[role])
        # Scoped to two of the three brands: the filter is a real IN list, not "everything".
        for brand in brands[:2]:
            assign_perm("backoffice.access_brand", user, brand)
    return len(brands)


def build_players(scale) -> int:
    from players.models import Player

    n = scale.players
    rows = insert_select(
        Player,
        {
            "id": "i",
            "brand_id": brand_of("i"),
            "external_ref": "'P' || lpad(i::text, 9, '0')",
            "username": "'user' || i",
            "email": "'user' || i || '@mail.example'",
            "phone": "'+356' || lpad(i::text, 9, '0')",
            "first_name": f"({FIRST})[1 + i % 20]",
            "last_name": f"({LAST})[1 + (i / 20) % 20] || CASE WHEN i % 7 = 0 THEN '-' || (i % 101) ELSE '' END",
            "date_of_birth": "date '1960-01-01' + (i % 15000)",
            "country": "(ARRAY['MT','SE','CW'])[1 + i % 3]",
            "currency": "(ARRAY['EUR','SEK','BTC'])[1 + i % 3]",
            "registered_at": "now() - ((i % 1500) || ' days')::interval - ((i % 1440) || ' minutes')::interval",
            "registration_ip": "('10.' || (i % 250) || '.' || ((i / 250) % 250) || '.' || (i % 200))::inet",
            "registration_device": "'dev-' || (i % (GREATEST(" + str(n) + " / 2, 1)))",
            "status": "CASE WHEN i % 97 = 0 THEN 'suspended' WHEN i % 211 = 0 THEN 'self_excluded' "
            "WHEN i % 401 = 0 THEN 'closed' ELSE 'active' END",
            "kyc_level": "i % 4",
            "last_activity_at": "now() - ((i % 120) || ' days')::interval",
        },
        f"generate_series(1, {n}) AS g(i)",
        with_id=True,
    )
    reset_sequence(Player)
    return rows


KINDS = "ARRAY['payment','ledger','account','ticket','note','staff','payment','ledger']"


def build_timeline(scale) -> int:
    from players.models import TimelineEvent

    n = scale.players * scale.events_per_player
    common = {
        "kind": f"({KINDS})[1 + i % 8]",
        "action": f"({KINDS})[1 + i % 8] || '.event'",
        "summary": "'Event number ' || i",
        "object_type": "''",
        "object_id": "''",
        "actor_label": "'system'",
        "visibility": "CASE WHEN i % 8 = 4 AND i % 3 = 0 THEN 'players.view_risk_notes' ELSE '' END",
        "data": "'{}'::jsonb",
    }
    rows = insert_select(
        TimelineEvent,
        {
            **common,
            "player_id": f"1 + i % {scale.players}",
            "brand_id": brand_of(f"1 + i % {scale.players}"),
            "occurred_at": "now() - ((i % 500000) || ' minutes')::interval",
        },
        f"generate_series(1, {n}) AS g(i)",
    )
    rows += insert_select(
        TimelineEvent,
        {
            **common,
            "player_id": str(HEAVY_PLAYER_ID),
            "brand_id": brand_of(str(HEAVY_PLAYER_ID)),
            # Several events share a timestamp, as real batches do: keyset pages must not skip.
            "occurred_at": "now() - ((i / 3) || ' minutes')::interval",
        },
        f"generate_series(1, {100_000}) AS g(i)",
    )
    return rows


def build_tickets(scale) -> int:
    from support.models import Ticket

    return insert_select(
        Ticket,
        {
            "brand_id": brand_of(f"1 + (i::bigint * 7919) % {scale.players}"),
            "player_id": f"1 + (i::bigint * 7919) % {scale.players}",
            "subject": "'Question about my account #' || i",
            "category": "(ARRAY['deposit','withdrawal','bonus','account','other'])[1 + i % 5]",
            "priority": "(ARRAY['low','normal','normal','high','urgent'])[1 + i % 5]",
            "status": "(ARRAY['new','open','pending_player','pending_internal','resolved','closed','closed','closed'])[1 + i % 8]",
            "created_at": "now() - ((i % 43200) || ' minutes')::interval",
            "updated_at": "now() - ((i % 43200) || ' minutes')::interval",
            "sla_due_at": "now() - ((i % 43200) || ' minutes')::interval + interval '24 hours'",
            "resolution_code": "CASE WHEN i % 8 >= 4 THEN 'answered' ELSE '' END",
        },
        f"generate_series(1, {scale.tickets}) AS g(i)",
    )


def build_audit(scale) -> int:
    """Audit rows for the export benchmark. Their hashes are unique but not a real chain
    (chaining is inherently sequential); `verify_audit` is not meant for the bench database."""
    from backoffice.models import AuditEvent

    return insert_select(
        AuditEvent,
        {
            "occurred_at": "now() - ((i % 525600) || ' minutes')::interval",
            "actor_id": "NULL",
            "actor_label": "(ARRAY['anna.support','ben.payments','=cmd|calc','carla.compliance'])[1 + i % 4]",
            "action": "(ARRAY['player.status_changed','payments.withdrawal.approved','export.csv','role.granted'])[1 + i % 4]",
            "object_type": "'players.player'",
            "object_id": "(1 + i % 1000)::text",
            "object_repr": "'user' || (1 + i % 1000)",
            "brand_id": "1 + i % 3",
            "summary": "'Changed something, row ' || i",
            "reason": "''",
            "before": "jsonb_build_object('status', 'active')",
            "after": "jsonb_build_object('status', 'suspended')",
            "prev_hash": "md5((i - 1)::text) || md5((i - 1)::text || 'x')",
            "row_hash": "md5(i::text) || md5(i::text || 'x')",
        },
        f"generate_series(1, {scale.audit_rows}) AS g(i)",
    )


def steps(scale):
    out = [
        ("brands and staff", build_brands_and_staff),
        ("players", build_players),
        ("timeline events", build_timeline),
        ("tickets", build_tickets),
        ("audit events", build_audit),
    ]
    from . import builders_history, builders_payments

    return out + builders_payments.steps(scale) + builders_history.steps(scale)


def table_rows(table: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE relname = %s", [table])
        row = cursor.fetchone()
    return int(row[0]) if row else 0
