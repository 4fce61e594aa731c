"""Generated reports in headless Chromium: no script errors, visible tables and plots,
and planted hostile text shown as text, never run."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from mop_bench.report import build_leaderboard, render_run

# The fake run directories are built by test_report's helpers.
sys.path.insert(0, str(Path(__file__).parent))

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="/usr/bin/chromium not installed (apt-get install chromium)"
    ),
]


@pytest.fixture(scope="module")
def browser() -> Any:
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


def _open(browser: Any, path: Path) -> tuple[Any, list[str], list[str]]:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    problems: list[str] = []
    dialogs: list[str] = []
    page.on(
        "console",
        lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None,
    )
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))

    def on_dialog(d: Any) -> None:
        dialogs.append(d.message)
        d.dismiss()

    page.on("dialog", on_dialog)
    page.goto(path.resolve().as_uri())
    page.wait_for_load_state("load")
    return page, problems, dialogs


def _visible_boxes(page: Any, selector: str) -> int:
    n = 0
    for el in page.query_selector_all(selector):
        box = el.bounding_box()
        if box and box["width"] > 0 and box["height"] > 0:
            n += 1
    return n


def test_run_report_in_browser(browser: Any, tmp_path: Path) -> None:
    from test_report import SCRIPT, make_run

    run = make_run(tmp_path, "mop")
    page, problems, dialogs = _open(browser, render_run(run))
    assert problems == []
    assert dialogs == []
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert page.evaluate("document.querySelectorAll('script').length") == 0
    assert page.evaluate("document.querySelectorAll('img[src=x]').length") == 0
    assert SCRIPT in page.inner_text("body")  # the planted markup is visible as text
    assert _visible_boxes(page, "table") >= 5
    # histogram, projection and fit curve; details folds are closed so images count only open ones
    assert _visible_boxes(page, "figure img") == 3
    widths = page.evaluate("[...document.querySelectorAll('figure img')].map(i => i.naturalWidth)")
    assert all(w > 100 for w in widths)  # the SVGs decoded, not broken-image icons
    page.close()


def test_leaderboard_in_browser(browser: Any, tmp_path: Path) -> None:
    from test_report import make_comparison

    make_comparison(tmp_path)
    page, problems, dialogs = _open(browser, build_leaderboard(tmp_path))
    assert problems == [] and dialogs == []
    assert _visible_boxes(page, "table") >= 3
    text = page.inner_text("body")
    assert "Ranked separately from group 1" in text
    # a run link leads to a rendered report that also loads cleanly
    href = page.get_attribute("td a[href$='report.html']", "href")
    assert href is not None
    page.close()
    page2, problems2, _ = _open(browser, (tmp_path / href))
    assert problems2 == []
    assert page2.evaluate("typeof window.__pwned") == "undefined"
    page2.close()


def _headline_verdicts(page: Any) -> dict[str, tuple[set[str], str]]:
    """The first headline line per metric: (the simulators it names best, its text)."""
    items = page.evaluate(
        "[...document.querySelectorAll('section.headline li[data-metric]')]"
        ".map(li => [li.dataset.metric, li.dataset.best, li.innerText])"
    )
    out: dict[str, tuple[set[str], str]] = {}
    for metric, best, text in items:
        out.setdefault(metric, (set(best.split("|")) - {""}, text))
    return out


def test_pages_open_with_the_summarys_verdicts_in_browser(browser: Any, tmp_path: Path) -> None:
    """Leaderboard, comparison, run page and index: no console error, a headline in the
    first screen, and per metric the simulators summary.json ranks first, by name."""
    import json

    from test_paired import FAST
    from test_report_headline import best_by_summary, standard_comparison

    from mop_bench.report import render_comparison

    results, comp = standard_comparison(tmp_path)
    render_comparison(comp, bootstrap=FAST)
    build_leaderboard(results, render_runs=False, bootstrap=FAST)
    want = best_by_summary(comp)
    assert want  # the paired metrics of the planted design
    rows = json.loads((comp / "summary.json").read_text())
    tie = next(
        r
        for r in rows
        if r["table"] == "paired"
        and r["metric"] == "fid"
        and {r["simulator"], r["versus"]} == {"mop", "mop-no-exemplars"}
    )
    run = next((results / "ag_news").glob("mop-[0-9a-f]*"))
    pages = [
        results / "leaderboard.html",
        comp / "comparison.html",
        run / "report.html",
        results / "index.html",
    ]
    for path in pages:
        page, problems, dialogs = _open(browser, path)
        assert problems == [] and dialogs == [], path.name
        box = page.query_selector("section.headline").bounding_box()
        assert box is not None and box["y"] < 900, path.name  # in the first screen
        got = _headline_verdicts(page)
        assert {m: best for m, (best, _) in got.items()} == want, path.name
        for metric, (best, text) in got.items():
            assert all(name in text for name in best), (path.name, metric, text)
        assert f"p_Holm = {tie['p_holm']:.3f}" in got["fid"][1]  # the tied pair's own test
        widths = page.evaluate("[...document.querySelectorAll('img')].map(i => i.naturalWidth)")
        assert all(w > 100 for w in widths), path.name
        page.close()
