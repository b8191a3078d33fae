"""stats.py: the paired statistics every report prints, against scipy and against hand-worked cases."""
import math

import pytest
from scipy import stats as sps

from mixsuite.report.stats import (decided, describe, fmt_ci, fmt_n_to_decide, fmt_p, holm, mark, n_to_decide,
                                   paired)


@pytest.mark.parametrize("a,b", [
    ([0.81, 0.79, 0.85, 0.80, 0.83], [0.78, 0.80, 0.81, 0.76, 0.80]),
    ([1.0, 2.0, 4.0], [0.5, 2.5, 1.0]),
    ([10.0, 11.0], [9.0, 12.5]),
])
def test_mean_ci_and_p_match_scipy_paired_t_test(a, b):
    d = paired(dict(enumerate(a)), dict(enumerate(b)))
    diffs = [x - y for x, y in zip(a, b)]
    n = len(diffs)
    result = sps.ttest_rel(a, b)
    assert d["n"] == n and d["mean"] == pytest.approx(sum(diffs) / n)
    assert d["p"] == pytest.approx(result.pvalue)
    assert d["mean"] / d["se"] == pytest.approx(result.statistic)
    half = sps.t.ppf(0.975, n - 1) * sps.sem(diffs)
    assert (d["ci_low"], d["ci_high"]) == pytest.approx((d["mean"] - half, d["mean"] + half))
    low, high = result.confidence_interval(0.95)
    assert (d["ci_low"], d["ci_high"]) == pytest.approx((low, high))


def test_a_hand_worked_case():
    # d = 1, 2, 3: mean 2, sd 1, SE 1/sqrt(3) = 0.57735; t(0.975, 2) = 4.302653 -> half-width 2.48414
    d = describe([1.0, 2.0, 3.0])
    assert d["sd"] == pytest.approx(1.0) and d["se"] == pytest.approx(0.577350, abs=1e-6)
    assert (d["ci_low"], d["ci_high"]) == pytest.approx((2 - 2.484138, 2 + 2.484138), abs=1e-5)
    # t = 2 / 0.57735 = 3.4641 on 2 df: p = 2 * (1 - F(3.4641)) = 0.0742 (tables: between 0.05 and 0.10)
    assert d["p"] == pytest.approx(0.074180, abs=1e-5)
    assert fmt_ci(d, 2) == "[-0.48, +4.48]" and fmt_p(d["p"]) == "0.07"
    assert (d["above"], d["equal"], d["below"]) == (3, 0, 0)
    assert not decided(d) and mark(d, "max") == ""          # the CI includes zero although every seed is above


def test_two_seeds_never_decide_even_when_the_ci_excludes_zero():
    d = describe([1.0, 1.1])             # CI = 1.05 ± 12.706 * 0.05 = [0.415, 1.685]: excludes zero
    assert d["ci_low"] > 0 and not decided(d) and mark(d, "max") == ""
    assert fmt_n_to_decide(d) == "3"     # the rule's minimum
    three = describe([1.0, 1.1, 1.05])
    assert decided(three) and mark(three, "max") == "▲" and mark(three, "min") == "▼" and fmt_n_to_decide(three) == ""


def test_one_seed_and_constant_differences():
    one = describe([0.5])
    assert math.isnan(one["se"]) and math.isnan(one["p"]) and fmt_ci(one) == "—" and fmt_p(one["p"]) == "—"
    assert fmt_n_to_decide(one) == "—"
    same = describe([0.2, 0.2, 0.2])
    assert same["ci_low"] == same["ci_high"] == pytest.approx(0.2) and same["p"] == 0.0 and decided(same)
    zero = describe([0.0, 0.0, 0.0])
    assert zero["p"] == 1.0 and not decided(zero) and fmt_n_to_decide(zero) == "—"
    with pytest.raises(ValueError, match="share no seed"):
        describe([])
    assert paired({1: 0.1}, {2: 0.2}) is None


def test_n_to_decide_is_the_first_n_whose_t_interval_excludes_the_observed_mean():
    mean, sd = 0.5, 1.0
    n = n_to_decide(mean, sd)
    half = lambda k: sps.t.ppf(0.975, k - 1) * sd / math.sqrt(k)   # noqa: E731
    assert half(n) < mean <= half(n - 1)
    assert n == 18                         # hand check: t(0.975, 17) / sqrt(18) = 2.1098 / 4.2426 = 0.4973 < 0.5
    assert n_to_decide(0.001, 1.0) is None               # about zero: |mean| < sd / 100
    assert n_to_decide(0.3, float("nan")) is None        # no sd from one seed
    assert n_to_decide(-5.0, 1.0) == 3                   # at least the rule's minimum
    assert n_to_decide(0.05, 1.0, cap=1000) is None      # needs ~1,540 seeds: beyond the cap


def test_holm_adjusts_step_down_and_keeps_the_order():
    # sorted 0.01, 0.02, 0.04 of m = 3: 3 * 0.01 = 0.03, 2 * 0.02 = 0.04, 1 * 0.04 = 0.04 (monotone max)
    assert holm([0.04, 0.01, 0.02]) == pytest.approx([0.04, 0.03, 0.04])
    assert holm([0.5, 0.6]) == pytest.approx([1.0, 1.0])   # 2 * 0.5 = 1.0; max(1.0, 0.6) = 1.0
    adjusted = holm([float("nan"), 0.01])
    assert math.isnan(adjusted[0]) and adjusted[1] == pytest.approx(0.01)   # nan is not counted in m
    d = describe([1.0, 1.1, 1.05])
    assert decided(d) and not decided(d, p_adjusted=0.2) and mark(d, "max", p_adjusted=0.2) == ""
