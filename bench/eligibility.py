"""Eligibility benchmarks.

decide: decisions per second with West Midlands' compiled policy, against a
hand-written Python function of the same rules, in the same run (target:
within 5x); also, for the record, decide() over cases with a fact missing
and decide() with every criterion's result worked out, as stored today.

The simulation's benchmark is ``bench.simulation``.
"""

from __future__ import annotations

import math
import time
import tomllib
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

from diversion.eligibility.compiler import CompiledPolicy, compile_policy
from diversion.eligibility.document import split_policy
from diversion.eligibility.engine import decide
from diversion.eligibility.synthetic import cases

TENANTS = Path(__file__).resolve().parents[1] / "tenants"
ON = date(2026, 6, 1)
DECIDE_TARGET = 5  # issue 14: decide() within 5x of the hand-written function


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
    print(f"  {label:<48} {count:>9,} in {seconds:6.3f} s = {rate:>12,.0f} per second")
    return rate


def _best(runs: dict[str, Callable[[list[dict[str, Any]]], object]], cases: list[dict[str, Any]], rounds: int,
          chunk: int = 1_000) -> dict[str, float]:
    """How long each run takes over ``cases``: the shortest time of each chunk
    of cases over ``rounds`` rounds, added up. The runs take turns on each
    chunk, each going first in turn (the cases then come cold from memory),
    so that all see the same (shared, busy) machine; a chunk is short enough
    for some round to run it undisturbed."""
    chunks = [cases[i:i + chunk] for i in range(0, len(cases), chunk)]
    best = {name: [math.inf] * len(chunks) for name in runs}
    names = list(runs)
    for turn in range(rounds):
        order = names[turn % len(names):] + names[:turn % len(names)]  # each run goes first in turn
        for i, part in enumerate(chunks):
            for name in order:
                run = runs[name]
                start = time.perf_counter()
                run(part)
                best[name][i] = min(best[name][i], time.perf_counter() - start)
    return {name: sum(times) for name, times in best.items()}


def bench_decide(count: int = 20_000, rounds: int = 15) -> None:
    print(f"decide: {count:,} West Midlands cases, best of {rounds} rounds (3 for the last two)")
    policy = _policy("west-midlands")
    every = [c.facts for c in cases("west-midlands", count, start=ON, days=1, seed="bench")]
    sample = [facts for facts in every if all(v is not None for v in facts.values())]
    if [(d.outcome, d.pathway) for d in (decide(policy, f, ON) for f in sample)] != \
            [west_midlands_by_hand(f) for f in sample]:
        raise SystemExit("the two disagree: the benchmark would compare different rules")

    def decided(part: list[dict[str, Any]]) -> None:
        for facts in part:
            decide(policy, facts, ON)

    def by_hand(part: list[dict[str, Any]]) -> None:
        for facts in part:
            west_midlands_by_hand(facts)

    def explained(part: list[dict[str, Any]]) -> None:
        for facts in part:
            decide(policy, facts, ON).results_json()

    best = {**_best({"decide": decided, "hand": by_hand}, sample, rounds),
            **_best({"explained": explained}, sample, 3), **_best({"every": decided}, every, 3)}
    engine = _rate("compiled policy, decide(), every fact known", len(sample), best["decide"])
    baseline = _rate("hand-written Python (baseline)", len(sample), best["hand"])
    _rate(f"decide(), every case ({len(every) - len(sample)} with a fact missing)", len(every), best["every"])
    _rate("decide() and every criterion's result, as stored", len(sample), best["explained"])
    ratio = baseline / engine
    print(f"  decide() takes {ratio:.1f}x the time of the hand-written function; "
          f"target within {DECIDE_TARGET}x: {'met' if ratio <= DECIDE_TARGET else 'MISSED'}\n")
