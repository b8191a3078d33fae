"""Numbers as a reader takes them in: a value in its metric's unit with 3 significant digits (`35.1 %`, `0.982`),
a difference with its 95 % CI to the precision the CI supports (2 significant digits of its half-width).

A metric's unit is declared once, in a claims file's `metrics:` map (claims_file.py): `unit` (text after the number,
e.g. "%") and `scale` (what the recorded value is multiplied by first: 100 for a fraction shown in percent).
A difference of percentages is in points ("pt").
"""
from __future__ import annotations

import math


def sig(x: float, digits: int = 3) -> str:
    """3 significant digits, no exponent for everyday magnitudes: 0.98 -> '0.980', 35.14 -> '35.1', 1234 -> '1,234'."""
    if not math.isfinite(x):
        return "—"
    if x == 0:
        return "0"
    if abs(x) >= 10 ** digits:
        return f"{x:,.0f}"
    if abs(x) < 1e-4:
        return f"{x:.{digits - 1}e}"
    x = float(f"{x:.{digits}g}")   # 9.9996 -> 10.0, so its digits are counted after rounding
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(x))))
    return f"{x:.{decimals}f}"


def value(x: float, unit: str = "", scale: float = 1.0) -> str:
    """'35.1 %', '0.982'."""
    text = sig(x * scale)
    return f"{text} {unit}" if unit and text != "—" else text


def delta_unit(unit: str) -> str:
    return "pt" if unit == "%" else unit


def _decimals(d: dict, scale: float) -> int:
    half = (d["ci_high"] - d["mean"]) * scale if math.isfinite(d["ci_high"]) else float("nan")
    if math.isfinite(half) and half > 0:
        return max(0, 1 - math.floor(math.log10(half)))
    return 3   # a CI of zero width: every difference the same


def delta(d: dict, unit: str = "", scale: float = 1.0) -> str:
    """'+2.07 pt', the paired mean difference."""
    u = delta_unit(unit)
    if math.isfinite(d["ci_high"]):
        text = f"{d['mean'] * scale:+.{_decimals(d, scale)}f}"
    else:   # one seed: no CI to set the precision
        text = ("-" if d["mean"] < 0 else "+") + sig(abs(d["mean"] * scale))
    return text + (f" {u}" if u else "")


def ci(d: dict, unit: str = "", scale: float = 1.0) -> str:
    """'[+1.93, +2.21]' or '—' (one seed)."""
    if not math.isfinite(d["ci_low"]):
        return "—"
    k = _decimals(d, scale)
    return f"[{d['ci_low'] * scale:+.{k}f}, {d['ci_high'] * scale:+.{k}f}]"
