"""The single-run report: configuration, metrics, paper numbers, samples and plots."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mop_bench import reference
from mop_bench.report.aggregate import metric_label, metric_order
from mop_bench.report.format_view import format_note, format_view
from mop_bench.report.headline import Headline, facts, nav, run_comparisons
from mop_bench.report.load import REPORT, TIMING, RunData, load_run, read_json_file, read_jsonl
from mop_bench.report.manifest import EXCERPT, left_out_note, omitted
from mop_bench.report.mixture import diagnostics_view, fit_view
from mop_bench.report.render import flatten, fmt_num, relative_link, render_page, show, shown_path
from mop_bench.report.run_plots import cosine_plot, projection
from mop_bench.report.views import reference_view

GENERATIONS = "generations.jsonl"
#: Generation details shown inline next to a synthetic sample (longer ones go in a fold).
_INLINE_DETAIL_CHARS = 80


def render_run(run_dir: Path, *, samples_per_label: int = 5) -> Path:
    """Write `<run_dir>/report.html` and return its path."""
    run_dir = Path(run_dir)
    run = load_run(run_dir)
    context = run_context(run, samples_per_label=samples_per_label)
    return render_page(run_dir / REPORT, "run.html.j2", **context)


def _generations(run: RunData) -> tuple[list[dict[str, Any]] | None, int | None, str]:
    """(rows, how many the run generated, note): generations.jsonl, or in a published
    copy the excerpt of it that the page quotes (report/manifest.py)."""
    gens = _read_optional_jsonl(run.path / GENERATIONS)
    if gens is not None:
        return gens, len(gens), ""
    note = left_out_note(run.path, GENERATIONS)
    if note is None:
        return None, None, ""
    rows = _read_optional_jsonl(run.path / EXCERPT)
    n = (omitted(run.path, GENERATIONS) or {}).get("rows")
    shown = f"; the texts below are the {len(rows)} it quotes ({EXCERPT})" if rows else ""
    return rows, n if isinstance(n, int) else None, note + shown


def _headline(run: RunData, comparisons: list[dict[str, Any]]) -> Headline:
    values = [
        f"{metric_label(m)} {fmt_num(run.value(m))}"
        for m in ("fid", "mauve", "kl_cosine", "heldout_nll")
        if run.value(m) is not None
    ]
    head = Headline(facts([run]) + ([("values", " · ".join(values))] if values else []))
    if not comparisons:
        head.note = (
            "No comparison under this results folder lists this run: paired verdicts come "
            "from a comparison (mop-bench compare), where runs of one seed share contexts."
        )
    return head


def run_context(run: RunData, *, samples_per_label: int = 5) -> dict[str, Any]:
    spec = run.spec
    gens, n_generations, published = _generations(run)
    golden = _read_optional_jsonl(run.path / "golden_sample.jsonl")
    comparisons = run_comparisons(run.path)
    root = run.path.parent.parent
    return {
        "headline": _headline(run, comparisons),
        "comparisons": [
            c | {"href": relative_link(c["page"], run.path)} for c in comparisons if c["rendered"]
        ],
        "nav": nav(
            run.path,
            root,
            [(f"comparison {c['name']}", c["page"]) for c in comparisons if c["rendered"]],
        ),
        "published": published,
        "run": {
            "sim": run.sim,
            "task": run.task,
            "seed": run.seed,
            "fingerprint": run.fingerprint,
            "created": str(run.config.get("created", "")),
            "description": str(spec["simulator"].get("description", "")),
            "n_generations": n_generations,
            # Runs live at <results>/<task>/<sim>-<fingerprint>.
            "path": f"{run.path.parent.name}/{run.path.name}",
        },
        "has_metrics": run.has_metrics,
        "metrics": _metric_rows(run),
        "errors": sorted(run.errors.items()),
        "format_failures": format_view(run, gens),
        "timing": _timing(run),
        "reference": reference_view(
            run.task, highlight=reference.paper_method_for(spec["simulator"])
        ),
        "samples": _samples(run, gens, golden, samples_per_label),
        "cosine_plot": cosine_plot(run),
        "projection": projection(run),
        "per_label": _per_label(run),
        "mop": fit_view(run.path, run.mixture),
        "mixture": diagnostics_view(run),
        "transfer": _paths(_transfer(run), run),
        "spec_sections": [(name, _paths(rows, run)) for name, rows in _spec_sections(spec)],
        "task_card": _paths(flatten(run.config.get("task") or {}), run),
        "data": _paths(flatten(run.config.get("data") or {}), run),
        "environment": _paths(_environment(run.path), run),
    }


def path_bases(run: RunData) -> dict[str, Path]:
    """The folders a shown path is made relative to (render.shown_path)."""
    from mop_bench.paths import data_dir

    bases = {"results": run.path.parent.parent}
    for configured in ((run.spec.get("data") or {}).get("data_dir"), None):
        found = data_dir(configured)
        if found is not None:
            bases.setdefault("data dir", found)
    bases["mop-bench"] = Path(__file__).resolve().parents[2]  # built-in task cards
    return bases


def _paths(rows: list[tuple[str, Any]] | None, run: RunData) -> list[tuple[str, Any]] | None:
    """Rows as shown: absolute paths relative to the data or results folder."""
    if rows is None:
        return None
    bases = path_bases(run)
    return [(k, shown_path(show(v), bases)) for k, v in rows]


#: Pipeline order of timing.json's stages (others follow, sorted).
_STAGES = ("load", "simulate", "embed_and_score", "report")


def _timing(run: RunData) -> dict[str, Any] | None:
    """Seconds per stage summed over every finished invocation of the run (timing.json's
    totals, as the comparison's cost table), beside the latest invocation's.

    The latest alone used to be shown: a re-run that reused the generations ("simulate
    0.039 s") then hid the 314 s the fit and generation took. The totals never shrink.
    """
    totals = run.cost
    latest: dict[str, Any] = {}
    path = run.path / TIMING
    if path.is_file():
        raw = read_json_file(path)
        latest = ((raw.get("latest") if isinstance(raw, dict) else None) or {}).get("seconds") or {}
    stages = {k.removesuffix("_seconds") for k in totals if k.endswith("_seconds")}
    stages.discard("prepare")  # part of simulate: its own row below
    invocations = totals.get("invocations")
    # Older records: timing.json with only its latest entry, or metrics.json's `_timing`.
    for older in (latest, run.timing):
        if not stages and older:
            stages, totals = set(older), {f"{k}_seconds": v for k, v in older.items()}
    if not stages:
        return None
    order = [s for s in _STAGES if s in stages] + sorted(stages - set(_STAGES))
    rows = []
    for stage in order:
        rows.append((stage, totals.get(f"{stage}_seconds"), latest.get(stage)))
        if stage == "simulate" and "prepare_seconds" in totals:
            rows.append(("of which fit + personas", totals["prepare_seconds"], None))
    return {"rows": rows, "invocations": None if invocations is None else int(invocations)}


def _read_optional_jsonl(path: Path) -> list[dict[str, Any]] | None:
    return read_jsonl(path) if path.is_file() else None


def _metric_rows(run: RunData) -> list[dict[str, Any]]:
    rows = []
    for name in metric_order([m for m in run.metrics if m != "per_label"]):
        res = run.metrics[name]
        settings = res.get("settings") or {}
        rows.append(
            {
                "name": name,
                "label": metric_label(name),
                "value": run.value(name),
                "hib": bool(res.get("higher_is_better", False)),
                "spread": run.spread(name),
                "settings": ", ".join(f"{k}={_compact(v)}" for k, v in flatten(settings)),
                "note": _metric_note(name, res.get("details") or {}),
            }
        )
    return rows


_NOTES = {
    "downstream_f1": ("real_pool_f1", "same classifier trained on real pool texts: F1 {}"),
    "label_fidelity": ("golden_accuracy", "classifier accuracy on real golden texts: {}"),
    "mauve": ("mean", "mean over k-means seeds: {}"),
}


def _metric_note(name: str, details: dict[str, Any]) -> str:
    """A calibration number the metric recorded, to read its value against."""
    if name == "format":
        return format_note(details)
    key, text = _NOTES.get(name, ("", ""))
    v = details.get(key) if key else None
    return text.format(f"{v:.3f}") if isinstance(v, int | float) else ""


def _compact(v: Any) -> str:
    text = v if isinstance(v, str) else json.dumps(v, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def _label_name(label: Any, names: list[str]) -> str:
    if label is None or label == -1:
        return "(no label)"
    if isinstance(label, int) and 0 <= label < len(names):
        return names[label]
    return str(label)


def _samples(
    run: RunData,
    gens: list[dict[str, Any]] | None,
    golden: list[dict[str, Any]] | None,
    k: int,
) -> dict[str, Any]:
    """Per label: up to k real and k synthetic texts, side by side."""
    names = run.label_names
    by_label: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for row in golden or []:
        slot = by_label.setdefault(_label_name(row.get("label"), names), {"real": [], "synth": []})
        if len(slot["real"]) < k:
            slot["real"].append(
                {"text": str(row.get("text", "")), "context": str(row.get("context", ""))}
            )
    for row in gens or []:
        slot = by_label.setdefault(_label_name(row.get("label"), names), {"real": [], "synth": []})
        if len(slot["synth"]) < k:
            details = row.get("details") or {}
            short, long = [], []
            for key, v in details.items():
                text = v if isinstance(v, str) else json.dumps(v, indent=1, default=str)
                inline = not isinstance(v, dict | list) and len(text) <= _INLINE_DETAIL_CHARS
                (short if inline else long).append((key, text))
            slot["synth"].append(
                {
                    "text": str(row.get("text", "")),
                    "context": str(row.get("context", "")),
                    "short": short,
                    "long": long,
                }
            )
    order = {n: i for i, n in enumerate(names)}
    labels = sorted(by_label, key=lambda n: (order.get(n, len(order)), n))
    return {
        "labels": [(n, by_label[n]) for n in labels],
        "missing": [
            f
            for f, rows in (("generations.jsonl", gens), ("golden_sample.jsonl", golden))
            if rows is None
        ],
    }


def _per_label(run: RunData) -> dict[str, Any] | None:
    """Per-label numbers: per_label's FID/KL-cosine (details.labels, or label-keyed
    details), label_fidelity's accuracy and downstream_f1's F1 per label."""
    rows: dict[str, dict[str, Any]] = {}
    skipped: list[tuple[str, str]] = []
    res = run.metrics.get("per_label")
    if res is not None:
        details = res.get("details") or {}
        entries = details.get("labels") if isinstance(details.get("labels"), dict) else details
        for label, entry in entries.items():
            if isinstance(entry, dict):
                rows.setdefault(str(label), {}).update(_numbers(entry))
        skipped = [(str(k), str(v)) for k, v in (details.get("skipped") or {}).items()]
    fidelity = (run.metrics.get("label_fidelity") or {}).get("details") or {}
    for label, entry in (fidelity.get("per_label") or {}).items():
        if isinstance(entry, dict) and "accuracy" in entry:
            rows.setdefault(str(label), {})["label_accuracy"] = entry["accuracy"]
    downstream = (run.metrics.get("downstream_f1") or {}).get("details") or {}
    for label, f1 in (downstream.get("per_label_f1") or {}).items():
        rows.setdefault(str(label), {})["downstream_f1"] = f1
    if not rows and not skipped:
        return None
    columns: list[str] = []
    for values in rows.values():
        columns.extend(c for c in values if c not in columns)
    order = {n: i for i, n in enumerate(run.label_names)}
    labels = sorted(rows, key=lambda n: (order.get(n, len(order)), n))
    return {
        "columns": [(c, metric_label(c)) for c in metric_order(columns)],
        "rows": [(n, rows[n]) for n in labels],
        "skipped": skipped,
    }


def _numbers(entry: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, v in entry.items():
        if isinstance(v, dict):
            v = v.get("value")
        if isinstance(v, int | float) and not isinstance(v, bool):
            out[key] = v
    return out


def _transfer(run: RunData) -> list[tuple[str, Any]] | None:
    """Both LMs of a transfer run (gates fitted with one, samples from the other)."""
    source = run.config.get("gates_from")
    if not isinstance(source, dict):
        return None
    lm = run.spec.get("lm") or {}
    fitted = source.get("lm") or {}
    return [
        ("samples generated with", f"{lm.get('model')} ({lm.get('backend')}"
         + (f", {lm['base_url']}" if lm.get("base_url") else "") + ")"),
        ("gates and personas fitted with", f"{fitted.get('model')} ({fitted.get('backend')})"),
        ("source fit", str(source.get("path"))),
        ("source content hash", str(source.get("content_hash"))),
    ]  # fmt: skip


def _spec_sections(spec: dict[str, Any]) -> list[tuple[str, list[tuple[str, Any]]]]:
    sections = []
    scalars = [(k, show(v)) for k, v in spec.items() if not isinstance(v, dict)]
    if scalars:
        sections.append(("run", scalars))
    for key, value in spec.items():
        if isinstance(value, dict):
            sections.append((key, [(k, show(v)) for k, v in flatten(value)]))
    return sections


def _environment(run_dir: Path) -> list[tuple[str, Any]]:
    path = run_dir / "environment.json"
    if not path.is_file():
        return []
    return [(k, show(v)) for k, v in flatten(read_json_file(path))]
