"""What pages show beside the numbers: the stage times of the work that was done, and
no path of the machine that built them (issue 19, items 4 and 5)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from test_report import FAST, make_comparison, make_run

from mop_bench.report import build_leaderboard, render_comparison, render_run
from mop_bench.store import timing_totals


def _entry(simulate: float, *, generated: int, prepare: float | None = None) -> dict:
    record: dict = {"chunks": 5, "chunks_generated": generated}
    if prepare is not None:
        record |= {"prepare_seconds": prepare, "lm": {"generate_tokens": 9000}}
    return {
        "at": "2026-12-01T00:00:00+00:00",
        "seconds": {"load": 2.0, "simulate": simulate, "embed_and_score": 20.0, "report": 1.0},
        "simulate": record,
    }


def test_run_page_shows_the_time_of_the_work_not_the_last_rerender(tmp_path: Path) -> None:
    run = make_run(tmp_path, "mop")
    # The run that fitted and generated, then a re-run that reused everything.
    history = [_entry(314.0, generated=5, prepare=250.0), _entry(0.039, generated=0)]
    timing = {"latest": history[-1], "totals": timing_totals(history), "history": history}
    (run / "timing.json").write_text(json.dumps(timing))
    html = render_run(run).read_text()
    section = html[html.index("Time per stage") :]
    section = section[: section.index("</details>")]
    assert "all 2 invocation(s)" in section
    assert '<td class="mono">simulate</td><td class="num">314.039</td>' in section
    assert 'of which fit + personas</td><td class="num">250.000' in section
    assert "0.039" in section  # the latest invocation's, in its own column


def test_pages_show_no_absolute_path_of_the_machine(tmp_path: Path, monkeypatch) -> None:
    results = tmp_path / "results"
    data = tmp_path / "mirrors"
    monkeypatch.setenv("MOP_BENCH_DATA_DIR", str(data))
    results.mkdir()
    comp = make_comparison(results)
    run = next((comp / "ag_news").glob("mop-[0-9a-f]*"))
    config = json.loads((run / "config.json").read_text())
    config["task"]["source"] = str(tmp_path / "cards" / "ag_news.yaml")
    config["data"]["sources"] = {"train": str(data / "ag_news" / "train.parquet")}
    config["spec"]["data"]["data_dir"] = str(data)
    config["gates_from"] = {"path": str(results / "ag_news" / "mop-source"), "lm": {}}
    (run / "config.json").write_text(json.dumps(config))
    # The same run copied elsewhere under the results: listed as a duplicate.
    shutil.copytree(run, results / "copy" / "ag_news" / run.name)
    pages = [
        render_run(run),
        render_comparison(comp, render_runs=False, bootstrap=FAST),
        build_leaderboard(results, render_runs=False, bootstrap=FAST),
    ]
    for page in pages:
        html = page.read_text()
        for absolute in {str(tmp_path), str(tmp_path.resolve())}:
            assert absolute not in html, f"{page.name} shows {absolute}"
    run_html = pages[0].read_text()
    assert "&lt;data dir&gt;/ag_news/train.parquet" in run_html  # still says which file
    assert "…/cards/ag_news.yaml" in run_html
    assert f"&lt;results&gt;/ag_news/{run.name}" in run_html
    board = pages[2].read_text()
    assert "scored runs under this folder" in board
    assert f"copy/ag_news/{run.name}" in board  # the duplicate, relative to the results
