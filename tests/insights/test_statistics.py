"""Rates with their intervals, funnel limits and group ratios, checked against independent sums."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from diversion.insights.statistics import Z95, Z998, binomial_limits, funnel, group_ratio, rate, wilson
from diversion.insights.tables import _share

counts = st.integers(1, 5_000).flatmap(lambda total: st.tuples(st.integers(0, total), st.just(total)))


@settings(deadline=None)
@given(counts)
def test_wilson_agrees_with_scipys_own_wilson_interval(pair: tuple[int, int]) -> None:
    events, total = pair
    for z, level in ((Z95, 0.95), (Z998, 0.998)):
        theirs = stats.binomtest(events, total).proportion_ci(confidence_level=level, method="wilson")
        ours = wilson(events, total, z)
        assert ours.low == pytest.approx(theirs.low, abs=1e-9)
        assert ours.high == pytest.approx(theirs.high, abs=1e-9)
        assert 0 <= ours.low <= rate(events, total) <= ours.high <= 1


@settings(deadline=None)
@given(counts)
def test_a_wilson_interval_narrows_as_the_same_rate_is_seen_over_more_cases(pair: tuple[int, int]) -> None:
    events, total = pair
    small, large = wilson(events, total), wilson(events * 10, total * 10)
    assert large.high - large.low < small.high - small.low


@pytest.mark.parametrize(("events", "total"), [(0, 0), (1, 0), (-1, 5), (6, 5)])
def test_a_rate_refuses_counts_that_cannot_be(events: int, total: int) -> None:
    with pytest.raises(ValueError, match=r"denominator|cannot come out"):
        wilson(events, total)


@settings(deadline=None)
@given(st.floats(0.01, 0.99), st.integers(1, 20_000), st.sampled_from([0.95, 0.998]))
def test_funnel_limits_are_the_binomial_quantiles_interpolated_within_their_step(
        target: float, total: int, coverage: float) -> None:
    limits = binomial_limits(target, total, coverage)
    tail = (1 - coverage) / 2
    for limit, p in ((limits.low, tail), (limits.high, 1 - tail)):
        step = math.ceil(limit * total - 1e-9)  # the whole count whose step the limit falls in
        assert stats.binom.cdf(step - 1, total, target) < p <= stats.binom.cdf(step, total, target) + 1e-12
    assert 0 <= limits.low <= limits.high <= 1


@settings(deadline=None)
@given(st.floats(0.1, 0.9), st.integers(20_000, 200_000))
def test_funnel_limits_meet_the_normal_ones_for_large_forces(target: float, total: int) -> None:
    spread = Z95 * math.sqrt(target * (1 - target) / total)
    limits = binomial_limits(target, total, 0.95)
    assert limits.low == pytest.approx(target - spread, abs=2e-3)
    assert limits.high == pytest.approx(target + spread, abs=2e-3)


def test_forces_differing_by_chance_alone_are_not_called_overdispersed() -> None:
    generator = np.random.default_rng(2026)
    totals = generator.integers(200, 5_000, size=43)
    found = funnel([(int(generator.binomial(total, 0.3)), int(total)) for total in totals])
    assert not found.overdispersed
    assert found.tau2 == 0
    assert found.target == pytest.approx(0.3, abs=0.01)
    # So the limits are the exact binomial ones.
    assert found.limits(1_000, Z95) == binomial_limits(found.target, 1_000, 0.95)


def test_forces_whose_true_rates_differ_widen_the_limits_by_the_variance_between_them() -> None:
    generator = np.random.default_rng(2027)
    spread = 0.06  # the true rates' standard deviation between forces
    rates = np.clip(generator.normal(0.4, spread, size=43), 0.05, 0.95)
    found = funnel([(int(generator.binomial(3_000, true)), 3_000) for true in rates])
    assert found.overdispersed
    assert found.phi > 1
    assert spread**2 / 2 < found.tau2 < spread**2 * 2
    plain = binomial_limits(found.target, 3_000, 0.95)
    widened = found.limits(3_000, Z95)
    assert widened.low < plain.low
    assert widened.high > plain.high
    # A force at the forces' mean rate is well inside them.
    assert abs(found.z_score(int(rates.mean() * 3_000), 3_000)) < 1


def test_a_funnel_refuses_no_forces_and_a_force_with_no_cases() -> None:
    with pytest.raises(ValueError, match="at least one force"):
        funnel([])
    with pytest.raises(ValueError, match="denominator"):
        funnel([(1, 10), (0, 0)])


def test_a_group_ratio_is_one_where_the_group_is_the_whole() -> None:
    ratio = group_ratio(30, 100, 30, 100)
    assert ratio.value == 1
    assert ratio.interval is not None
    assert ratio.interval.low == pytest.approx(1)
    assert ratio.interval.high == pytest.approx(1)


def test_a_group_ratio_interval_covers_the_true_ratio_about_95_times_in_100() -> None:
    generator = np.random.default_rng(15)
    group, rest, p_group, p_rest = 400, 3_600, 0.25, 0.40
    true = p_group / ((group * p_group + rest * p_rest) / (group + rest))
    covered = 0
    trials = 4_000
    for _ in range(trials):
        events, others = int(generator.binomial(group, p_group)), int(generator.binomial(rest, p_rest))
        interval = group_ratio(events, group, events + others, group + rest).interval
        assert interval is not None
        covered += true in interval
    assert 0.93 < covered / trials < 0.97


def test_a_group_with_no_events_has_a_ratio_of_zero_and_no_interval() -> None:
    ratio = group_ratio(0, 20, 40, 200)
    assert ratio.value == 0
    assert ratio.interval is None


@pytest.mark.parametrize(("group", "whole"), [((5, 10), (4, 100)), ((5, 200), (20, 100)), ((1, 10), (0, 100))])
def test_a_group_ratio_refuses_a_group_that_does_not_fit_its_whole(
        group: tuple[int, int], whole: tuple[int, int]) -> None:
    with pytest.raises(ValueError, match=r"group cannot hold|undefined"):
        group_ratio(*group, *whole)


@pytest.mark.parametrize(("part", "whole", "shown", "fields"), [
    (120, 440, "120 (27%)", ("120", "27.3")), (10, 5_000, "10 (<1%)", ("10", "0.2")),
    (0, 5_000, "0 (0%)", ("0", "0.0")),
    (4_990, 5_000, "4,990 (>99%)", ("4990", "99.8")), (5_000, 5_000, "5,000 (100%)", ("5000", "100.0")),
    (7, 0, "7", ("7", "[x]")), (None, 10, "[c]", ("[c]", "[c]")),
])
def test_a_share_of_some_never_reads_as_none_or_all(part: int | None, whole: int, shown: str,
                                                    fields: tuple[str, str]) -> None:
    """On the page, a share of some but not all never reads as 0% or 100%; in the CSV, the count and the
    share are plain numbers, the share to a tenth of a percent."""
    cell = _share(part, whole)
    assert cell.text == shown
    assert cell.fields == fields
