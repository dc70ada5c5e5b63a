"""Eligibility: each force's versioned policy, decisions with reasons, simulation."""
