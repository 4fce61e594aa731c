"""Published copies of runs: what was left out, and the small stand-ins that replace it.

A published run (report/publish.py) keeps the small files (config.json, metrics.json,
timing.json, fit records, the golden sample) and leaves out the large ones
(generations.jsonl, embeddings.npz, the fitted gates and score caches). Its
`published.json` lists each left-out file with its size and SHA-256, so that

* the paired tests find the bootstrap draws cached from the full run (their cache key
  uses the embeddings' digest, report/paired.py) and give the same verdicts;
* the run page shows the texts it showed before (`generations_excerpt.jsonl`: the rows
  it quotes, not the 300 texts) and the 2-D projection (`projection.npz`: the projected
  points, not the 384-dimensional embeddings), and says what is missing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mop_bench.report.load import read_json_file

MANIFEST = "published.json"
EXCERPT = "generations_excerpt.jsonl"
PROJECTION = "projection.npz"


def read_manifest(run_dir: Path) -> dict[str, Any] | None:
    """The run's published.json (None for a full run directory)."""
    path = Path(run_dir) / MANIFEST
    if not path.is_file():
        return None
    data = read_json_file(path)
    if not isinstance(data, dict) or not isinstance(data.get("omitted"), dict):
        raise ValueError(f"{path}: expected an object with an 'omitted' object")
    return data


def omitted(run_dir: Path, name: str) -> dict[str, Any] | None:
    """What published.json records about a left-out file (None: not left out)."""
    manifest = read_manifest(run_dir)
    entry = (manifest or {}).get("omitted", {}).get(name)
    if entry is None:
        return None
    if not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str):
        raise ValueError(f"{Path(run_dir) / MANIFEST}: omitted[{name!r}] needs a sha256")
    return entry


def left_out_note(run_dir: Path, name: str) -> str | None:
    """'generations.jsonl (585 KB) was left out of this published copy', or None."""
    entry = omitted(run_dir, name)
    if entry is None:
        return None
    size = entry.get("bytes")
    kb = f" ({size / 1024:,.0f} KB)" if isinstance(size, int) else ""
    return (
        f"{name}{kb} was left out of this published copy of the run (published.json lists "
        "it with its SHA-256); re-render from the full results folder to see everything"
    )
