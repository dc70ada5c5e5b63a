"""Comparing forces fairly: rates with their uncertainty, funnel limits, and ratios between groups.

Pure functions on counts. A rate is shown with its Wilson score interval,
which stays inside 0-100% and behaves at small counts and at rates near
0 or 1, where the textbook normal interval does not. Forces are compared
with a funnel plot rather than a league table: each force's rate is plotted
against its denominator, with the limits within which a force of that size
would fall by chance alone if its true rate were the national one (95% and
99.8%, exact binomial limits). Where the forces differ more than chance
allows even after that (overdispersion), the limits are widened by the
between-force variance and the page says so.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
from scipy import stats

Z95 = NormalDist().inv_cdf(0.975)  # two-sided 95%
Z998 = NormalDist().inv_cdf(0.999)  # two-sided 99.8%
WINSOR = 0.10  # z-scores are pulled in to their 10th and 90th centiles before overdispersion is estimated


@dataclass(frozen=True)
class Interval:
    low: float
    high: float

    def __contains__(self, value: float) -> bool:
        return self.low <= value <= self.high


def _counts(events: int, total: int) -> None:
    if total <= 0:
        raise ValueError(f"a rate needs a denominator above zero, not {total}")
    if not 0 <= events <= total:
        raise ValueError(f"{events} events cannot come out of {total}")


def rate(events: int, total: int) -> float:
    """``events`` out of ``total`` as a proportion; refuses a denominator of zero or events outside it."""
    _counts(events, total)
    return events / total


def wilson(events: int, total: int, z: float = Z95) -> Interval:
    """The Wilson score interval for ``events`` out of ``total`` (95% unless ``z`` says otherwise).

    Refuses a denominator of zero and events below zero or above the denominator.
    """
    _counts(events, total)
    p = events / total
    centre = p + z * z / (2 * total)
    spread = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total))
    scale = 1 + z * z / total
    # At 0 or all events the bound is exactly 0 or 1; rounding must not nudge it past.
    low = 0.0 if events == 0 else (centre - spread) / scale
    high = 1.0 if events == total else (centre + spread) / scale
    return Interval(low, high)


def binomial_limits(target: float, total: int, coverage: float) -> Interval:
    """Where a force of ``total`` cases falls by chance alone, with ``coverage`` probability,
    if its true rate is ``target``: exact binomial limits, interpolated between whole counts
    (so that the funnel is a smooth curve, as public health funnel plots draw it).

    Refuses a target outside 0-1, a denominator of zero and a coverage outside 0-1.
    """
    if not 0 <= target <= 1:
        raise ValueError(f"a target rate lies between 0 and 1, not {target}")
    if total <= 0:
        raise ValueError(f"a denominator must be above zero, not {total}")
    if not 0 < coverage < 1:
        raise ValueError(f"coverage lies between 0 and 1, not {coverage}")
    tail = (1 - coverage) / 2
    return Interval(_quantile(target, total, tail) / total, _quantile(target, total, 1 - tail) / total)


def _quantile(target: float, total: int, p: float) -> float:
    """The binomial ``p``-quantile, less the share of its step that overshoots ``p``."""
    r = float(stats.binom.ppf(p, total, target))
    at, below = stats.binom.cdf(r, total, target), stats.binom.cdf(r - 1, total, target)
    if at <= below:
        return r
    return max(0.0, float(r - (at - p) / (at - below)))


@dataclass(frozen=True)
class Funnel:
    """A funnel plot's centre line and what it knows of the spread between forces."""

    target: float
    overdispersed: bool  # forces differ beyond chance, so the limits are widened
    tau2: float  # the between-force variance added to each force's own (0 when not overdispersed)
    phi: float  # the winsorised mean squared z-score (about 1 when forces differ by chance alone)

    def limits(self, total: int, z: float) -> Interval:
        """The control limits at a denominator of ``total``: exact binomial ones, or, where the
        forces are overdispersed, the normal ones widened by the between-force variance."""
        if not self.overdispersed:
            coverage = 2 * NormalDist().cdf(z) - 1
            return binomial_limits(self.target, total, coverage)
        spread = z * math.sqrt(self.target * (1 - self.target) / total + self.tau2)
        return Interval(max(0.0, self.target - spread), min(1.0, self.target + spread))

    def z_score(self, events: int, total: int) -> float:
        """How many (adjusted) standard errors a force's rate lies from the target."""
        variance = self.target * (1 - self.target) / total + self.tau2
        return 0.0 if variance == 0 else (rate(events, total) - self.target) / math.sqrt(variance)


def funnel(counts: Sequence[tuple[int, int]]) -> Funnel:
    """The funnel for forces' ``(events, total)``: the pooled rate, and overdispersion tested.

    Overdispersion is estimated from the forces' z-scores against the pooled
    rate, winsorised at their 10th and 90th centiles so that one outlier does
    not widen everyone's limits: phi is their mean square. Where phi times the
    number of forces exceeds the 95% point of chi-squared on one degree of
    freedom fewer, the between-force variance tau squared is added (the
    additive random-effects model). Refuses an empty list and any force with
    no denominator.
    """
    if not counts:
        raise ValueError("a funnel needs at least one force")
    for events, total in counts:
        _counts(events, total)
    events_all = sum(events for events, _ in counts)
    total_all = sum(total for _, total in counts)
    target = events_all / total_all
    forces = len(counts)
    if forces < 3 or target in (0.0, 1.0):
        return Funnel(target, overdispersed=False, tau2=0.0, phi=1.0)
    totals = np.array([total for _, total in counts], dtype=float)
    rates = np.array([events / total for events, total in counts])
    errors = np.sqrt(target * (1 - target) / totals)
    z = (rates - target) / errors
    low, high = np.quantile(z, [WINSOR, 1 - WINSOR])
    phi = float(np.mean(np.clip(z, low, high) ** 2))
    if forces * phi <= stats.chi2.ppf(0.95, forces - 1):
        return Funnel(target, overdispersed=False, tau2=0.0, phi=phi)
    weights = 1 / errors**2
    tau2 = max(0.0, (forces * phi - (forces - 1)) / (weights.sum() - (weights**2).sum() / weights.sum()))
    return Funnel(target, overdispersed=tau2 > 0, tau2=tau2, phi=phi)


@dataclass(frozen=True)
class Ratio:
    value: float
    interval: Interval | None  # None where the group had no events (a ratio of 0 has no log-scale interval)


def group_ratio(events: int, total: int, events_all: int, total_all: int, z: float = Z95) -> Ratio:
    """A group's rate against the whole it belongs to (an ethnic group's diversion rate against
    the force's), as a ratio with its interval.

    The interval is worked out on the log scale by the delta method, counting
    that the group is part of the whole (its own cases move both rates).
    Refuses a group larger than the whole, more events than cases, and a
    whole with no events.
    """
    _counts(events, total)
    _counts(events_all, total_all)
    if total > total_all or events > events_all or total - events > total_all - events_all:
        raise ValueError("a group cannot hold more cases or events than the whole it belongs to")
    if events_all == 0:
        raise ValueError("a ratio to a rate of zero is undefined")
    p_group, p_all = events / total, events_all / total_all
    value = p_group / p_all
    if events == 0:
        return Ratio(value, None)
    rest = total_all - total
    p_rest = (events_all - events) / rest if rest else 0.0
    # d log(ratio) / d p_group and / d p_rest, with p_all = (total p_group + rest p_rest) / total_all
    by_group = 1 / p_group - total / (total_all * p_all)
    by_rest = -rest / (total_all * p_all)
    variance = by_group**2 * p_group * (1 - p_group) / total
    if rest:
        variance += by_rest**2 * p_rest * (1 - p_rest) / rest
    spread = z * math.sqrt(variance)
    return Ratio(value, Interval(value * math.exp(-spread), value * math.exp(spread)))
