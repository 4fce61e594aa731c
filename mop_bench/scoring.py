"""The embed and score stages: encode real and synthetic texts (cached), compute every
metric, and leave the inputs the report plots (embeddings, a golden sample)."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from mop_bench import store
from mop_bench.spec import RunSpec
from mop_bench.types import Generation, MetricResult

#: Written by the simulate stage (runner.HELDOUT): the held-out likelihood of the fit.
HELDOUT = "heldout.json"

log = logging.getLogger(__name__)


def generations_hash(generations: list[Generation]) -> str:
    h = hashlib.sha256()
    for g in generations:
        h.update(f"{g.index}\x00{g.label}\x00{g.text}\x01".encode())
    return h.hexdigest()[:16]


def metric_settings_digest(spec: RunSpec) -> str:
    """The digest of the run's metric settings that metrics.json records (`_inputs.metrics`)."""
    return digest(dataclasses.asdict(spec.metrics))


def absent_metrics(old: dict[str, Any]) -> list[str]:
    """Built-in metrics a scored run lacks (added since it was scored, e.g. `format`)."""
    from mop_bench.metrics import BUILTIN_METRICS

    return [m for m in BUILTIN_METRICS if m not in old and m not in old.get("_errors", {})]


def rescore_reasons(run_dir: Path, spec: RunSpec) -> list[str]:
    """Why a scored run's metrics would be computed again under `spec`, judged from its
    metrics.json and the settings alone (what `score_stage` also checks on the
    generations and the fit's files is left to it): for `--dry-run`."""
    try:
        old = store.read_json(run_dir / "metrics.json")
    except (OSError, ValueError):
        return ["its metrics.json is unreadable"]
    reasons = []
    if old.get("_inputs", {}).get("metrics") != metric_settings_digest(spec):
        reasons.append("the metric settings changed since it was scored")
    absent = absent_metrics(old)
    if absent:
        reasons.append(f"metric(s) {', '.join(absent)} are new since")
    return reasons


def score_stage(
    run_dir: Path,
    spec: RunSpec,
    task_data,
    generations: list[Generation],
    workspace: Any,
    *,
    force: bool = False,
) -> dict[str, Any]:
    """Embed real and synthetic texts (cached) and compute every metric."""
    from mop_bench.metrics import score_all

    path = run_dir / "metrics.json"
    gen_hash = generations_hash(generations)
    heldout = _read_optional(run_dir / HELDOUT)
    fit = _read_optional(run_dir / "fit" / "fit.json")
    side_inputs = {
        "heldout": None if heldout is None else digest(heldout),
        "fit": None if fit is None else digest(fit.get("diagnostics")),
        # a changed metric setting (e.g. metrics.golden_cut's default) scores again
        "metrics": metric_settings_digest(spec),
    }
    if path.exists() and not force:
        old = store.read_json(path)
        seen = old.get("_inputs", {})
        # A built-in metric added since the run was scored (e.g. `format`) must not be
        # missing from its tables: score again (embeddings come from the cache).
        absent = absent_metrics(old)
        if (
            seen.get("generations") == gen_hash
            and all(seen.get(k) == v for k, v in side_inputs.items())
            and not absent
        ):
            log.info("%s: metrics up to date", run_dir.name)
            return old
        if absent:
            log.info("%s: scoring again for metric(s) %s", run_dir.name, ", ".join(absent))
    from mop_bench.token_cut import golden_texts

    encoder = workspace.encoder(spec.encoder)
    golden = task_data.golden
    golden_seen = golden_texts(spec, golden)  # cut to the budget (metrics.golden_cut)
    real = encoder.encode(golden_seen, desc="golden set")
    synth = encoder.encode([g.text for g in generations], desc="synthetic set")
    pool = encoder.encode([e.text for e in task_data.pool], desc="pool")
    labels = _labels_array
    results, errors = score_all(
        real=real,
        synth=synth,
        real_labels=labels([e.label for e in golden]),
        synth_labels=labels([g.label for g in generations]),
        pool=pool,
        pool_labels=labels([e.label for e in task_data.pool]),
        pool_texts=[e.text for e in task_data.pool],
        synth_texts=[g.text for g in generations],
        label_names=tuple(task_data.card.label_names),
        spec=spec.metrics,
        seed=spec.seed,
        leak_patterns=prompt_leak_patterns(spec, task_data.card),
        synth_details=[g.details for g in generations],
        max_new_tokens=spec.budget.max_new_tokens,
    )
    out: dict[str, Any] = {name: r.to_json() for name, r in results.items()}
    if heldout is not None and "unavailable" in heldout:
        errors["heldout_nll"] = f"not available: {heldout['unavailable']}"
    elif heldout is not None:
        out["heldout_nll"] = heldout_result(heldout, spec).to_json()
    if spec.simulator.kind == "mop":
        out["mixture"] = mixture_entry(spec, fit, heldout, generations)
        if out["mixture"]["collapsed"]:
            log.warning(
                "%s: the mixture has COLLAPSED: %s",
                run_dir.name,
                "; ".join(out["mixture"]["reasons"]),
            )
    out["_errors"] = errors
    out["_inputs"] = {
        "generations": gen_hash,
        "n_real": len(golden),
        "n_synth": len(generations),
        "encoder": encoder.identity,
        **side_inputs,
    }
    for name, message in errors.items():
        log.warning("metric %s failed: %s", name, message)
    store.write_json(path, out)
    _write_report_inputs(run_dir, real, synth, golden, golden_seen, generations)
    return out


def prompt_leak_patterns(spec: RunSpec, card: Any) -> tuple[str, ...]:
    """The regexes of the run's prompt scaffolding (tags, the card's completion header,
    the persona line) that the `format` metric looks for in every text, the `real`
    calibration's included (real texts must not match them)."""
    from mop_bench.mop.prompts import CardPrompt, leak_patterns

    card_prompt = CardPrompt(card.request_template, getattr(card, "completion_header", None))
    return leak_patterns(spec.prompt, card_prompt)


def _read_optional(path: Path) -> dict[str, Any] | None:
    return store.read_json(path) if path.is_file() else None


def digest(obj: Any) -> str:
    blob = json.dumps(obj, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def heldout_result(heldout: dict[str, Any], spec: RunSpec) -> MetricResult:
    """`heldout_nll` as a metric: nats per token of golden responses under the
    simulator's fitted model (lower is better), with every per-example estimate."""
    return MetricResult(
        name="heldout_nll",
        value=float(heldout["value"]),
        settings={
            "n": spec.metrics.heldout_n,
            "samples": spec.metrics.heldout_samples,
            "block": spec.metrics.heldout_block,
            "max_tokens": spec.fit.score_max_tokens,
            "estimator": heldout["estimator"],
            "seed": spec.seed,
        },
        details={
            "rows": heldout["rows"],
            "n_tokens": heldout["n_tokens"],
            "lm_scorings": heldout.get("lm_scorings"),
            "taus": heldout.get("taus"),
        },
        higher_is_better=False,
    )


def mixture_entry(
    spec: RunSpec,
    fit: dict[str, Any] | None,
    heldout: dict[str, Any] | None,
    generations: list[Generation],
) -> dict[str, Any]:
    """metrics.json's `mixture`: the fit's gate diagnostics (training and held-out
    contexts), what the samples drew, the personas' sources, and the collapse verdict."""
    from mop_bench.mop.diagnostics import generation_diagnostics, verdict

    sim = spec.simulator
    gen = generation_diagnostics([g.to_json() for g in generations])
    fit_diag = (fit or {}).get("diagnostics")
    personas = (fit or {}).get("personas") or []
    sources: dict[str, int] = {}
    for p in personas:
        sources[p.get("source", "?")] = sources.get(p.get("source", "?"), 0) + 1
    gated = sim.exemplars == "gated"
    n_personas = len(personas) if sim.personas != "none" else 1
    return {
        "fit": fit_diag,
        "heldout_gates": (heldout or {}).get("gates"),
        "generation": gen,
        "persona_sources": sources,
        **verdict(fit_diag, gen, gated=gated, personas=n_personas),
    }


def _labels_array(labels: list[int | None]) -> np.ndarray | None:
    if all(v is None for v in labels):
        return None
    return np.array([-1 if v is None else int(v) for v in labels], dtype=np.int64)


def _write_report_inputs(run_dir: Path, real, synth, golden, golden_seen, generations) -> None:
    """Embeddings and a golden sample (its texts as the metrics saw them) for the
    report's plots and side-by-side texts."""
    buf = io.BytesIO()
    np.savez_compressed(
        buf,
        real=real.astype(np.float32),
        synth=synth.astype(np.float32),
        real_labels=np.array([-1 if e.label is None else e.label for e in golden]),
        synth_labels=np.array([-1 if g.label is None else g.label for g in generations]),
    )
    tmp = run_dir / ".embeddings.npz.tmp"
    tmp.write_bytes(buf.getvalue())
    os.replace(tmp, run_dir / "embeddings.npz")
    per_label: dict[Any, int] = {}
    rows = []
    for e, text in zip(golden, golden_seen, strict=True):
        if per_label.get(e.label, 0) < 10:
            per_label[e.label] = per_label.get(e.label, 0) + 1
            rows.append({"label": e.label, "context": e.context, "text": text})
    tmp = run_dir / ".golden_sample.jsonl.tmp"
    tmp.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8"
    )
    os.replace(tmp, run_dir / "golden_sample.jsonl")


def rescore(run_dir: Path, workspace: Any = None) -> dict[str, Any]:
    """`mop-bench score RUN_DIR`: re-score stored generations without generating."""
    config = store.read_json(run_dir / "config.json")
    spec = RunSpec.from_json(config["spec"])
    # Indices 0..n-1 once each, and the bytes recorded at generation: a deleted or
    # duplicated line must stop here, before metrics.json is overwritten.
    generations = store.read_generations(run_dir, n=spec.budget.n_samples)
    if not (run_dir / store.GENERATIONS_SHA).is_file():
        log.warning(
            "%s: no hash was recorded at generation (an older run); only the indices were checked",
            run_dir,
        )
    if workspace is None:
        from mop_bench.workspace import Workspace

        workspace = Workspace()
    task_data = workspace.task(spec)
    if task_data.data_hash != config["data"]["hash"]:
        raise ValueError(
            f"{run_dir}: the task data changed since this run (hash {config['data']['hash']} "
            f"then, {task_data.data_hash} now); re-run it instead of re-scoring"
        )
    return score_stage(run_dir, spec, task_data, generations, workspace, force=True)
