"""PSP settlement reports against our payments.

- `formats`: each adapter's report columns and what its words mean in ours.
- `importer`: COPY into a staging table, every line checked in SQL; a bad file is rejected
  whole with line numbers.
- `matcher`: classification in SQL (matched, amount, currency or status mismatch, missing on
  our side, missing in the report, duplicate in the report) and the exceptions' upsert.
- `runner`: one run in one transaction, with progress; safe to re-run after a crash.
- `tasks`: the Celery job; `report_writer`: writes a settlement report for a set of payments
  (the simulator, the demo, the tests and the benchmark use it).

Staff-facing writes (upload, re-run, resolve, propose a correcting adjustment) are in
`payments.services.reconciliation`.
"""
