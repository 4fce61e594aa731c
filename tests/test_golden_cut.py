"""`metrics.golden_cut`: the golden set is cut to the token budget before the sample
metrics see it (as the `real` row and every simulator's text are); the default leaves
earlier fingerprints alone and makes their metrics score again."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from mop_bench import store
from mop_bench.dryrun import state_summary
from mop_bench.estimate import estimate_cost
from mop_bench.lm.loading import load_tokenizer
from mop_bench.run_status import run_state
from mop_bench.runner import RunOptions, run
from mop_bench.token_cut import golden_texts


@pytest.fixture
def weather_csv(tmp_path: Path) -> Path:
    from test_runner import WORDS

    rng = np.random.default_rng(0)
    rows = ["text,label"]
    for i in range(400):
        words = rng.choice(WORDS[i % 2].split(), size=int(rng.integers(3, 30))).tolist()
        rows.append(f"{' '.join(words)} w{i},{'pos' if i % 2 else 'neg'}")
    path = tmp_path / "weather.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def test_golden_texts_are_cut_to_the_budget_or_kept_whole(weather_csv: Path) -> None:
    from test_runner import _spec, _workspace

    spec = _spec(weather_csv, **{"budget.max_new_tokens": 8})
    golden = _workspace().task(spec).golden
    tokenizer = load_tokenizer(spec.lm.model)
    cut = golden_texts(spec, golden)
    lengths = [len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in cut]
    assert max(lengths) <= 8
    whole = [e.text for e in golden]
    assert any(c != w for c, w in zip(cut, whole, strict=True))  # long ones were cut...
    assert all(w.startswith(c) for c, w in zip(cut, whole, strict=True))  # ...at their start
    full = dataclasses.replace(spec, metrics=dataclasses.replace(spec.metrics, golden_cut="full"))
    assert golden_texts(full, golden) == whole


def test_default_keeps_fingerprints_and_full_is_another_run(weather_csv: Path) -> None:
    from test_runner import _spec

    spec = _spec(weather_csv)
    assert spec.metrics.golden_cut == "budget"
    payload = spec.to_json()
    assert "golden_cut" in payload["metrics"]  # recorded in config.json...
    full = dataclasses.replace(spec, metrics=dataclasses.replace(spec.metrics, golden_cut="full"))
    assert full.fingerprint() != spec.fingerprint()  # ...and `full` is another run


def test_a_run_scored_under_other_metric_settings_is_scored_again(
    weather_csv: Path, tmp_path: Path
) -> None:
    from test_runner import _spec, _workspace

    ws = _workspace()
    opts = RunOptions(results_dir=tmp_path / "res", progress=False, report=False)
    spec = _spec(weather_csv, **{"budget.max_new_tokens": 8})
    run_dir = run(spec, opts, ws)
    metrics = store.read_json(run_dir / "metrics.json")
    lines = (run_dir / "golden_sample.jsonl").read_text().splitlines()
    sample = [json.loads(line)["text"] for line in lines]
    tokenizer = load_tokenizer(spec.lm.model)
    assert all(len(tokenizer(t, add_special_tokens=False)["input_ids"]) <= 8 for t in sample)
    # as a run scored before golden_cut existed: other settings, other (whole) golden set
    metrics["_inputs"]["metrics"] = "an older digest"
    metrics["fid"]["value"] = 123.0
    store.write_json(run_dir / "metrics.json", metrics)
    # --dry-run says so before the run does it
    stale = run_state(run_dir, spec)
    assert stale.rescore == ["the metric settings changed since it was scored"]
    assert "its metrics would be computed again" in state_summary(stale)
    assert "computed again" in estimate_cost(spec, ws.task(spec), state=stale).summary()
    encoded = ws.fake_encoder.encoded
    run(spec, opts, ws)
    again = store.read_json(run_dir / "metrics.json")
    assert again["fid"]["value"] != 123.0 and ws.fake_encoder.encoded > encoded
    assert again["_inputs"]["metrics"] != "an older digest"
    fresh = run_state(run_dir, spec)
    assert fresh.rescore == [] and "computed again" not in state_summary(fresh)
    run(spec, opts, ws)  # now up to date: not scored a third time
    assert store.read_json(run_dir / "metrics.json") == again
    # a metric missing from an older metrics.json is named too
    del again["format"]
    store.write_json(run_dir / "metrics.json", again)
    assert run_state(run_dir, spec).rescore == ["metric(s) format are new since"]


def test_the_estimate_looks_up_the_golden_texts_the_metrics_will_encode(
    weather_csv: Path,
) -> None:
    from test_runner import _spec, _workspace

    spec = _spec(weather_csv, **{"budget.max_new_tokens": 8})
    task = _workspace().task(spec)
    cut = golden_texts(spec, task.golden)
    assert cut != [e.text for e in task.golden]  # some texts are longer than the budget

    class CachedCut:  # an encoder whose cache holds exactly the cut golden texts
        def cached_count(self, texts: list[str]) -> int:
            return sum(t in set(cut) for t in texts)

    work = {w.stage: w for w in estimate_cost(spec, task, encoder=CachedCut()).items}
    assert work["encoding"].note.startswith(f"{len(set(cut)):,} of the ")


def test_without_the_tokenizer_on_disk_the_estimate_writes_nothing_and_counts_golden_as_new(
    weather_csv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from test_runner import _spec, _workspace

    spec = _spec(weather_csv, **{"budget.max_new_tokens": 8})
    task = _workspace().task(spec)
    monkeypatch.setenv("MOP_BENCH_CACHE", str(tmp_path / "cache"))  # an empty cache

    class CachedAll:
        def cached_count(self, texts: list[str]) -> int:
            return len(texts)

    work = {w.stage: w for w in estimate_cost(spec, task, encoder=CachedAll()).items}
    pool = len({e.text for e in task.pool})
    assert work["encoding"].note == f"{pool:,} of the {pool + len(task.golden):,} real texts cached"
    assert not (tmp_path / "cache").exists()
