"""Scoring anyone's own generations (issue 18): `mop-bench contexts` writes the run's
requests, `mop-bench run --generations FILE` scores texts made for them elsewhere.

A user CSV and a hashed bag-of-words encoder (as in test_runner.py): no LM and no real
encoder is loaded."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from test_runner import WORDS, HashEncoder

from mop_bench import store
from mop_bench.cli import main
from mop_bench.external import (
    HELDOUT_UNAVAILABLE,
    ExternalFileError,
    external_spec,
    read_external,
    run_external,
)
from mop_bench.runner import RunOptions, Workspace, build_spec, run

N = 64  # the smoke preset's sample count
SETTINGS = {"pool": 60, "golden": 80, "metrics.mauve_seeds": "25"}


@pytest.fixture
def weather_csv(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    rows = ["text,label"]
    for i in range(400):
        label = i % 2
        words = [*rng.choice(WORDS[label].split(), size=8).tolist(), f"w{rng.integers(50)}"]
        rows.append(f"{' '.join(words)},{'pos' if label else 'neg'}")
    path = tmp_path / "weather.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def _overrides(csv: Path) -> dict[str, object]:
    return {
        "data.data_file": str(csv),
        "data.text_column": "text",
        "data.label_column": "label",
        **SETTINGS,
    }


def _cli_data(csv: Path) -> list[str]:
    args = ["--data", str(csv), "--text-column", "text", "--label-column", "label"]
    args += ["--preset", "smoke"]
    for key, value in SETTINGS.items():
        args += ["--set", f"{key}={value}"]
    return args


def _workspace() -> Workspace:
    ws = Workspace(progress=False)
    enc = HashEncoder()
    ws.encoder = lambda spec: enc  # type: ignore[method-assign]
    ws.fake_encoder = enc  # type: ignore[attr-defined]
    return ws


def _contexts(csv: Path, tmp_path: Path) -> list[dict]:
    out = tmp_path / "contexts.jsonl"
    assert main(["contexts", *_cli_data(csv), "--out", str(out), "-q"]) == 0
    return [json.loads(line) for line in out.read_text().splitlines()]


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _texts(contexts: list[dict], salt: str = "") -> list[dict]:
    """One text per context in its label's vocabulary, as a researcher's system might."""
    rng = np.random.default_rng(1)
    rows = []
    for c in contexts:
        words = rng.choice(WORDS[c["label"]].split(), size=7).tolist()
        rows.append({"index": c["index"], "text": " ".join(words) + salt, "system": "mine"})
    return rows


def _spec(csv: Path, name: str = "mine"):
    return external_spec(str(csv), name=name, preset="smoke", overrides=_overrides(csv))


def _opts(tmp_path: Path) -> RunOptions:
    return RunOptions(results_dir=tmp_path / "res", progress=False, report=False)


def test_contexts_round_trip_and_match_the_runners_draw(weather_csv, tmp_path):
    contexts = _contexts(weather_csv, tmp_path)
    assert [c["index"] for c in contexts] == list(range(N))
    assert {c["label_name"] for c in contexts} == {"neg", "pos"}
    assert all(c["context"] and isinstance(c["fields"], dict) for c in contexts)
    # The runner's own draw for the same task, preset and seed: the `real` calibration.
    spec = build_spec(str(weather_csv), "real", preset="smoke", overrides=_overrides(weather_csv))
    real = run(spec, _opts(tmp_path), _workspace())
    gens = store.read_generations(real)
    assert [g.label for g in gens] == [c["label"] for c in contexts]
    assert [g.context for g in gens] == [c["context"] for c in contexts]
    # The contexts file, with a text added to each line, is itself a valid generations file.
    echoed = [c | {"text": "sun warm"} for c in contexts]
    src = read_external(
        _write(tmp_path / "echo.jsonl", echoed),
        _runner_contexts(weather_csv),
        ("neg", "pos"),
    )
    assert [g.label for g in src.generations] == [c["label"] for c in contexts]
    assert "context" not in src.generations[0].details  # echoed keys are not copied


def _runner_contexts(csv: Path):
    from mop_bench.external import contexts_for

    spec = _spec(csv)
    return contexts_for(spec, _workspace().task(spec))


def test_an_external_file_scores_like_a_run_and_is_reused(weather_csv, tmp_path):
    contexts = _contexts(weather_csv, tmp_path)
    gens_file = _write(tmp_path / "gens.jsonl", _texts(contexts))
    ws = _workspace()
    run_dir = run_external(_spec(weather_csv), gens_file, _opts(tmp_path), ws)
    assert run_dir.parent.name == "weather" and run_dir.name.startswith("mine-")
    metrics = store.read_json(run_dir / "metrics.json")
    for key in ("fid", "mauve", "kl_cosine", "format", "copy_rate", "label_fidelity"):
        assert math.isfinite(metrics[key]["value"]), key
    # No simulator model: held-out NLL is recorded as unavailable, never as a number.
    assert "heldout_nll" not in metrics
    assert metrics["_errors"]["heldout_nll"] == f"not available: {HELDOUT_UNAVAILABLE}"
    config = store.read_json(run_dir / "config.json")
    sha = store.file_sha256(gens_file)
    assert config["external"] == {
        "file": "gens.jsonl",
        "sha256": sha,
        "bytes": gens_file.stat().st_size,
        "rows": N,
    }
    assert config["spec"]["simulator"]["kind"] == "external"
    # The harness's own format, with the contexts' texts and labels and the extra keys.
    rows = store.read_generations(run_dir, n=N)
    assert [g.label for g in rows] == [c["label"] for c in contexts]
    assert rows[5].context == contexts[5]["context"]
    assert rows[5].details == {"system": "mine", "external_line": 6}

    # The same file again: same directory, nothing re-encoded or re-scored.
    first = (run_dir / "metrics.json").read_bytes()
    encoded = ws.fake_encoder.encoded
    assert run_external(_spec(weather_csv), gens_file, _opts(tmp_path), ws) == run_dir
    assert ws.fake_encoder.encoded == encoded
    assert (run_dir / "metrics.json").read_bytes() == first
    # Another file (one character differs) under the same name: its own directory.
    other = _write(tmp_path / "gens2.jsonl", _texts(contexts, salt=" x"))
    assert run_external(_spec(weather_csv), other, _opts(tmp_path), ws) != run_dir
    # `mop-bench score` re-scores it like any run.
    from mop_bench.scoring import rescore

    assert rescore(run_dir, ws)["fid"]["value"] == pytest.approx(
        store.read_json(run_dir / "metrics.json")["fid"]["value"]
    )


def _damaged(rows: list[dict], how: str) -> tuple[list, str]:
    rows = [dict(r) for r in rows]
    if how == "missing":
        del rows[12]
        return rows, f"gens.jsonl: index 12 is missing ({N} contexts need indices 0..{N - 1})"
    if how == "duplicate":
        rows[20]["index"] = 3
        return rows, "gens.jsonl line 21: index 3 appears twice (first on line 4)"
    if how == "out_of_range":
        rows[6]["index"] = 70
        return rows, f"gens.jsonl line 7: index 70 is out of range 0..{N - 1}"
    if how == "not_integer":
        rows[2]["index"] = "2"
        return rows, "gens.jsonl line 3: index must be an integer, got '2'"
    if how == "not_string":
        rows[9]["text"] = ["a", "list"]
        return rows, "gens.jsonl line 10: text must be a string, got list"
    if how == "wrong_label":
        rows[4]["label"] = 1 - rows[4]["label"]
        return rows, "gens.jsonl line 5: label"
    if how == "not_json":
        return [*rows[:7], "{index: 7"], "gens.jsonl line 8: not JSON"
    raise AssertionError(how)


@pytest.mark.parametrize(
    "how",
    [
        "missing",
        "duplicate",
        "out_of_range",
        "not_integer",
        "not_string",
        "wrong_label",
        "not_json",
    ],
)
def test_a_damaged_file_is_refused_before_anything_is_written(
    weather_csv, tmp_path, monkeypatch, how
):
    monkeypatch.chdir(tmp_path)  # the file is named as the user typed it
    contexts = _contexts(weather_csv, tmp_path)
    good = [r | {"label": c["label"]} for r, c in zip(_texts(contexts), contexts, strict=True)]
    rows, message = _damaged(good, how)
    path = tmp_path / "gens.jsonl"
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    with pytest.raises(ExternalFileError) as err:
        run_external(_spec(weather_csv), Path("gens.jsonl"), _opts(tmp_path), _workspace())
    text = str(err.value)
    assert text.startswith(message) and "\n" not in text
    assert not (tmp_path / "res").exists()  # no run directory, no metrics


def test_the_cli_refuses_with_one_line_and_exit_code_2(weather_csv, tmp_path, capsys, monkeypatch):
    from mop_bench import embed

    monkeypatch.setattr(embed, "Encoder", lambda spec=None, **kw: HashEncoder())
    monkeypatch.chdir(tmp_path)
    contexts = _contexts(weather_csv, tmp_path)
    rows = _texts(contexts)
    rows[6]["index"] = 70
    _write(tmp_path / "gens.jsonl", rows)
    base = ["run", *_cli_data(weather_csv), "--out", str(tmp_path / "res"), "--no-progress"]
    capsys.readouterr()
    assert main([*base, "--generations", "gens.jsonl", "-q"]) == 2
    err = capsys.readouterr().err
    assert err == "mop-bench: error: gens.jsonl line 7: index 70 is out of range 0..63\n"
    assert not list((tmp_path).rglob("metrics.json"))
    # --sim and --generations exclude each other; `run` needs one of them.
    assert main([*base, "--sim", "real", "--generations", "gens.jsonl", "-q"]) == 2
    assert "exclude each other" in capsys.readouterr().err
    assert main([*base, "-q"]) == 2
    assert "--generations" in capsys.readouterr().err
    # A bundled simulator's name would be mixed with that simulator in reports.
    rows[6]["index"] = 6
    _write(tmp_path / "gens.jsonl", rows)
    assert main([*base, "--generations", "gens.jsonl", "--name", "mop", "-q"]) == 2
    assert "bundled simulator" in capsys.readouterr().err
    # The repaired file scores through the CLI, report included.
    assert main([*base, "--generations", "gens.jsonl", "--name", "my system", "-q"]) == 0
    out = capsys.readouterr().out
    assert "fid=" in out and "mauve=" in out
    (run_dir,) = (tmp_path / "res" / "weather").glob("my_system-*")
    assert (run_dir / "report.html").is_file() and (run_dir / "metrics.json").is_file()
    assert main(["report", str(run_dir), "-q"]) == 0
