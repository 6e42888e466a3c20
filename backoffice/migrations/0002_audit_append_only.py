"""Audit events are append-only: the database itself rejects UPDATE and DELETE."""

from django.db import migrations

FORBID = """
CREATE OR REPLACE FUNCTION bo_forbid_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '% on %.% is not allowed: rows are append-only', TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER auditevent_append_only
    BEFORE UPDATE OR DELETE ON backoffice_auditevent
    FOR EACH ROW EXECUTE FUNCTION bo_forbid_change();
"""

ALLOW = """
DROP TRIGGER IF EXISTS auditevent_append_only ON backoffice_auditevent;
"""


class Migration(migrations.Migration):
    dependencies = [("backoffice", "0001_initial")]

    operations = [migrations.RunSQL(FORBID, ALLOW)]
