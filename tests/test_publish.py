"""Published reports can be re-rendered (issue 19, item 6): the publication keeps the
small files re-rendering needs and none of the large ones, and `mop-bench report` and
`mop-bench leaderboard` on it give the numbers and verdicts of the full results."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from test_paired import FAST
from test_report_headline import NAME, headline_best, standard_comparison

from mop_bench.cli import main
from mop_bench.report import render_comparison
from mop_bench.report.paired import CACHE_DIR, _legacy_key, _run_key, analyse
from mop_bench.report.publish import excerpt_rows, publish

FAST_ARGS = ["--bootstrap-draws", str(FAST.draws), "--mauve-draws", str(FAST.mauve_draws), "-q"]


def _tables(comp: Path) -> list[dict]:
    return json.loads((comp / "summary.json").read_text())


def test_a_published_comparison_rerenders_with_the_same_verdicts(tmp_path: Path) -> None:
    results, comp = standard_comparison(tmp_path)
    render_comparison(comp, bootstrap=FAST)
    reports = tmp_path / "reports"
    out = publish(results, reports, bootstrap=FAST)
    pub = reports / "results"
    pub_comp = pub / "comparisons" / NAME
    assert out.comparisons == [pub_comp] and len(out.runs) == 8
    # Small files only: no generations, embeddings, fitted weights or caches of a run.
    names = {p.name for p in pub.rglob("*") if p.is_file()}
    assert not names & {"generations.jsonl", "embeddings.npz", "gates.pt"}
    run = next((pub / "ag_news").glob("mop-[0-9a-f]*"))
    manifest = json.loads((run / "published.json").read_text())
    assert set(manifest["omitted"]) >= {"generations.jsonl", "embeddings.npz"}
    assert len(manifest["omitted"]["embeddings.npz"]["sha256"]) == 64
    assert (run / "generations_excerpt.jsonl").is_file() and (run / "projection.npz").is_file()
    # The copy's numbers are the full results' numbers, verdicts included.
    assert _tables(pub_comp) == _tables(comp)
    before = {p: p.read_bytes() for p in (pub_comp / "summary.json", run / "report.html")}
    # What used to fail with "no config.json": a plain re-render of the published copy.
    assert main(["report", str(pub_comp), *FAST_ARGS]) == 0
    assert {p: p.read_bytes() for p in before} == before
    assert not any((pub_comp / CACHE_DIR).glob(".*tmp"))
    html = (run / "report.html").read_text()
    assert "generations.jsonl (" in html and "was left out of this published copy" in html
    assert "Projection unavailable" not in html  # drawn from projection.npz
    assert main(["leaderboard", str(pub), *FAST_ARGS]) == 0
    index = (reports / "index.html").read_text()
    assert 'href="results/comparisons/planted/comparison.html"' in index
    assert headline_best(index) == headline_best((pub_comp / "comparison.html").read_text())
    # Without the cached draws (other bootstrap settings): no embeddings to draw from, so
    # those pairs are not tested and say why; held-out NLL needs none and is still tested.
    shutil.rmtree(pub_comp / CACHE_DIR)
    shutil.rmtree(pub / CACHE_DIR, ignore_errors=True)
    assert main(["report", str(pub_comp), *FAST_ARGS]) == 0
    paired = [r for r in _tables(pub_comp) if r["table"] == "paired"]
    fid = [r for r in paired if r["metric"] == "fid"]
    assert fid and all(r["verdict"] == "not tested" for r in fid)
    assert all("embeddings.npz was not published" in r["test_note"] for r in fid)
    nll = [r for r in paired if r["metric"] == "heldout_nll" and r["difference"] is not None]
    assert nll and nll == [r for r in _tables(comp) if r in nll]


def test_publication_shows_no_path_of_the_machine_and_fails_safe(tmp_path: Path) -> None:
    results, _ = standard_comparison(tmp_path)
    run = next((results / "ag_news").glob("mop-[0-9a-f]*"))
    config = json.loads((run / "config.json").read_text())
    config["data"]["sources"] = {"train": str(tmp_path / "mirror" / "train.parquet")}
    (run / "config.json").write_text(json.dumps(config))
    reports = tmp_path / "reports"
    publish(results, reports, bootstrap=FAST)
    for path in reports.rglob("*"):
        if path.is_file() and path.suffix in {".json", ".jsonl", ".html", ".csv", ".md"}:
            text = path.read_text()
            assert str(tmp_path) not in text and str(tmp_path.resolve()) not in text, path
    # A bad request leaves the previous publication as it was.
    before = {p: p.read_bytes() for p in reports.rglob("*") if p.is_file()}
    with pytest.raises(ValueError, match="no comparison nope"):
        publish(results, reports, ["nope"], bootstrap=FAST)
    shutil.rmtree(results / "comparisons" / NAME / CACHE_DIR, ignore_errors=True)
    (results / "ag_news" / run.name / "embeddings.npz").write_bytes(b"broken")
    with pytest.raises(ValueError):
        publish(results, reports, bootstrap=FAST)
    assert {p: p.read_bytes() for p in reports.rglob("*") if p.is_file()} == before
    assert not [p for p in reports.iterdir() if p.name.startswith(".results.tmp")]


def test_excerpt_keeps_the_rows_the_page_quotes(tmp_path: Path) -> None:
    from test_report import make_run

    from mop_bench.report.load import load_run, read_jsonl

    run_dir = make_run(tmp_path, "mop")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    metrics["format"] = {
        "value": 0.1,
        "higher_is_better": False,
        "details": {"markup": {"count": 1, "examples": [{"index": 11, "match": "<"}]}},
    }
    (run_dir / "metrics.json").write_text(json.dumps(metrics))
    rows = read_jsonl(run_dir / "generations.jsonl")  # 12 rows, labels 0..3 in turn
    got = [r["index"] for r in excerpt_rows(load_run(run_dir), rows, 2)]
    assert got == [0, 1, 2, 3, 4, 5, 6, 7, 11]


def test_draws_cached_under_the_old_key_are_reused(tmp_path: Path) -> None:
    _, comp = standard_comparison(tmp_path)
    render_comparison(comp, render_runs=False, bootstrap=FAST)
    cache = comp / CACHE_DIR
    from mop_bench.report.aggregate import summarise
    from mop_bench.report.load import load_run

    runs = [load_run(p) for p in sorted((comp.parent.parent / "ag_news").iterdir())]
    for r in runs:  # as an earlier version wrote them
        entry = cache / f"{_run_key(r, FAST)}.npz"
        if entry.is_file():
            entry.rename(cache / f"{_legacy_key(r, FAST)}.npz")
    group = summarise(runs[0].comparable_key, [r for r in runs if r.sim != "real"])
    assert analyse(group, cache, FAST).seconds == {}  # nothing recomputed
    assert all((cache / f"{_run_key(r, FAST)}.npz").is_file() for r in group.runs)
