"""Every write of the payments app. Views, tasks, commands and the API call these.

- `ledger`: posting balanced transfers, reversals, wallet and house accounts.
- `payments`: deposits and withdrawals and their state machines.
- `corrections`: manual adjustments, refunds, reversals and chargebacks (four eyes above a
  per-currency threshold).
- `psp_events`: webhook intake and applying PSP events.
- `config`: PSPs, payment methods and thresholds.
- `risk`: assessing a new withdrawal and acting on its path; risk policies and approval limits.
- `queue`: the withdrawal queue (claim, approve, hold, reject, bulk approve, auto-pay within the
  daily caps, payout attempts).
- `reconciliation`: settlement report uploads and re-runs, working reconciliation exceptions.
"""
