"""The run recipe end to end on a user's CSV with the `real` simulator and a fake
encoder: run directory contents, reuse, resume, overwrite, re-scoring, CLI errors."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from mop_bench import store
from mop_bench.cli import main
from mop_bench.runner import RunOptions, Workspace, build_spec, run

WORDS = {0: "rain storm cold grey wet dark", 1: "sun bright warm happy clear blue"}


class HashEncoder:
    """Deterministic bag-of-words vectors (hashed), unit-norm; counts its calls."""

    identity = "hash-bow-64"
    dim = 64

    def __init__(self) -> None:
        self.encoded = 0

    def encode(self, texts, *, desc: str = "") -> np.ndarray:
        self.encoded += len(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            for w in t.lower().split():
                out[i, int(hashlib.md5(w.encode()).hexdigest(), 16) % self.dim] += 1
        out /= np.linalg.norm(out, axis=1, keepdims=True) + 1e-9
        return out


@pytest.fixture
def user_csv(tmp_path):
    rng = np.random.default_rng(0)
    rows = ["text,label"]
    for i in range(400):
        label = i % 2
        words = [*rng.choice(WORDS[label].split(), size=8).tolist(), f"w{rng.integers(50)}"]
        rows.append(f"{' '.join(words)},{'pos' if label else 'neg'}")
    path = tmp_path / "weather.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def _workspace() -> Workspace:
    ws = Workspace(progress=False)
    enc = HashEncoder()
    ws.encoder = lambda spec: enc  # type: ignore[method-assign]
    ws.fake_encoder = enc  # type: ignore[attr-defined]
    return ws


def _spec(path, **over):
    return build_spec(
        str(path),
        "real",
        preset="smoke",
        overrides={
            "data.data_file": str(path),
            "data.text_column": "text",
            "data.label_column": "label",
            "n": 40,
            "pool": 60,
            "golden": 80,
            "metrics.mauve_seeds": "25",
            **over,
        },
    )


def test_real_run_writes_a_complete_run_directory_and_reuses_it(user_csv, tmp_path):
    ws = _workspace()
    opts = RunOptions(results_dir=tmp_path / "res", progress=False, report=False)
    run_dir = run(_spec(user_csv), opts, ws)
    for name in (
        "config.json",
        "generations.jsonl",
        "metrics.json",
        "environment.json",
        "embeddings.npz",
        "golden_sample.jsonl",
        "timing.json",
    ):
        assert (run_dir / name).is_file(), name
    metrics = store.read_json(run_dir / "metrics.json")
    for key in ("fid", "mauve", "kl_cosine"):
        assert np.isfinite(metrics[key]["value"]) and metrics[key]["settings"] is not None
    gens = store.read_generations(run_dir)
    assert [g.index for g in gens] == list(range(40))
    config = store.read_json(run_dir / "config.json")
    assert config["spec"]["budget"]["n_samples"] == 40 and config["data"]["hash"]
    # Held-out real texts match their intended label's vocabulary.
    for g in gens:
        assert set(g.text.split()) & set(WORDS[g.label].split())

    first = (run_dir / "metrics.json").read_bytes()
    encoded = ws.fake_encoder.encoded
    again = run(_spec(user_csv), opts, ws)
    assert again == run_dir
    assert ws.fake_encoder.encoded == encoded  # nothing re-embedded, nothing re-scored
    assert (run_dir / "metrics.json").read_bytes() == first

    # A fresh process-like workspace reproduces the same scores byte for byte.
    other = run(
        _spec(user_csv),
        RunOptions(results_dir=tmp_path / "res2", progress=False, report=False),
        _workspace(),
    )
    assert (other / "metrics.json").read_bytes() == first
    assert (other / "generations.jsonl").read_bytes() == (
        run_dir / "generations.jsonl"
    ).read_bytes()


def test_changed_settings_get_their_own_directory_and_overwrite_recomputes(user_csv, tmp_path):
    ws = _workspace()
    opts = RunOptions(results_dir=tmp_path / "res", progress=False, report=False)
    a = run(_spec(user_csv), opts, ws)
    b = run(_spec(user_csv, seed=1), opts, ws)
    assert a != b
    (a / "metrics.json").write_text("{}")
    run(
        _spec(user_csv),
        RunOptions(results_dir=tmp_path / "res", progress=False, report=False, overwrite=True),
        ws,
    )
    assert "fid" in store.read_json(a / "metrics.json")


def test_resume_regenerates_only_missing_chunks(user_csv, tmp_path):
    ws = _workspace()
    opts = RunOptions(results_dir=tmp_path / "res", progress=False, report=False)
    spec = _spec(user_csv, **{"budget.chunk_size": 16})
    run_dir = run(spec, opts, ws)
    full = (run_dir / "generations.jsonl").read_bytes()
    lines = full.decode().splitlines(keepends=True)
    # Keep the first chunk and a torn half of the second, as a kill -9 would leave it.
    (run_dir / "generations.jsonl").write_text("".join(lines[:20]) + lines[20][:10])
    (run_dir / "metrics.json").unlink()
    run(spec, opts, ws)
    assert (run_dir / "generations.jsonl").read_bytes() == full
    timing = store.read_json(run_dir / "timing.json")["latest"]["simulate"]
    assert timing["chunks"] == 3 and timing["chunks_generated"] == 2
    # `real` loads no LM: its cost says zero LM tokens, not "unknown".
    totals = store.read_json(run_dir / "timing.json")["totals"]
    assert totals["invocations"] == 2 and totals["lm_generate_tokens"] == 0
    assert totals["lm_score_tokens"] == 0 and "prepare_seconds" in totals


def test_cli_errors_are_one_clear_line(capsys, user_csv):
    assert main(["run", "--task", "yelp", "--sim", "mpo", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "unknown simulator 'mpo'" in err and "did you mean 'mop'" in err
    assert main(["run", "--task", "yelpp", "--sim", "real", "--no-progress", "-q"]) == 2
    assert "did you mean 'yelp'" in capsys.readouterr().err
    assert main(["run", "--task", "x", "--sim", "real", "--set", "fit.epoch=2"]) == 2
    assert "did you mean" in capsys.readouterr().err


def test_rescore_recomputes_from_stored_generations(user_csv, tmp_path):
    from mop_bench.scoring import rescore

    ws = _workspace()
    run_dir = run(
        _spec(user_csv), RunOptions(results_dir=tmp_path / "res", progress=False, report=False), ws
    )
    before = json.loads((run_dir / "metrics.json").read_text())
    after = rescore(run_dir, ws)
    assert after["fid"]["value"] == pytest.approx(before["fid"]["value"])


def test_data_file_without_task_name_and_length_matched_real(user_csv, tmp_path, monkeypatch):
    """`mop-bench run --data FILE --text-column C --label-column L --sim real` needs no
    --task (the task is the file's stem); the calibration texts are cut to the token
    budget by default, and the untruncated row is a setting."""
    from mop_bench import embed

    monkeypatch.setattr(embed, "Encoder", lambda spec=None, **kw: HashEncoder())
    long_csv = tmp_path / "reviews.csv"
    rows = ["body,stars"] + [
        f"{' '.join(['sunny'] * 30) if i % 2 else ' '.join(['rainy'] * 30)} day {i},{i % 2}"
        for i in range(200)
    ]
    long_csv.write_text("\n".join(rows) + "\n")
    base = ["run", "--data", str(long_csv), "--text-column", "body", "--label-column", "stars"]
    base += ["--sim", "real", "--n", "50", "--preset", "smoke", "--set", "max_new_tokens=8"]
    base += ["--set", "pool=60", "--set", "golden=60", "--out", str(tmp_path / "res")]
    assert main([*base, "--no-progress", "-q"]) == 0
    (cut,) = (tmp_path / "res" / "reviews").glob("real-*")
    gens = store.read_generations(cut)
    assert len(gens) == 50
    assert all(g.details["truncated"] and g.details["tokens"] == 8 for g in gens)
    assert all(len(g.text.split()) < 12 for g in gens)
    assert store.read_json(cut / "config.json")["task"]["name"] == "reviews"
    full = [*base, "--set", "simulator.length_matched=false", "--no-progress", "-q"]
    assert main(full) == 0
    other = [d for d in (tmp_path / "res" / "reviews").glob("real-*") if d != cut]
    assert len(other) == 1  # a different fingerprint
    assert all(len(g.text.split()) > 30 for g in store.read_generations(other[0]))


def test_no_task_and_no_data_is_a_one_line_error(capsys):
    assert main(["run", "--sim", "real"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--task" in err and "--data" in err
