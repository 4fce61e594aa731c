"""Publishing comparisons: the small files that re-rendering needs, and the pages
rendered from them, so that `mop-bench report` and `mop-bench leaderboard` work on the
published copy and give the same numbers and verdicts as on the full results.

What a published run keeps, and what stands in for what it leaves out, is described in
report/manifest.py. A comparison keeps comparison.json and its paired tests' cached
draws (filled from the full runs first, so no draw is missing); summaries and pages are
rendered from the copy itself. `scripts/publish_reports.py` is the command line.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mop_bench.report.bootstrap import BootstrapSettings
from mop_bench.report.headline import COMPARISONS, INDEX, comparisons_of
from mop_bench.report.load import RunData, load_run, read_json_file, read_jsonl, resolve_run_paths
from mop_bench.report.manifest import EXCERPT, MANIFEST, PROJECTION
from mop_bench.report.paired import CACHE_DIR

#: Files of a run directory that are published (relative to it), when present.
RUN_FILES = (
    "config.json",
    "metrics.json",
    "timing.json",
    "environment.json",
    "fit_record.json",
    "failed.json",
    "generations.sha256",
    "golden_sample.jsonl",
    "fit/fit.json",
    "fit/personas.json",
)
#: Files listed in published.json with their digest when left out (the others left
#: out, caches and fitted weights, are listed by size only).
DIGESTED = ("generations.jsonl", "embeddings.npz")
#: A published file larger than this stops the publication: the copy is meant to stay
#: small enough to commit (metrics.json of a 300-text run is about 40 KB).
MAX_FILE_BYTES = 512 * 1024


@dataclass
class Published:
    comparisons: list[Path] = field(default_factory=list)
    runs: list[Path] = field(default_factory=list)
    bytes: int = 0


def publish(
    results: Path,
    reports: Path,
    names: list[str] | None = None,
    *,
    bootstrap: BootstrapSettings | None = None,
    samples_per_label: int = 5,
) -> Published:
    """Publish comparisons `names` (default: all) of `results` into `reports/results`,
    render their pages, the leaderboard and the index there, and `reports/index.html`.

    Built in a temporary folder beside `reports/results` and swapped in at the end: a
    failure leaves the previous publication as it was."""
    results, reports = Path(results), Path(reports)
    found = {d.name: (d, meta) for d, meta in comparisons_of(results)}
    names = names or sorted(found)
    unknown = [n for n in names if n not in found]
    if unknown or not names:
        raise ValueError(
            f"{results / COMPARISONS}: no comparison {', '.join(unknown) or '(none found)'} "
            f"(found: {', '.join(sorted(found)) or 'none'})"
        )
    reports.mkdir(parents=True, exist_ok=True)
    tmp = reports / f".results.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    try:
        out = _build(results, tmp, [found[n] for n in names], bootstrap, samples_per_label)
        target = reports / "results"
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    from mop_bench.report.index import render_index

    render_index(target, reports / INDEX)
    out.comparisons = [target / p.relative_to(tmp) for p in out.comparisons]
    out.runs = [target / p.relative_to(tmp) for p in out.runs]
    return out


def _build(
    results: Path,
    dest: Path,
    comparisons: list[tuple[Path, dict[str, Any]]],
    bootstrap: BootstrapSettings | None,
    k: int,
) -> Published:
    from mop_bench.report.comparison import render_comparison
    from mop_bench.report.leaderboard import build_leaderboard
    from mop_bench.report.run import render_run

    out = Published()
    copied: dict[Path, Path] = {}
    for comp_dir, meta in comparisons:
        runs = resolve_run_paths(
            comp_dir, list(meta.get("runs") or []), comp_dir / "comparison.json"
        )
        new_runs = []
        for src in runs:
            rel = _inside(src, results)
            if src not in copied:
                copied[src] = dest / rel
                out.bytes += publish_run(src, dest / rel, samples_per_label=k)
            new_runs.append(os.path.relpath(dest / rel, dest / COMPARISONS / comp_dir.name))
        target = dest / COMPARISONS / comp_dir.name
        target.mkdir(parents=True)
        (target / "comparison.json").write_text(
            json.dumps(meta | {"runs": new_runs}, indent=1, sort_keys=True) + "\n", encoding="utf-8"
        )
        fill_cache(comp_dir, target, meta, bootstrap)
        out.comparisons.append(target)
    out.runs = sorted(copied.values())
    # Comparisons first (summary.json), then the board, then everything again with the
    # links that now exist (run pages quote the summaries; pages link to the board).
    for target in out.comparisons:
        render_comparison(target, render_runs=False, bootstrap=bootstrap)
    build_leaderboard(dest, render_runs=False, bootstrap=bootstrap)
    # The board's own cache repeats the comparisons' entries (it finds them there).
    shutil.rmtree(dest / CACHE_DIR, ignore_errors=True)
    for target in out.comparisons:
        render_comparison(target, render_runs=False, bootstrap=bootstrap)
    for run_dir in out.runs:
        render_run(run_dir, samples_per_label=k)
    out.bytes += sum(
        p.stat().st_size for p in dest.rglob("*") if p.is_file() and p.suffix == ".npz"
    )
    return out


def _inside(path: Path, root: Path) -> Path:
    try:
        return path.resolve().relative_to(root.resolve())
    except ValueError:
        raise ValueError(
            f"{path}: a compared run outside the results folder {root} cannot be published "
            "with its comparison (the relative layout keeps the links working)"
        ) from None


def fill_cache(
    comp_dir: Path, target: Path, meta: dict[str, Any], bootstrap: BootstrapSettings | None
) -> None:
    """Write into `target/paired_cache` every draw the comparison's page needs, from the
    full runs (reusing their cache): the copy has no embeddings to compute them from."""
    from mop_bench.report.aggregate import summarise
    from mop_bench.report.comparison import load_comparable
    from mop_bench.report.normalised import DEFAULT_FLOOR, needs_draws
    from mop_bench.report.paired import analyse

    paths = resolve_run_paths(comp_dir, list(meta.get("runs") or []), comp_dir / "comparison.json")
    kept, _ = load_comparable([load_run(p) for p in paths])
    if not kept:
        return
    group = summarise(kept[0].comparable_key, kept)
    floor = str(meta.get("floor") or DEFAULT_FLOOR)
    read_also = tuple(
        p for p in (comp_dir / CACHE_DIR, comp_dir.parent.parent / CACHE_DIR) if p.is_dir()
    )
    analyse(
        group, target / CACHE_DIR, bootstrap, read_also=read_also, also=needs_draws(group, floor)
    )


# ----------------------------------------------------------------------------- one run


def publish_run(src: Path, dest: Path, *, samples_per_label: int = 5) -> int:
    """Copy the small files of run `src` into `dest` and write the stand-ins for the large
    ones (excerpt, projection, published.json). Returns the bytes written."""
    run = load_run(src)
    dest.mkdir(parents=True)
    written = 0
    for name in RUN_FILES:
        path = src / name
        if not path.is_file():
            continue
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ValueError(
                f"{path}: {size:,} bytes, more than the {MAX_FILE_BYTES:,} a published file "
                "may have"
            )
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        if name == "config.json":
            (dest / name).write_text(_shown_config(run), encoding="utf-8")
        else:
            shutil.copy2(path, dest / name)
        written += (dest / name).stat().st_size
    kept = {n for n in RUN_FILES if (src / n).is_file()}
    manifest: dict[str, Any] = {
        "note": "A published copy of a run: the files listed under 'omitted' were left out "
        "(see mop_bench/report/manifest.py); config.json shows paths as the pages do.",
        "omitted": {},
    }
    for path in sorted(p for p in src.rglob("*") if p.is_file()):
        name = path.relative_to(src).as_posix()
        if name in kept or name == "report.html" or name.startswith("."):
            continue
        entry: dict[str, Any] = {"bytes": path.stat().st_size}
        if name in DIGESTED:
            entry["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
        manifest["omitted"][name] = entry
    gens = src / "generations.jsonl"
    if gens.is_file():
        rows = read_jsonl(gens)
        manifest["omitted"]["generations.jsonl"]["rows"] = len(rows)
        excerpt = excerpt_rows(run, rows, samples_per_label)
        (dest / EXCERPT).write_text(
            "".join(json.dumps(r) + "\n" for r in excerpt), encoding="utf-8"
        )
        written += (dest / EXCERPT).stat().st_size
    emb = src / "embeddings.npz"
    if emb.is_file():
        manifest["omitted"]["embeddings.npz"] |= write_projection(emb, dest / PROJECTION)
        written += (dest / PROJECTION).stat().st_size
    (dest / MANIFEST).write_text(
        json.dumps(manifest, indent=1, sort_keys=True) + "\n", encoding="utf-8"
    )
    return written + (dest / MANIFEST).stat().st_size


def excerpt_rows(run: RunData, rows: list[dict[str, Any]], k: int) -> list[dict[str, Any]]:
    """The generations the run page quotes: the first `k` of each label (report/run.py's
    samples) and the format metric's examples (report/format_view.py)."""
    wanted: set[int] = set()
    for check in ((run.metrics.get("format") or {}).get("details") or {}).values():
        if isinstance(check, dict):
            wanted.update(int(e["index"]) for e in check.get("examples") or [] if "index" in e)
    per_label: dict[str, int] = {}
    out = []
    for row in rows:
        label = json.dumps(row.get("label"))
        take = per_label.get(label, 0) < k
        per_label[label] = per_label.get(label, 0) + take
        if take or row.get("index") in wanted:
            out.append(row)
    return out


def write_projection(embeddings: Path, out: Path) -> dict[str, Any]:
    """The 2-D projection the run page plots, and what published.json records about the
    embeddings: sizes and the golden set's digest, for the paired tests' pairing check."""
    import numpy as np

    from mop_bench.report.paired_inputs import golden_digest
    from mop_bench.report.plots import pca_2d

    with np.load(embeddings, allow_pickle=False) as npz:
        a = {k: npz[k] for k in npz.files}
    pr, ps, ratio = pca_2d(a["real"], a["synth"])
    labels = {k: a[k].astype(np.int16) for k in ("real_labels", "synth_labels") if k in a}
    np.savez_compressed(out, real=pr, synth=ps, ratio=ratio, **labels)
    return {
        "n_real": len(a["real"]),
        "n_synth": len(a["synth"]),
        "golden": golden_digest(a["real"]),
    }


def _shown_config(run: RunData) -> str:
    """config.json with absolute paths written as the pages show them (<data dir>/...):
    a published file should not carry the build machine's folders either."""
    from mop_bench.report.render import shown_path
    from mop_bench.report.run import path_bases

    bases = path_bases(run)

    def walk(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: walk(x) for k, x in v.items()}
        if isinstance(v, list):
            return [walk(x) for x in v]
        return shown_path(v, bases)

    return json.dumps(walk(read_json_file(run.path / "config.json")), indent=1) + "\n"
