"""payments_ledger_post: a posting (or a batch of postings) in one round trip.

`payments.services.ledger` validates the input and builds the arrays in Python; this function
does, set-based, what the service used to do in four statements:

1. insert the headers, `ON CONFLICT (idempotency_key) DO NOTHING`; a key already taken with
   another fingerprint raises LG003;
2. lock the accounts of the new postings in id order (`ORDER BY id FOR UPDATE`);
3. check them: unknown accounts, brand, sums per currency, the posting's own player (LG001),
   and every player balance along the way (LG002, the details as JSON for the message);
4. insert the entries with their running `balance_after`, update the cached balances and
   append the players' timeline events, in one statement.

Each statement of a PL/pgSQL function takes a fresh snapshot (READ COMMITTED), so the checks and
the writes read the balances committed by whoever held the locks before.
"""

from django.db import migrations

FORMAT_MONEY = r"""
CREATE OR REPLACE FUNCTION payments_format_money(minor numeric, code text, exp integer)
RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    -- backoffice.money.format_money: "1,234.56 EUR"
    SELECT CASE WHEN minor < 0 THEN '-' ELSE '' END
        || regexp_replace(trunc(abs(minor) / 10::numeric ^ exp)::text,
                          '(\d)(?=(\d{3})+$)', '\1,', 'g')
        || CASE WHEN exp > 0
                THEN '.' || lpad((abs(minor) % (10::numeric ^ exp))::numeric(40, 0)::text,
                                 exp, '0')
                ELSE '' END
        || ' ' || upper(code)
$$;
"""

POST = r"""
CREATE OR REPLACE FUNCTION payments_ledger_post(
    p_transfers json, l_transfers integer[], l_accounts bigint[], l_amounts bigint[],
    p_actor_id bigint, p_actor_label text
) RETURNS TABLE (o_id bigint, o_key text, o_replayed boolean)
LANGUAGE plpgsql VOLATILE
-- One posting: plan each statement once per connection (replanning these CTEs on every call
-- costs more than running them). A batch switches to custom plans below, which see the
-- arrays' sizes and choose hash joins.
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    t_keys text[];
    t_kinds text[];
    t_fingerprints text[];
    t_brands bigint[];
    t_players bigint[];
    t_reverses bigint[];
    t_object_types text[];
    t_object_ids text[];
    t_descriptions text[];
    t_reason_codes text[];
    t_approvals bigint[];
    t_created_at timestamptz[];
    t_labels text[];            -- the kind's label for the timeline summary; NULL: no event
    v_fresh integer[];          -- positions (1-based) of the transfers inserted now
    v_ids bigint[];             -- and their ids
    v_accounts bigint[];        -- the accounts they touch, in id order
    a_ids bigint[];             -- those accounts as locked: id, brand, player, currency, ...
    a_brands bigint[];
    a_players bigint[];
    a_currencies text[];
    a_kinds text[];
    a_balances bigint[];
    a_exponents integer[];
    v_bad record;
BEGIN
    IF json_array_length(p_transfers) > 16 THEN
        PERFORM set_config('plan_cache_mode', 'force_custom_plan', true);
    END IF;

    -- the transfers arrive as one JSON array of objects (cheap to build and to quote)
    SELECT array_agg(t.key ORDER BY t.pos), array_agg(t.kind ORDER BY t.pos),
           array_agg(t.fingerprint ORDER BY t.pos), array_agg(t.brand ORDER BY t.pos),
           array_agg(t.player ORDER BY t.pos), array_agg(t.reverses ORDER BY t.pos),
           array_agg(t.object_type ORDER BY t.pos), array_agg(t.object_id ORDER BY t.pos),
           array_agg(t.description ORDER BY t.pos), array_agg(t.reason_code ORDER BY t.pos),
           array_agg(t.approval ORDER BY t.pos), array_agg(t.created_at ORDER BY t.pos),
           array_agg(t.timeline ORDER BY t.pos)
    INTO t_keys, t_kinds, t_fingerprints, t_brands, t_players, t_reverses, t_object_types,
         t_object_ids, t_descriptions, t_reason_codes, t_approvals, t_created_at, t_labels
    FROM ROWS FROM (json_to_recordset(p_transfers) AS (
        key text, kind text, fingerprint text, brand bigint, player bigint, reverses bigint,
        object_type text, object_id text, description text, reason_code text,
        approval bigint, created_at timestamptz, timeline text)) WITH ORDINALITY AS t(
        key, kind, fingerprint, brand, player, reverses, object_type, object_id, description,
        reason_code, approval, created_at, timeline, pos);

    -- 1. headers; a key already taken is a replay, or a conflict when the legs differ
    WITH inserted AS (
        INSERT INTO payments_ledgertransaction (
            idempotency_key, kind, fingerprint, brand_id, player_id, reverses_id, object_type,
            object_id, description, reason_code, created_by_id, approval_id, created_at)
        SELECT t.key, t.kind, t.fp, t.brand, t.player, t.rev, t.otype, t.oid, t.descr, t.reason,
               p_actor_id, t.appr, t.at
        FROM unnest(t_keys, t_kinds, t_fingerprints, t_brands, t_players, t_reverses,
                    t_object_types, t_object_ids, t_descriptions, t_reason_codes, t_approvals,
                    t_created_at) WITH ORDINALITY
             AS t(key, kind, fp, brand, player, rev, otype, oid, descr, reason, appr, at, pos)
        ORDER BY t.pos
        ON CONFLICT (idempotency_key) DO NOTHING
        RETURNING id, idempotency_key
    )
    SELECT array_agg(k.pos ORDER BY k.pos), array_agg(i.id ORDER BY k.pos)
    INTO v_fresh, v_ids
    FROM inserted i JOIN unnest(t_keys) WITH ORDINALITY AS k(key, pos) ON k.key = i.idempotency_key;
    v_fresh := coalesce(v_fresh, '{}');
    v_ids := coalesce(v_ids, '{}');

    IF cardinality(v_fresh) < cardinality(t_keys) THEN
        SELECT k.key, x.id INTO v_bad
        FROM unnest(t_keys, t_fingerprints) WITH ORDINALITY AS k(key, fp, pos)
        JOIN payments_ledgertransaction x ON x.idempotency_key = k.key
        WHERE k.pos <> ALL (v_fresh) AND x.fingerprint <> k.fp
        ORDER BY k.pos LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION USING ERRCODE = 'LG003', MESSAGE = format(
                'Idempotency key %L was already used for a different posting (transaction #%s).',
                v_bad.key, v_bad.id);
        END IF;
    END IF;

    -- the result, before taking any lock (RETURN QUERY does not leave the function); replays
    -- cost one index probe each (COALESCE evaluates the subquery only when needed)
    RETURN QUERY
    SELECT coalesce(f.id, (SELECT x.id FROM payments_ledgertransaction x
                           WHERE x.idempotency_key = k.key)),
           k.key, f.id IS NULL
    FROM unnest(t_keys) WITH ORDINALITY AS k(key, pos)
    LEFT JOIN unnest(v_fresh, v_ids) AS f(pos, id) ON f.pos = k.pos
    ORDER BY k.pos;

    IF cardinality(v_fresh) > 0 THEN
        -- 2. lock in id order (two postings never deadlock) and read the accounts once
        SELECT array_agg(a.id ORDER BY a.id), array_agg(a.brand_id ORDER BY a.id),
               array_agg(a.player_id ORDER BY a.id), array_agg(a.currency_id ORDER BY a.id),
               array_agg(a.kind ORDER BY a.id), array_agg(a.balance ORDER BY a.id),
               array_agg(c.exponent ORDER BY a.id),
               (SELECT array_agg(DISTINCT l.account ORDER BY l.account)
                FROM unnest(l_transfers, l_accounts) AS l(pos, account)
                JOIN unnest(v_fresh) AS f(pos) ON f.pos = l.pos)
        INTO a_ids, a_brands, a_players, a_currencies, a_kinds, a_balances, a_exponents,
             v_accounts
        FROM (SELECT id, brand_id, player_id, currency_id, kind, balance
              FROM payments_account
              WHERE id IN (SELECT l.account
                           FROM unnest(l_transfers, l_accounts) AS l(pos, account)
                           JOIN unnest(v_fresh) AS f(pos) ON f.pos = l.pos)
              ORDER BY id FOR UPDATE) a
        JOIN payments_currency c ON c.code = a.currency_id;

        -- 3. an unknown account fails before anything else
        IF coalesce(cardinality(a_ids), 0) < cardinality(v_accounts) THEN
            RAISE EXCEPTION USING ERRCODE = 'LG001', MESSAGE = format(
                'Unknown account(s): [%s].', (
                    SELECT string_agg(x::text, ', ' ORDER BY x) FROM unnest(v_accounts) AS x
                    WHERE x <> ALL (coalesce(a_ids, '{}'))));
        END IF;

        -- 3. checks and 4. writes in one statement: nothing is written when a check fails,
        -- and the first failure (of the first transfer, in the order given) is raised right
        -- after. The writes: entries with their running balance, the cached balances, the
        -- players' timeline events.
        WITH legs AS (
            SELECT l.pos, l.ord, l.account, l.amount, f.id AS txn_id, a.brand_id, a.player_id,
                   a.currency_id, a.kind, a.exponent, t.at, t.label, t.player AS t_player,
                   t.brand AS t_brand, t.kind AS t_kind, t.descr,
                   a.balance + sum(l.amount) OVER w AS after
            FROM unnest(l_transfers, l_accounts, l_amounts) WITH ORDINALITY
                 AS l(pos, account, amount, ord)
            JOIN unnest(v_fresh, v_ids) AS f(pos, id) ON f.pos = l.pos
            JOIN unnest(t_brands, t_players, t_kinds, t_descriptions, t_created_at, t_labels)
                 WITH ORDINALITY AS t(brand, player, kind, descr, at, label, pos)
                 ON t.pos = l.pos
            JOIN unnest(a_ids, a_brands, a_players, a_currencies, a_kinds, a_balances,
                        a_exponents)
                 AS a(id, brand_id, player_id, currency_id, kind, balance, exponent)
                 ON a.id = l.account
            WINDOW w AS (PARTITION BY l.account ORDER BY l.ord)
        ), problems AS (
            SELECT pos, 1 AS rank, ord, 'LG001' AS code,
                   format('Account %s belongs to another brand than the transfer.', account)
                       AS message,
                   NULL::text AS detail
            FROM legs WHERE brand_id <> t_brand
            UNION ALL
            SELECT pos, 2, 0, 'LG001',
                   'The legs do not sum to zero: {'
                   || string_agg(format('''%s'': %s', currency_id, total), ', ' ORDER BY first)
                   || '}.',
                   NULL
            FROM (SELECT pos, currency_id, sum(amount) AS total, min(ord) AS first
                  FROM legs GROUP BY pos, currency_id) s
            WHERE total <> 0 GROUP BY pos
            UNION ALL
            SELECT pos, 3, 0, 'LG001',
                   CASE WHEN count(DISTINCT player_id) = 0
                        THEN 'The transfer names a player but touches no wallet.'
                        ELSE 'A transfer moves the money of exactly its own player.' END,
                   NULL
            FROM legs GROUP BY pos, t_player
            HAVING count(DISTINCT player_id) > 1
                OR (count(DISTINCT player_id) = 1
                    AND (t_player IS NULL OR min(player_id) <> t_player))
                OR (count(DISTINCT player_id) = 0 AND t_player IS NOT NULL)
            UNION ALL
            SELECT pos, 4, ord, 'LG002', 'Not enough funds.',
                   json_build_object('account_id', account, 'kind', kind,
                                     'currency', currency_id, 'available', after - amount,
                                     'needed', -amount)::text
            FROM legs WHERE player_id IS NOT NULL AND after < 0
        ), first_problem AS (
            SELECT * FROM problems ORDER BY pos, rank, ord LIMIT 1
        ), entries AS (
            INSERT INTO payments_ledgerentry (transaction_id, account_id, brand_id, player_id,
                currency_id, amount, balance_after, created_at)
            SELECT txn_id, account, brand_id, player_id, currency_id, amount, after, at
            FROM legs WHERE NOT EXISTS (SELECT FROM first_problem) ORDER BY ord
        ), balances AS (
            UPDATE payments_account a SET balance = a.balance + d.total
            FROM (SELECT account, sum(amount) AS total FROM legs GROUP BY account) d
            WHERE a.id = d.account AND NOT EXISTS (SELECT FROM first_problem)
        ), timeline AS (
            INSERT INTO players_timelineevent (player_id, brand_id, occurred_at, kind, action,
                summary, object_type, object_id, actor_label, visibility, data)
            SELECT t_player, t_brand, at, 'ledger', 'ledger.' || t_kind,
                   left(label || ': '
                        || string_agg(kind || ' ' || CASE WHEN amount > 0 THEN '+' ELSE '−' END
                                      || payments_format_money(abs(amount), currency_id,
                                                               exponent),
                                      ', ' ORDER BY ord) FILTER (WHERE player_id IS NOT NULL)
                        || CASE WHEN descr <> '' THEN ' — ' || descr ELSE '' END, 300),
                   'payments.ledgertransaction', txn_id::text, p_actor_label, '',
                   jsonb_build_object('transaction_id', txn_id)
            FROM legs
            WHERE label IS NOT NULL AND t_player IS NOT NULL
              AND NOT EXISTS (SELECT FROM first_problem)
            GROUP BY pos, txn_id, t_player, t_brand, at, t_kind, label, descr
            ORDER BY pos
        )
        SELECT * INTO v_bad FROM first_problem;
        IF FOUND THEN
            RAISE EXCEPTION USING ERRCODE = v_bad.code, MESSAGE = v_bad.message,
                DETAIL = coalesce(v_bad.detail, '');
        END IF;
    END IF;

END;
$$;
"""

DROP = """
DROP FUNCTION IF EXISTS payments_ledger_post(json, integer[], bigint[], bigint[], bigint, text);
DROP FUNCTION IF EXISTS payments_format_money(numeric, text, integer);
"""


class Migration(migrations.Migration):
    dependencies = [
        ("payments", "0004_risk_and_reconciliation"),
        ("players", "0001_initial"),
    ]

    operations = [migrations.RunSQL(FORMAT_MONEY + POST, DROP)]
