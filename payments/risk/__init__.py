"""Withdrawal risk assessment: factors, their registry, and the engine that scores a withdrawal
and picks its path (auto-pay, review, manual).

- `base`: the `RiskFactor` interface, `Signal`, `RiskContext` and `register_factor`.
- `factors`: the built-in factors (KYC vs amount, wagering outstanding, velocity, payout to a
  method never used to deposit, recent method or device, account age, risk flags,
  restrictions, amount vs history).
- `engine`: `assess(withdrawal, policy=..., now=...)`, pure reads.

Storing the assessment and acting on it (auto-pay within the cap, review, manual) is
`payments.services.risk`; the queue's actions are `payments.services.queue`.
"""
