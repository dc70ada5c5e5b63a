"""National comparison: metrics on common definitions, their uncertainty and disclosure control.

It reads aggregates only: counts per force and period, never a row about a person.
"""
