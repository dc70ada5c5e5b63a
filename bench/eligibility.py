"""Eligibility benchmarks.

decide: decisions per second with West Midlands' compiled policy, against a
hand-written Python function of the same rules, in the same run.

simulate: a simulation over 1,000,000 synthetic past encounters (target:
under 10 seconds on a 2-core machine), against the same cases decided one by
one with ``decide()`` on a sample, scaled.
"""

from __future__ import annotations

import time
import tomllib
from datetime import date
from pathlib import Path
from typing import Any

from diversion.eligibility.compiler import CompiledPolicy, compile_policy
from diversion.eligibility.document import split_policy
from diversion.eligibility.engine import decide
from diversion.eligibility.simulation import PastCase, simulate
from diversion.eligibility.synthetic import cases
from diversion.monitoring import age_band

TENANTS = Path(__file__).resolve().parents[1] / "tenants"
ON = date(2026, 6, 1)


def _policy(slug: str) -> CompiledPolicy:
    raw = tomllib.loads((TENANTS / f"{slug}.toml").read_text())["policy"]
    return compile_policy(split_policy(raw)[1])


def west_midlands_by_hand(facts: dict[str, Any]) -> tuple[str, str | None]:
    """West Midlands' DIVERT rules written directly in Python (no missing facts)."""
    if facts["offence"] in ("possession_with_intent_to_supply", "supply") or facts["user_dealer"]:
        return "not_eligible", None
    if facts["previous_non_engagement"]:
        return "not_eligible", None
    if {"violence", "weapon", "serious_offence"} & set(facts["aggravating_factors"]):
        return "not_eligible", None
    common = facts["stage"] == "street" and facts["offence"] == "possession" and facts["personal_use"]
    if common and facts["age"] >= 18:
        return "eligible", "divert"
    if common and 10 <= facts["age"] < 18:
        return "eligible", "divert-youth"
    return "not_eligible", None


def _rate(label: str, count: int, seconds: float) -> float:
    rate = count / seconds
    print(f"  {label:<44} {count:>9,} in {seconds:6.2f} s = {rate:>12,.0f} per second")
    return rate


def bench_decide(count: int = 20_000) -> None:
    print(f"decide: {count:,} West Midlands cases")
    policy = _policy("west-midlands")
    sample = [c.facts for c in cases("west-midlands", count, start=ON, days=1, seed="bench")
              if all(v is not None for v in c.facts.values())]
    start = time.perf_counter()
    compiled = [(d.outcome, d.pathway) for d in (decide(policy, f, ON) for f in sample)]
    engine = _rate("compiled policy, decide()", len(sample), time.perf_counter() - start)
    start = time.perf_counter()
    by_hand = [west_midlands_by_hand(f) for f in sample]
    baseline = _rate("hand-written Python (baseline)", len(sample), time.perf_counter() - start)
    if compiled != by_hand:
        raise SystemExit("the two disagree: the benchmark would compare different rules")
    print(f"  decide() runs at 1/{baseline / engine:.0f} of hand-written speed, and explains every answer\n")


def bench_simulate(count: int = 1_000_000) -> None:
    print(f"simulate: {count:,} synthetic past encounters under Durham's policy")
    policy = _policy("durham")
    start = time.perf_counter()
    past = [PastCase(c.facts, c.decided_on, "eligible", "adult-course", age_band(c.facts.get("age")), c.ethnicity)
            for c in cases("thames-valley", count, start=date(2025, 6, 1), days=365, seed="bench")]
    print(f"  made the cases in {time.perf_counter() - start:.1f} s")
    start = time.perf_counter()
    report = simulate(policy, past)
    seconds = time.perf_counter() - start
    _rate("simulation (columns)", count, seconds)
    sample = past[:20_000]
    start = time.perf_counter()
    for case in sample:
        decide(policy, case.facts, case.decided_on)
    one_by_one = _rate("decide() one by one (baseline, sampled)", len(sample), time.perf_counter() - start)
    print(f"  {report.changed:,} would change; simulation is {count / seconds / one_by_one:.1f}x one-by-one; "
          f"target under 10 s: {'met' if seconds < 10 else 'MISSED'} ({seconds:.1f} s)\n")
