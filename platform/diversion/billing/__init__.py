"""Billing: what each force pays the providers that deliver its courses.

Contracts per (force, provider) price the referral events; the ledger
(``billing.ledger``) listens to referral moves (``cases.events``) and
writes one immutable row per billable event in the same transaction; each
month closes into a statement per (force, provider) and a Stripe invoice
paid out to the provider's connected account; Stripe's webhooks report
what happened to each invoice, and reconciliation compares the three.
"""
