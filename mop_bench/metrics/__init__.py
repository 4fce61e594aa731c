"""The scoring stage: every metric of a run, each with the settings that produced it.

Metrics live in a registry of functions `score(inputs: ScoreInputs) -> MetricResult`,
registered by "module:attr" so nothing heavy is imported until a metric runs. A user
metric is a file: `register_metric("mine", "path/to/my_metric.py:score")`.
"""

from __future__ import annotations

import importlib.util
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from mop_bench.metrics.base import (
    MetricFn,
    MissingLabelsError,
    ScoreInputs,
    check_embeddings,
    check_labels,
)
from mop_bench.registry import Registry
from mop_bench.spec import MetricSpec
from mop_bench.types import MetricResult

__all__ = [
    "BUILTIN_METRICS",
    "METRICS",
    "MetricFn",
    "MissingLabelsError",
    "ScoreInputs",
    "register_metric",
    "score_all",
]

log = logging.getLogger(__name__)

METRICS: Registry[MetricFn] = Registry("metric")

#: Built-in metrics in report order, with the module that implements each.
BUILTIN_METRICS: dict[str, str] = {
    "fid": "mop_bench.metrics.fid:score",
    "mauve": "mop_bench.metrics.mauve:score",
    "kl_cosine": "mop_bench.metrics.kl_cosine:score",
    "copy_rate": "mop_bench.metrics.copy_rate:score",
    "format": "mop_bench.metrics.format_failures:score",
    "downstream_f1": "mop_bench.metrics.downstream:score",
    "label_fidelity": "mop_bench.metrics.label_fidelity:score",
    "per_label": "mop_bench.metrics.per_label:score",
}
for _name, _entry in BUILTIN_METRICS.items():
    METRICS.register(_name, _entry)


def _file_metric(path: Path, attr: str) -> MetricFn:
    """A metric defined in a Python file, imported on its first call."""
    loaded: list[MetricFn] = []

    def run(inputs: ScoreInputs) -> MetricResult:
        if not loaded:
            if not path.is_file():
                raise FileNotFoundError(f"metric file {path} does not exist")
            spec = importlib.util.spec_from_file_location(
                f"mop_bench_user_metric_{path.stem}", path
            )
            if spec is None or spec.loader is None:
                raise ImportError(f"cannot import metric file {path}")
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            if not hasattr(module, attr):
                raise AttributeError(f"metric file {path} defines no {attr!r}")
            loaded.append(getattr(module, attr))
        return loaded[0](inputs)

    run.__name__ = f"{path.name}:{attr}"
    return run


def register_metric(name: str, entry: MetricFn | str, *, replace: bool = False) -> None:
    """Register a metric: a function, a "module:attr" path, or "file.py[:attr]" (attr
    defaults to `score`). The function takes a ScoreInputs and returns a MetricResult."""
    if isinstance(entry, str):
        target, _, attr = entry.partition(":")
        if target.endswith(".py"):
            entry = _file_metric(Path(target).expanduser().resolve(), attr or "score")
        elif not attr:
            raise ValueError(f"metric entry {entry!r}: expected 'module:attr' or 'file.py:attr'")
    METRICS.register(name, entry, replace=replace)


def _validate(
    real: np.ndarray,
    synth: np.ndarray,
    pool: np.ndarray,
    labels: dict[str, np.ndarray | None],
    pool_texts: list[str],
    synth_texts: list[str],
    label_names: tuple[str, ...],
) -> None:
    real = check_embeddings("real", real)
    dim = real.shape[1]
    synth = check_embeddings("synth", synth, dim=dim)
    pool = check_embeddings("pool", pool, dim=dim)
    rows = {"real_labels": real, "synth_labels": synth, "pool_labels": pool}
    for field, arr in labels.items():
        check_labels(field, arr, rows[field].shape[0], len(label_names))
    if len(synth_texts) != synth.shape[0]:
        raise ValueError(
            f"synth_texts has {len(synth_texts)} texts but synth {synth.shape[0]} rows"
        )
    if len(pool_texts) != pool.shape[0]:
        raise ValueError(f"pool_texts has {len(pool_texts)} texts but pool {pool.shape[0]} rows")


def score_all(
    *,
    real: np.ndarray,
    synth: np.ndarray,
    real_labels: np.ndarray | None,
    synth_labels: np.ndarray | None,
    pool: np.ndarray,
    pool_labels: np.ndarray | None,
    pool_texts: list[str],
    synth_texts: list[str],
    label_names: tuple[str, ...],
    spec: MetricSpec,
    seed: int,
    names: list[str] | None = None,
    on_result: Callable[[str, MetricResult | None, str | None], None] | None = None,
    leak_patterns: tuple[str, ...] | None = None,
    synth_details: list[dict[str, Any]] | None = None,
    max_new_tokens: int | None = None,
) -> tuple[dict[str, MetricResult], dict[str, str]]:
    """Score a synthetic set against the golden set with every metric in `names`
    (default: all registered). Returns (results, errors): a metric that raises is
    recorded in errors as "ExceptionType: message", never given a default value.
    Label-dependent metrics record an error when labels are absent. Bad inputs (shapes,
    NaN rows, out-of-range labels) and unknown metric names raise before any scoring.
    `on_result(name, result, error)` is called after each metric (progress, logging).
    `leak_patterns`, `synth_details` and `max_new_tokens` feed the `format` metric (the
    prompt's scaffolding regexes, each text's generation details, the token cap)."""
    chosen = list(names) if names is not None else METRICS.names()
    if names is None:  # built-ins first, in report order; user metrics after
        chosen.sort(
            key=lambda n: (list(BUILTIN_METRICS).index(n) if n in BUILTIN_METRICS else 99, n)
        )
    fns = {name: METRICS.get(name) for name in chosen}  # unknown names fail here, early
    to_array = {
        "real_labels": real_labels,
        "synth_labels": synth_labels,
        "pool_labels": pool_labels,
    }
    labels = {k: None if v is None else np.asarray(v) for k, v in to_array.items()}
    _validate(real, synth, pool, labels, pool_texts, synth_texts, tuple(label_names))
    if synth_details is not None and len(synth_details) != len(synth_texts):
        raise ValueError(
            f"synth_details has {len(synth_details)} entries but synth_texts {len(synth_texts)}"
        )
    inputs = ScoreInputs(
        real=np.asarray(real),
        synth=np.asarray(synth),
        real_labels=labels["real_labels"],
        synth_labels=labels["synth_labels"],
        pool=np.asarray(pool),
        pool_labels=labels["pool_labels"],
        pool_texts=list(pool_texts),
        synth_texts=list(synth_texts),
        label_names=tuple(label_names),
        spec=spec,
        seed=int(seed),
        leak_patterns=None if leak_patterns is None else tuple(leak_patterns),
        synth_details=None if synth_details is None else [dict(d) for d in synth_details],
        max_new_tokens=max_new_tokens,
    )
    from threadpoolctl import threadpool_limits

    results: dict[str, MetricResult] = {}
    errors: dict[str, str] = {}
    for name, fn in fns.items():
        start = time.perf_counter()
        try:
            # Metrics run on modest matrices where a second BLAS thread buys little and,
            # on a shared machine, costs a lot (busy-waiting threads); MAUVE parallelises
            # its k-means seeds itself.
            with threadpool_limits(1):
                result = fn(inputs)
            if not isinstance(result, MetricResult):
                raise TypeError(f"metric returned {type(result).__name__}, not MetricResult")
            if np.isnan(result.value):
                raise ArithmeticError("metric returned NaN")
            results[name] = result
        except Exception as exc:  # recorded per metric: one failure must not sink the rest
            errors[name] = f"{type(exc).__name__}: {exc}"
            log.warning(
                "metric %s failed: %s", name, errors[name], exc_info=log.isEnabledFor(logging.DEBUG)
            )
        else:
            log.info(
                "metric %s = %.4g (%.2fs)", name, results[name].value, time.perf_counter() - start
            )
        if on_result is not None:
            on_result(name, results.get(name), errors.get(name))
    return results, errors
