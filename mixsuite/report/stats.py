"""The statistics of every paired comparison in mixsuite's reports, in one place.

A comparison is paired by seed: d_i = method_i − baseline_i on the n seeds both ran. From the differences:

  mean Δ, sd (sample, n − 1), SE = sd / √n, the 95 % confidence interval mean ± t_{0.975, n−1} · SE (Student's t
  with n − 1 degrees of freedom), the two-sided p of the paired t-test (scipy.stats), and the seeds on which the
  method is above / equal to / below the baseline.

A difference counts (▲ better / ▼ worse in the metric's direction) only where n ≥ 3 and the 95 % CI excludes zero
(with Holm's correction on: where the Holm-adjusted p is below 0.05). With n = 2 the t interval has one degree of
freedom (t = 12.7) and a "2 SE" difference is p ≈ 0.30; two seeds decide nothing.

"n to decide": for a comparison not yet decided, the smallest n ≥ 3 (the rule's minimum) for which
t_{0.975, n−1} · sd / √n < |mean|, taking the observed mean and sd as if they were the true ones. It is a planning figure, not a power calculation (a study
sized by it succeeds about half the time when the observed effect is the true one); None ("—") where n < 2 (no sd)
or the mean is about zero (|mean| < sd / 100: more than 38,000 seeds).

scipy is imported when a p or a t quantile is first needed, never torch.
"""
from __future__ import annotations

import functools
import math
import statistics

LEVEL = 0.95
MIN_N_FOR_A_VERDICT = 3
N_TO_DECIDE_CAP = 100_000


@functools.lru_cache(maxsize=None)
def t_quantile(df: float, level: float = LEVEL) -> float:
    """t_{(1 + level) / 2, df}: the half-width of the `level` CI in standard errors (df may be Welch's fraction)."""
    from scipy import stats

    return float(stats.t.ppf((1 + level) / 2, df))


def describe(diffs: list[float], seeds: list | None = None) -> dict:
    """The paired statistics of the per-seed differences `diffs` (method − baseline).

    {"seeds", "diffs", "n", "mean", "sd", "se", "ci_low", "ci_high", "p", "above", "equal", "below", "z"}; with one
    difference sd, se, the CI and p are nan. With every difference equal (sd 0) the CI is the point and p is 0
    (or 1 when they are all zero): the t statistic is infinite (or undefined), scipy would answer nan.
    """
    n = len(diffs)
    if n == 0:
        raise ValueError("no paired differences: the two sides share no seed")
    mean = statistics.fmean(diffs)
    nan = float("nan")
    sd = statistics.stdev(diffs) if n > 1 else nan
    se = sd / math.sqrt(n) if n > 1 else nan
    if n < 2:
        low = high = p = nan
    elif sd == 0:
        low = high = mean
        p = 1.0 if mean == 0 else 0.0
    else:
        half = t_quantile(n - 1) * se
        low, high = mean - half, mean + half
        p = two_sided_p(mean / se, n - 1)
    return {"seeds": list(seeds) if seeds is not None else list(range(n)), "diffs": list(diffs), "n": n,
            "mean": mean, "sd": sd, "se": se, "ci_low": low, "ci_high": high, "p": p,
            "z": mean / se if se and math.isfinite(se) and se > 0 else nan,
            "above": sum(x > 0 for x in diffs), "equal": sum(x == 0 for x in diffs),
            "below": sum(x < 0 for x in diffs)}


def two_sided_p(t: float, df: float) -> float:
    from scipy import stats

    return float(2 * stats.t.sf(abs(t), df))


def paired(values: dict, base: dict) -> dict | None:
    """{seed: value} of a method against its baseline's on the seeds both have; None when they share none."""
    seeds = sorted(set(values) & set(base))
    if not seeds:
        return None
    return describe([values[s] - base[s] for s in seeds], seeds)


def unpaired(mean: float, sd: float, n: int, ref_mean: float, ref_sd: float | None = None,
             ref_n: int | None = None) -> dict:
    """Our n runs (mean, sample sd) against a published mean, which has no seeds to pair with: Welch's t.

    Δ = mean − ref_mean, SE = sqrt(sd²/n + ref_sd²/ref_n), df by Welch–Satterthwaite; where the reference gives no
    spread (no sd or no n) only our own SE counts and df = n − 1 (a one-sample t against a fixed number).
    {"n", "mean", "se", "df", "ci_low", "ci_high", "p"}; with n < 2 the SE, CI and p are nan.
    """
    nan = float("nan")
    delta = mean - ref_mean
    ours = sd ** 2 / n if n > 1 else nan
    theirs = ref_sd ** 2 / ref_n if ref_sd is not None and ref_n and ref_n > 1 else 0.0
    se = math.sqrt(ours + theirs) if n > 1 else nan
    if not (math.isfinite(se) and se > 0):
        return {"n": n, "mean": delta, "se": se, "df": nan, "ci_low": nan, "ci_high": nan, "p": nan}
    df = (ours + theirs) ** 2 / (ours ** 2 / (n - 1) + (theirs ** 2 / (ref_n - 1) if theirs else 0.0))
    half = t_quantile(df) * se
    return {"n": n, "mean": delta, "se": se, "df": df, "ci_low": delta - half, "ci_high": delta + half,
            "p": two_sided_p(delta / se, df)}


def excludes_zero(d: dict) -> bool:
    return math.isfinite(d["ci_low"]) and (d["ci_low"] > 0 or d["ci_high"] < 0)


def decided(d: dict, p_adjusted: float | None = None) -> bool:
    """n ≥ 3 and the 95 % CI excludes zero (or, under a correction, its adjusted p < 1 − LEVEL)."""
    if d["n"] < MIN_N_FOR_A_VERDICT:
        return False
    if p_adjusted is not None:
        return p_adjusted < 1 - LEVEL
    return excludes_zero(d)


def mark(d: dict | None, mode: str, p_adjusted: float | None = None) -> str:
    """"▲" (better in the direction `mode`, "max" or "min"), "▼" (worse) where `decided`, else ""."""
    if d is None or not decided(d, p_adjusted):
        return ""
    return "▲" if (d["mean"] > 0) == (mode == "max") else "▼"


def holm(pvalues: list[float]) -> list[float]:
    """Holm's step-down adjusted p-values (same order as given; nan stays nan and is not counted):
    the k-th smallest of m becomes max over j ≤ k of min(1, (m − j + 1) · p_(j))."""
    order = sorted((p, i) for i, p in enumerate(pvalues) if math.isfinite(p))
    m = len(order)
    out = [float("nan")] * len(pvalues)
    running = 0.0
    for rank, (p, i) in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p))
        out[i] = running
    return out


def n_to_decide(mean: float, sd: float, cap: int = N_TO_DECIDE_CAP) -> int | None:
    """The smallest n ≥ 3 (MIN_N_FOR_A_VERDICT) with t_{0.975, n−1} · sd / √n < |mean| (the observed mean and sd
    taken as true); None where sd is unknown (n < 2) or the mean is about zero (|mean| < sd / 100), or beyond `cap`."""
    if not (math.isfinite(mean) and math.isfinite(sd)) or mean == 0 or abs(mean) < sd / 100:
        return None
    if sd == 0:
        return MIN_N_FOR_A_VERDICT

    def enough(n: int) -> bool:
        return t_quantile(n - 1) * sd / math.sqrt(n) < abs(mean)

    if not enough(cap):
        return None
    low, high = MIN_N_FOR_A_VERDICT, cap          # the half-width falls with n: bisect for the first n that is enough
    while low < high:
        middle = (low + high) // 2
        if enough(middle):
            high = middle
        else:
            low = middle + 1
    return low


# --- text -----------------------------------------------------------------------------------------------------

def fmt_p(p: float) -> str:
    """"0.031", "< 0.001", "—" (undefined: n < 2)."""
    if not math.isfinite(p):
        return "—"
    if p < 0.001:
        return "< 0.001"
    return f"{p:.2g}" if p < 0.01 else f"{p:.2f}"


def fmt_ci(d: dict, digits: int = 4, scale: float = 1.0) -> str:
    """"[-0.1234, +0.5678]" or "—" where n < 2."""
    if not math.isfinite(d["ci_low"]):
        return "—"
    return f"[{d['ci_low'] * scale:+.{digits}f}, {d['ci_high'] * scale:+.{digits}f}]"


def fmt_se(d: dict, digits: int = 4, scale: float = 1.0) -> str:
    """" ± 0.0123" or "" where n < 2."""
    return f" ± {d['se'] * scale:.{digits}f}" if math.isfinite(d["se"]) else ""


def fmt_n_to_decide(d: dict) -> str:
    """"" where the comparison is decided (n ≥ 3, CI excludes zero), "—" where it cannot be said, else the n
    (or "> cap")."""
    if decided(d):
        return ""
    n = n_to_decide(d["mean"], d["sd"])
    if n is None:
        if d["n"] >= 2 and math.isfinite(d["sd"]) and d["mean"] != 0 and abs(d["mean"]) >= d["sd"] / 100:
            return f"> {N_TO_DECIDE_CAP:,}"
        return "—"
    return str(n)


def fmt_counts(d: dict) -> str:
    return f"{d['above']} / {d['equal']} / {d['below']}"
