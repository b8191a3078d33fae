"""A claims file, read and checked before any record is: what each claim expects, fixed before looking.

```yaml
metrics:                       # optional: how a metric reads (label, short: for a column head, unit, scale
                               # applied to the recorded value)
  best_test_err: {label: test error, unit: "%"}
claims:
  - id: 4
    claim: better test likelihood
    primary: {task: image, where: {epochs: 80}, method: manifold, baseline: erm, metric: best_test_nll,
              expect: lower}
    secondary:                 # context, each with its own CI; never decides the verdict
      - {task: spirals, method: manifold, baseline: erm, metric: test_nll, expect: lower}
      - {figure: "a step costs 0.98x", source: results/bench.md, command: "python bench/mixing_overhead.py"}
    note: free text, caveats
  - id: 7
    claim: virtually no extra computation
    not_measured: a benchmark, not a run record   # in place of a primary: the verdict is "not measured"
decidable_within: 8            # optional: an inconclusive claim whose n to decide is larger reads "not decidable
                               # at this scale (needs ~N seeds)"
tasks:                         # optional: the front page's table per task (across.py)
  image: {baseline: erm, metrics: {best_test_err: lower, best_test_nll: lower}, protocols: [{where: {epochs: 80}}]}
```

A comparison: `task`, `method`, `baseline`, `metric`, `expect` (higher | lower), optional `where` ({config key:
value}, dotted keys for nested settings, `dataset` the record's dataset; `method_where` / `baseline_where` add keys
for one side only, where the two ran different protocols), `method_config` / `baseline_config` (a config hash
prefix: only where no setting tells the config apart, e.g. records that predate a setting) and `results` (a folder
under the results folder holding the records, e.g. search/spirals-grid, or a list of them, '.' for the results
folder itself; default the results folder), `protocol` (the protocol in words for the page, in place of the where
settings, e.g. "Lake's protocol"). Every mistake is a
ConfigError (exit 2) that names the claim and the key.
"""
from __future__ import annotations

import difflib
from pathlib import Path

import yaml

from ..errors import ConfigError

COMPARISON_KEYS = {"task", "where", "method", "baseline", "metric", "expect", "results", "method_where",
                   "baseline_where", "method_config", "baseline_config", "protocol"}
REQUIRED = ("task", "method", "baseline", "metric", "expect")
FIGURE_KEYS = {"figure", "source", "command"}
CLAIM_KEYS = {"id", "claim", "primary", "secondary", "note", "not_measured"}
METRIC_KEYS = {"label", "short", "unit", "scale"}
TASK_KEYS = {"baseline", "metrics", "protocols", "summary"}
PROTOCOL_KEYS = {"where", "name", "results"}
EXPECT = ("higher", "lower")
DECIDABLE_WITHIN = 8   # the most seeds more runs may cost before an inconclusive claim reads "not decidable here"


def _unknown(keys, allowed, where: str) -> None:
    for key in sorted(set(keys) - allowed):
        close = difflib.get_close_matches(key, sorted(allowed), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else f"; the keys are {', '.join(sorted(allowed))}"
        raise ConfigError(f"{where}: unknown key {key!r}{hint}")


def _mapping(value, where: str) -> dict:
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: expected a mapping (key: value), got {type(value).__name__} {value!r}")
    return value


def check_comparison(spec, where: str) -> dict:
    spec = _mapping(spec, where)
    _unknown(spec, COMPARISON_KEYS, where)
    missing = [k for k in REQUIRED if k not in spec]
    if missing:
        raise ConfigError(f"{where}: lacks {', '.join(missing)} (a comparison needs {', '.join(REQUIRED)})")
    for key in ("task", "method", "baseline", "metric"):
        if not isinstance(spec[key], str) or not spec[key]:
            raise ConfigError(f"{where}.{key}: expected a name, got {spec[key]!r}")
    if spec["expect"] not in EXPECT:
        raise ConfigError(f"{where}.expect: {spec['expect']!r}; give higher or lower (the direction the claim "
                          "expects of method − baseline)")
    if spec["method"] == spec["baseline"]:
        raise ConfigError(f"{where}: method and baseline are both {spec['method']!r}")
    results = spec.get("results") or []
    results = [results] if isinstance(results, str) else results
    if not isinstance(results, list) or not all(isinstance(r, str) for r in results):
        raise ConfigError(f"{where}.results: a folder under the results folder, or a list of them ('.' for itself)")
    common = dict(_mapping(spec.get("where") or {}, f"{where}.where"))
    sides = {side: {**common, **_mapping(spec.get(f"{side}_where") or {}, f"{where}.{side}_where")}
             for side in ("method", "baseline")}
    for side in ("method", "baseline"):
        pin = spec.get(f"{side}_config")
        if pin is not None and (not isinstance(pin, str) or len(pin) < 4):
            raise ConfigError(f"{where}.{side}_config: a config hash (at least its first 4 characters), got {pin!r}")
    return {**spec, "where": common, "sides": sides, "results": results}


def _secondary(item, where: str) -> dict:
    item = _mapping(item, where)
    if "figure" in item:
        _unknown(item, FIGURE_KEYS, where)
        return {"kind": "figure", **item}
    return {"kind": "comparison", **check_comparison(item, where)}


def check_claims(data, source: str = "claims file") -> dict:
    """The parsed YAML, checked: {"claims": [...], "metrics": {...}, "tasks": {...}}."""
    data = _mapping(data, source)
    _unknown(data, {"claims", "metrics", "tasks", "decidable_within"}, source)
    claims = data.get("claims")
    if not isinstance(claims, list) or not claims:
        raise ConfigError(f"{source}: `claims:` must be a list of claims (id, claim, primary, ...)")
    seen, out = set(), []
    for i, claim in enumerate(claims):
        where = f"{source}: claims[{i}]"
        claim = _mapping(claim, where)
        _unknown(claim, CLAIM_KEYS, where)
        if "id" not in claim or "claim" not in claim:
            raise ConfigError(f"{where}: a claim needs an id and the claim's text (claim: ...)")
        where = f"{source}: claim {claim['id']}"
        if str(claim["id"]) in seen:
            raise ConfigError(f"{where}: the id is used twice")
        seen.add(str(claim["id"]))
        if ("primary" in claim) == ("not_measured" in claim):
            raise ConfigError(f"{where}: give exactly one primary comparison, or not_measured: <the reason> "
                              "where no record can measure it")
        secondary = claim.get("secondary") or []
        if not isinstance(secondary, list):
            raise ConfigError(f"{where}.secondary: expected a list of comparisons")
        out.append({"id": claim["id"], "claim": str(claim["claim"]), "note": str(claim.get("note") or "").strip(),
                    "not_measured": claim.get("not_measured"),
                    "primary": check_comparison(claim["primary"], f"{where}.primary") if "primary" in claim else None,
                    "secondary": [_secondary(s, f"{where}.secondary[{j}]") for j, s in enumerate(secondary)]})
    metrics = {}
    for name, spec in _mapping(data.get("metrics") or {}, f"{source}: metrics").items():
        spec = _mapping(spec, f"{source}: metrics.{name}")
        _unknown(spec, METRIC_KEYS, f"{source}: metrics.{name}")
        metrics[name] = {"label": spec.get("label", name), "short": spec.get("short", ""), "unit": spec.get("unit", ""),
                         "scale": float(spec.get("scale", 1.0))}
    tasks = {}
    for name, spec in _mapping(data.get("tasks") or {}, f"{source}: tasks").items():
        where = f"{source}: tasks.{name}"
        spec = _mapping(spec, where)
        _unknown(spec, TASK_KEYS, where)
        if not spec.get("baseline") or not isinstance(spec.get("metrics"), dict) or not spec["metrics"]:
            raise ConfigError(f"{where}: needs baseline (a method) and metrics ({{metric: higher | lower}}, the "
                              "better direction of each headline metric)")
        for metric, better in spec["metrics"].items():
            if better not in EXPECT:
                raise ConfigError(f"{where}.metrics.{metric}: {better!r}; give higher or lower (which is better)")
        protocols = []
        for j, p in enumerate(spec.get("protocols") or [{}]):
            p = _mapping(p, f"{where}.protocols[{j}]")
            _unknown(p, PROTOCOL_KEYS, f"{where}.protocols[{j}]")
            protocols.append({**p, "where": dict(p.get("where") or {})})
        tasks[name] = {"baseline": spec["baseline"], "metrics": dict(spec["metrics"]), "protocols": protocols,
                       "summary": str(spec.get("summary") or "").strip()}
    within = data.get("decidable_within", DECIDABLE_WITHIN)
    if isinstance(within, bool) or not isinstance(within, int) or within < 3:
        raise ConfigError(f"{source}: decidable_within: {within!r}; give the most seeds (an integer >= 3) that more "
                          "runs may cost before an inconclusive claim reads 'not decidable at this scale'")
    return {"claims": out, "metrics": metrics, "tasks": tasks, "decidable_within": within}


def load_claims(path: str | Path) -> dict:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as e:
        raise ConfigError(f"--claims {path}: cannot be read ({e.strerror or e}); give the path of a claims YAML "
                          "(format: docs/claims.md)") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"--claims {path}: not valid YAML: {e}") from None
    return check_claims(data, str(path))


def metric_format(claims: dict, metric: str) -> dict:
    return claims["metrics"].get(metric, {"label": metric, "short": "", "unit": "", "scale": 1.0})
