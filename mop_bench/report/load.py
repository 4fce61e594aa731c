"""Reading run, comparison and sweep directories (read-only; the runner writes them).

Every error names the file (and line or field) that is wrong, because a report is
often rendered long after, and far from, the run that produced the directory.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mop_bench.store import FAILED, incomplete_reason, timing_totals

CONFIG = "config.json"
METRICS = "metrics.json"
REPORT = "report.html"
TIMING = "timing.json"


@dataclass
class RunData:
    """The parts of a run directory that every report needs (small files only)."""

    path: Path
    config: dict[str, Any]
    metrics: dict[str, dict[str, Any]]
    """MetricResult JSON objects by metric name (without the `_errors`/`_timing` entries)."""
    errors: dict[str, str] = field(default_factory=dict)
    timing: dict[str, float] = field(default_factory=dict)
    has_metrics: bool = True
    cost: dict[str, float] = field(default_factory=dict)
    """Work summed over every finished invocation (timing.json; see store.timing_totals)."""
    mixture: dict[str, Any] | None = None
    """metrics.json's `mixture` entry (MoP-family runs): gate and sample diagnostics."""

    @property
    def spec(self) -> dict[str, Any]:
        return self.config["spec"]

    @property
    def sim(self) -> str:
        return str(self.spec["simulator"]["name"])

    @property
    def is_calibration(self) -> bool:
        return self.spec["simulator"].get("kind") == "real"

    @property
    def seed(self) -> int:
        return int(self.spec.get("seed", 0))

    @property
    def task(self) -> str:
        card = self.config.get("task") or {}
        return str(card.get("name") or self.spec["task"])

    @property
    def fingerprint(self) -> str:
        return str(self.config.get("fingerprint") or self.path.name)

    @property
    def label_names(self) -> list[str]:
        return [str(x) for x in (self.config.get("task") or {}).get("label_names") or []]

    @property
    def comparable_key(self) -> dict[str, Any]:
        key = self.config.get("comparable_key")
        if key is None:  # older runs: derive it the way the runner does
            from mop_bench.spec import RunSpec

            key = RunSpec.from_json(self.spec).comparable_key()
        return key

    def value(self, metric: str) -> float | None:
        """The metric's value, or None when absent, failed or not finite."""
        res = self.metrics.get(metric)
        if not isinstance(res, dict) or res.get("value") is None:
            return None
        try:
            val = float(res["value"])
        except (TypeError, ValueError):
            return None
        return val if math.isfinite(val) else None

    def spread(self, metric: str) -> float | None:
        """Spread (max - min) over the metric's internal seeds, e.g. MAUVE's k-means."""
        res = self.metrics.get(metric)
        return None if not isinstance(res, dict) else metric_spread(res)


def metric_spread(result: dict[str, Any]) -> float | None:
    """MAUVE-style spread from a MetricResult: details['spread'], else max - min of the
    per-seed values (details['per_seed'] as a list or a seed->value mapping)."""
    details = result.get("details") or {}
    spread = details.get("spread")
    if isinstance(spread, int | float) and math.isfinite(spread):
        return float(spread)
    for key in ("per_seed", "values", "seed_values"):
        vals = details.get(key)
        if isinstance(vals, dict):
            vals = list(vals.values())
        if isinstance(vals, list) and len(vals) > 1:
            nums = [float(v) for v in vals if isinstance(v, int | float)]
            if len(nums) > 1:
                return max(nums) - min(nums)
    return None


def read_json_file(path: Path) -> Any:
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: file not found") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: invalid JSON at line {exc.lineno}: {exc.msg}") from exc


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}: line {n}: invalid JSON: {exc.msg}") from exc
            if not isinstance(row, dict):
                raise ValueError(f"{path}: line {n}: expected a JSON object")
            rows.append(row)
    return rows


def load_run(run_dir: Path) -> RunData:
    """Read config.json and metrics.json (the latter may be missing for unfinished runs)."""
    run_dir = Path(run_dir)
    if not (run_dir / CONFIG).is_file():
        raise FileNotFoundError(f"{run_dir}: not a run directory (no {CONFIG})")
    config = read_json_file(run_dir / CONFIG)
    spec = config.get("spec") if isinstance(config, dict) else None
    if not isinstance(spec, dict) or not isinstance(spec.get("simulator"), dict):
        raise ValueError(f"{run_dir / CONFIG}: field 'spec' (with 'simulator') is missing")
    if "name" not in spec["simulator"]:
        raise ValueError(f"{run_dir / CONFIG}: field 'spec.simulator.name' is missing")
    cost = read_cost(run_dir)
    mpath = run_dir / METRICS
    if not mpath.is_file() or (run_dir / FAILED).is_file():  # failed: its metrics are stale
        return RunData(run_dir, config, {}, has_metrics=False, cost=cost)
    raw = read_json_file(mpath)
    if not isinstance(raw, dict):
        raise ValueError(f"{mpath}: expected a JSON object of metric results")
    errors = raw.get("_errors") or {}
    timing = raw.get("_timing") or {}
    metrics: dict[str, dict[str, Any]] = {}
    mixture = raw.get("mixture")
    if mixture is not None and not isinstance(mixture, dict):
        raise ValueError(f"{mpath}: field 'mixture' must be an object of diagnostics")
    for name, res in raw.items():
        if name.startswith("_") or name == "mixture":
            continue
        if not isinstance(res, dict) or "value" not in res:
            raise ValueError(f"{mpath}: field {name!r} is not a metric result (needs 'value')")
        metrics[name] = res
    return RunData(run_dir, config, metrics, dict(errors), dict(timing), cost=cost, mixture=mixture)


def read_cost(run_dir: Path) -> dict[str, float]:
    """timing.json's `totals` (summed from its history for runs written before totals)."""
    path = run_dir / TIMING
    if not path.is_file():
        return {}
    raw = read_json_file(path)
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected a JSON object")
    totals = raw.get("totals")
    if isinstance(totals, dict):
        return {k: float(v) for k, v in totals.items() if isinstance(v, int | float)}
    history = raw.get("history") or []
    if not isinstance(history, list) or not all(isinstance(e, dict) for e in history):
        raise ValueError(f"{path}: field 'history' must be a list of objects")
    return timing_totals(history)


def find_run_dirs(root: Path, *, incomplete: bool = False) -> list[Path]:
    """Every complete run directory under `root` (inclusive): config.json and
    metrics.json, no failed.json. With `incomplete`, the other run directories."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        if CONFIG in filenames and (incomplete_reason(Path(dirpath)) is not None) == incomplete:
            out.append(Path(dirpath))
    return out


def resolve_run_paths(base: Path, paths: list[Any], source: Path) -> list[Path]:
    """Run paths listed in comparison.json/sweep.json: absolute, or relative to `base`.

    A path relative to the current directory is accepted too (the compare command may
    have written paths as typed), preferring the one that exists.
    """
    out: list[Path] = []
    for p in paths:
        if not isinstance(p, str):
            raise ValueError(f"{source}: run path {p!r} is not a string")
        cand = Path(p)
        options = (
            [cand] if cand.is_absolute() else [base / cand, Path.cwd() / cand, base / cand.name]
        )
        found = next((o for o in options if (o / CONFIG).is_file()), None)
        if found is None:
            raise FileNotFoundError(f"{source}: run directory {p!r} not found (looked in {base})")
        out.append(found.resolve())
    return out


def key_diff(key: dict[str, Any], ref: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted paths where `key` differs from `ref`, as 'path: value (vs ref)'."""
    out: list[str] = []
    for name in sorted(set(key) | set(ref)):
        a, b = key.get(name), ref.get(name)
        path = f"{prefix}{name}"
        if isinstance(a, dict) and isinstance(b, dict):
            out.extend(key_diff(a, b, path + "."))
        elif a != b:
            out.append(f"{path}: {_short(a)} (vs {_short(b)})")
    return out


def _short(v: Any) -> str:
    text = json.dumps(v, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def key_id(key: dict[str, Any]) -> str:
    return json.dumps(key, sort_keys=True, default=str)
