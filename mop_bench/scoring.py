"""The embed and score stages: encode real and synthetic texts (cached), compute every
metric, and leave the inputs the report plots (embeddings, a golden sample)."""

from __future__ import annotations

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
from mop_bench.types import Generation

log = logging.getLogger(__name__)


def generations_hash(generations: list[Generation]) -> str:
    h = hashlib.sha256()
    for g in generations:
        h.update(f"{g.index}\x00{g.label}\x00{g.text}\x01".encode())
    return h.hexdigest()[:16]


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
    if path.exists() and not force:
        old = store.read_json(path)
        if old.get("_inputs", {}).get("generations") == gen_hash:
            log.info("%s: metrics up to date", run_dir.name)
            return old
    encoder = workspace.encoder(spec.encoder)
    golden = task_data.golden
    real = encoder.encode([e.text for e in golden], desc="golden set")
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
    )
    out: dict[str, Any] = {name: r.to_json() for name, r in results.items()}
    out["_errors"] = errors
    out["_inputs"] = {
        "generations": gen_hash,
        "n_real": len(golden),
        "n_synth": len(generations),
        "encoder": encoder.identity,
    }
    for name, message in errors.items():
        log.warning("metric %s failed: %s", name, message)
    store.write_json(path, out)
    _write_report_inputs(run_dir, real, synth, golden, generations)
    return out


def _labels_array(labels: list[int | None]) -> np.ndarray | None:
    if all(v is None for v in labels):
        return None
    return np.array([-1 if v is None else int(v) for v in labels], dtype=np.int64)


def _write_report_inputs(run_dir: Path, real, synth, golden, generations) -> None:
    """Embeddings and a golden sample for the report's plots and side-by-side texts."""
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
    for e in golden:
        if per_label.get(e.label, 0) < 10:
            per_label[e.label] = per_label.get(e.label, 0) + 1
            rows.append({"label": e.label, "context": e.context, "text": e.text})
    tmp = run_dir / ".golden_sample.jsonl.tmp"
    tmp.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8"
    )
    os.replace(tmp, run_dir / "golden_sample.jsonl")


def rescore(run_dir: Path, workspace: Any = None) -> dict[str, Any]:
    """`mop-bench score RUN_DIR`: re-score stored generations without generating."""
    config = store.read_json(run_dir / "config.json")
    spec = RunSpec.from_json(config["spec"])
    if workspace is None:
        from mop_bench.runner import Workspace

        workspace = Workspace()
    task_data = workspace.task(spec)
    if task_data.data_hash != config["data"]["hash"]:
        raise ValueError(
            f"{run_dir}: the task data changed since this run (hash {config['data']['hash']} "
            f"then, {task_data.data_hash} now); re-run it instead of re-scoring"
        )
    generations = store.read_generations(run_dir)
    return score_stage(run_dir, spec, task_data, generations, workspace, force=True)
