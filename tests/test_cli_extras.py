"""Issue 19, items 9, 11 and 13: `--dry-run` and the estimate line, data files as their
bytes say (byte-order marks, `;`-separated CSV, file lines in messages, no URLs as
data), quiet logs, and `ls settings | metrics | runs`.

Runs use a fake LM backend and a hashed bag-of-words encoder, as tests/test_run_identity.py.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mop_bench import embed
from mop_bench.cli import main
from mop_bench.data import load_task, resolve_task
from mop_bench.data._read import DataError
from mop_bench.estimate import REFERENCE_RATES, estimate_cost
from mop_bench.lm.registry import LM_BACKENDS
from mop_bench.overrides import field_paths
from mop_bench.rates import recorded_rates
from mop_bench.run_status import run_state
from mop_bench.runner import build_spec
from mop_bench.spec import DataSpec
from mop_bench.workspace import Workspace
from tests.fake_lm import FakeLM
from tests.test_runner import HashEncoder

ROOT = Path(__file__).resolve().parents[1]
WORDS = {0: "rain storm cold grey wet dark", 1: "sun bright warm happy clear blue"}


@pytest.fixture(autouse=True)
def fakes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(embed, "Encoder", lambda spec=None, **kw: HashEncoder())
    LM_BACKENDS.register("fake", lambda spec, **kw: FakeLM(name="fake"), replace=True)
    monkeypatch.setenv("MOP_BENCH_CACHE", str(tmp_path / "cache"))


def _csv(path: Path, n: int = 240) -> Path:
    rng = np.random.default_rng(0)
    rows = ["text,label"]
    for i in range(n):
        words = [*rng.choice(WORDS[i % 2].split(), size=8).tolist(), f"w{rng.integers(50)}"]
        rows.append(f"{' '.join(words)},{'pos' if i % 2 else 'neg'}")
    path.write_text("\n".join(rows) + "\n")
    return path


def _args(data: Path, out: Path, *extra: str, command: str = "run", sim: str = "mop") -> list[str]:
    sims = ["--sims", sim] if command == "compare" else ["--sim", sim]
    return [
        command, "--task", "toy", *sims, "--preset", "smoke",
        "--data", str(data), "--text-column", "text", "--label-column", "label",
        "--backend", "fake", "--n", "16",
        "--set", "budget.chunk_size=8", "--set", "pool=60", "--set", "golden=80",
        "--set", "personas=2", "--set", "fit.n_train=8", "--set", "fit.epochs=1",
        "--set", "metrics.mauve_seeds=25", "--set", "fit.train_batch_size=8",
        "--set", "metrics.heldout_n=10",
        "--out", str(out), "--no-progress", "-q", *extra,
    ]  # fmt: skip


# ------------------------------------------------------------------ item 9: --dry-run


def test_dry_run_prints_an_estimate_and_creates_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_lm(spec, **kw):
        raise AssertionError("--dry-run loaded the LM")

    data = _csv(tmp_path / "toy.csv")
    before = sorted(tmp_path.iterdir())
    LM_BACKENDS.register("fake", no_lm, replace=True)
    out = tmp_path / "res"
    assert main(_args(data, out, "--dry-run")) == 0, capsys.readouterr().err
    text = capsys.readouterr().out
    assert sorted(tmp_path.iterdir()) == before  # no results folder, no cache
    assert "does not exist yet" in text and "rates assumed" in text and "estimate" in text
    # generation: 16 texts x the smoke preset's 48 new tokens; the fit: 8 training
    # examples x min(1 epoch x 4 candidates, 2 personas x 30 pool texts per label) pairs;
    # held-out: 10 examples x min(4 draws, the pairs)
    assert "768 new tokens" in text and "16 texts x <= 48 new tokens" in text
    assert "8 examples x <= 4 pairs" in text and "10 examples x 4 pair(s)" in text
    fingerprint = next(ln.split()[1] for ln in text.splitlines() if ln.startswith("fingerprint"))

    # The real run lands where the dry run said, and a second dry run finds it done.
    LM_BACKENDS.register("fake", lambda spec, **kw: FakeLM(name="fake"), replace=True)
    assert main(_args(data, out)) == 0, capsys.readouterr().err
    run_dir = Path(capsys.readouterr().out.split()[0])
    assert run_dir.name == f"mop-{fingerprint}" and str(run_dir) in text
    LM_BACKENDS.register("fake", no_lm, replace=True)
    assert main(_args(data, out, "--dry-run")) == 0
    again = capsys.readouterr().out
    assert "exists and is scored" in again and "nothing to compute" in again

    # compare: one line per run, and a total
    assert main(_args(data, out, "--dry-run", command="compare", sim="mop,real")) == 0
    many = capsys.readouterr().out
    assert "2 runs:" in many and "[scored]" in many and "[new]" in many and "total:" in many
    assert not (out / "comparisons").exists()


def test_dry_run_refuses_generations_and_explains_an_oversized_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _csv(tmp_path / "toy.csv")
    args = _args(data, tmp_path / "res", "--dry-run", sim="real")
    args[args.index("--n") + 1] = "10000000"
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "would refuse to start without --yes" in text and "no LM tokens" in text
    assert not (tmp_path / "res").exists()


def _toy_task(tmp_path: Path):
    card = resolve_task("", data_file=str(_csv(tmp_path / "t.csv")), text_column="text")
    return load_task(card, DataSpec(pool_size=60, golden_size=80), 0, progress=False)


def test_the_cost_model_counts_lm_calls_from_the_spec(tmp_path: Path) -> None:
    task = _toy_task(tmp_path)
    overrides = {"fit.n_train": 20, "fit.epochs": 3, "fit.candidates": 5, "n": 50}
    mop = estimate_cost(build_spec(str(tmp_path / "t.csv"), "mop", overrides=overrides), task)
    by = {w.stage: w for w in mop.items}
    assert by["generation"].tokens == 50 * 64 and by["generation"].calls == 50
    assert by["persona synthesis"].tokens == 16 * 48
    assert by["fit scoring"].calls == 20 * 15  # 3 epochs x 5 candidates, < 16 x 30 pairs
    assert by["held-out NLL"].calls == 80 * 4  # heldout_n capped by the golden set's 80
    assert mop.seconds == pytest.approx(sum(w.seconds for w in mop.items))
    gen = by["generation"]
    assert gen.seconds == pytest.approx(gen.tokens / REFERENCE_RATES.generate)
    # fixed few-shot: no personas, no fit, one prompt per example (exact held-out NLL)
    few = estimate_cost(build_spec(str(tmp_path / "t.csv"), "fixed-few-shot"), task)
    stages = {w.stage: w for w in few.items}
    assert "fit scoring" not in stages and "persona synthesis" not in stages
    assert stages["held-out NLL"].calls == 80
    real = estimate_cost(build_spec(str(tmp_path / "t.csv"), "real"), task)
    assert real.tokens("new tokens") == real.tokens("tokens") == 0
    assert "no LM tokens" in real.summary()


def test_recorded_rates_come_from_finished_runs_of_the_same_lm(tmp_path: Path) -> None:
    run = tmp_path / "toy" / "mop-abc"
    run.mkdir(parents=True)
    spec = build_spec("yelp", "mop")
    (run / "config.json").write_text(json.dumps({"spec": spec.to_json()}))
    totals = {"lm_generate_tokens": 9000, "lm_generate_seconds": 100.0}
    totals |= {"lm_score_tokens": 500, "lm_score_seconds": 1.0}  # too few to trust
    (run / "timing.json").write_text(json.dumps({"totals": totals}))
    rates = recorded_rates(tmp_path, spec.lm)
    assert rates.generate == pytest.approx(90.0) and rates.score == REFERENCE_RATES.score
    other = build_spec("yelp", "mop", overrides={"model": "some/other-model"})
    assert recorded_rates(tmp_path, other.lm) == REFERENCE_RATES


def test_the_run_logs_time_and_tokens_in_its_estimate_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="mop_bench")
    args = [a for a in _args(_csv(tmp_path / "toy.csv"), tmp_path / "res") if a != "-q"]
    assert main(args) == 0, capsys.readouterr().err
    line = next(r.getMessage() for r in caplog.records if r.getMessage().startswith("estimate:"))
    assert "16 samples in 2 chunks: about" in line and "new (+" in line
    assert "scored LM tokens" in line and "of memory" in line and "rates:" in line


# ------------------------------------------------------------------ item 11: data files

ROWS = "text,label\n" + "".join(f"caf\u00e9 number {i},{'ab'[i % 2]}\n" for i in range(20))


@pytest.mark.parametrize(
    ("name", "payload"),
    [
        ("utf16.csv", ROWS.encode("utf-16")),
        ("bom8.csv", ROWS.encode("utf-8-sig")),
        ("semicolon.csv", ROWS.replace(",", ";").encode()),
        ("tabs.csv", ROWS.replace(",", "\t").encode()),
        ("utf16.jsonl", "".join(f'{{"text": "caf\u00e9 {i}", "label": "a"}}\n' for i in range(9)).encode("utf-16")),
    ],
)  # fmt: skip
def test_bom_and_separator_are_read_as_the_file_says(
    tmp_path: Path, name: str, payload: bytes
) -> None:
    path = tmp_path / name
    path.write_bytes(payload)
    card = resolve_task("", data_file=str(path), text_column="text")
    data = load_task(card, DataSpec(pool_size=3, golden_size=3), 0, progress=False)
    assert card.label_column == "label" and set(card.label_names) <= {"a", "b"}
    assert all(e.text.startswith("caf\u00e9 ") for e in data.pool + data.golden)


def test_utf16_without_a_mark_is_named_utf16(tmp_path: Path) -> None:
    path = tmp_path / "nomark.csv"
    path.write_bytes(ROWS.encode("utf-16-le"))
    with pytest.raises(DataError, match=r"looks like UTF-16 text \(LE\) without a byte-order"):
        resolve_task("", data_file=str(path), text_column="text")


def test_row_errors_name_the_line_of_the_file(tmp_path: Path) -> None:
    csv_path = tmp_path / "bad.csv"  # a quoted text spans lines 3-4; line 5 is blank
    csv_path.write_text('text,label\nfine,a\n"two\nlines",b\n\nok,c\n,b\n')
    card = resolve_task("", data_file=str(csv_path))
    with pytest.raises(DataError, match=r"bad.csv: line 7: field 'text' is empty"):
        load_task(card, DataSpec(), 0)
    jsonl = tmp_path / "bad.jsonl"
    jsonl.write_text('{"text": "a", "label": "x"}\n\n\n{"text": "b", "label": null}\n')
    with pytest.raises(DataError, match=r"bad.jsonl: line 4: field 'label' \(label\) is missing"):
        resolve_task("", data_file=str(jsonl))


def test_a_hub_url_as_data_says_how_to_use_a_hub_dataset(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["run", "--sim", "real", "--data", "hf://datasets/owner/name", "--text-column", "t"]
    assert main([*args, "--out", str(tmp_path / "res")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "not a URL" in err
    assert "hub_id: owner/name" in err and "--task CARD.yaml" in err
    assert not (tmp_path / "res").exists()


# ------------------------------------------------------------------ item 13: logs, ls


def test_info_lines_carry_no_module_path_and_third_party_bars_are_off(tmp_path: Path) -> None:
    code = (
        "import logging, os\n"
        "from mop_bench.logs import setup_logging\n"
        "setup_logging()\n"
        "logging.getLogger('mop_bench.embed').info('hello')\n"
        "logging.getLogger('sentence_transformers').info('Loading SentenceTransformer')\n"
        "from transformers.utils import logging as hf\n"
        "print(hf.is_progress_bar_enabled(), os.environ['HF_HUB_DISABLE_PROGRESS_BARS'])\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "MOP_BENCH_DEBUG"))}
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["False", "1"]
    ours = [ln for ln in proc.stderr.splitlines() if "hello" in ln]
    assert len(ours) == 1 and ours[0].endswith(" INFO hello") and "mop_bench" not in ours[0]
    assert "Loading SentenceTransformer" not in proc.stderr
    env["MOP_BENCH_DEBUG"] = "1"
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT, timeout=120
    )
    assert "INFO mop_bench.embed: hello" in proc.stderr


def test_one_bar_per_stage_turns_the_lms_own_bars_off() -> None:
    class LM:
        progress = True

    ws = Workspace(progress=True)
    ws._lms[object()] = lm = LM()  # type: ignore[index]
    with ws.stage_bar():
        assert lm.progress is False
        assert ws._stage_bar
    assert lm.progress is True and not ws._stage_bar


def test_ls_settings_gives_every_setting_a_default_and_a_description(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["ls", "settings"]) == 0
    lines = capsys.readouterr().out.splitlines()[1:]
    rows = {ln.split()[0]: ln for ln in lines}
    assert list(rows) == field_paths()
    for path, line in rows.items():
        rest = line.split(None, 2)
        assert len(rest) == 3 and len(rest[2]) > 10, f"{path} has no description: {line!r}"
    assert "300" in rows["budget.n_samples"] and "Synthetic responses" in rows["budget.n_samples"]
    assert (
        "smoke 64" in rows["budget.n_samples"] and "alias: n, samples" in rows["budget.n_samples"]
    )
    assert "learned" in rows["simulator.gating"] and "uniform" in rows["simulator.gating"]


def test_ls_metrics_shows_direction_and_heldout_nll(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ls", "metrics"]) == 0
    rows = {ln.split()[0]: ln.split()[1] for ln in capsys.readouterr().out.splitlines()[1:]}
    assert rows["fid"] == rows["kl_cosine"] == rows["heldout_nll"] == "↓"
    assert rows["mauve"] == rows["downstream_f1"] == "↑"


def test_ls_runs_lists_finished_and_incomplete_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _csv(tmp_path / "toy.csv")
    out = tmp_path / "res"
    assert main(_args(data, out)) == 0
    done = Path(capsys.readouterr().out.split()[0])
    real = _args(data, out, sim="real")
    real[real.index("--n") + 1] = "24"
    assert main(real) == 0
    partial = Path(capsys.readouterr().out.split()[0])
    (partial / "metrics.json").unlink()
    gens = (partial / "generations.jsonl").read_text().splitlines()
    (partial / "generations.jsonl").write_text("\n".join(gens[:12]) + "\n")  # 1 of 3 chunks
    assert run_state(partial).status == "incomplete (1/3 chunks)"
    assert main(["ls", "runs", str(out)]) == 0
    text = capsys.readouterr().out
    line = {ln.split()[1]: ln for ln in text.splitlines()[1:-1]}
    assert line["mop"].split()[:3] == ["toy", "mop", done.name.rsplit("-", 1)[1]]
    assert line["mop"].endswith(" scored") and line["real"].endswith("incomplete (1/3 chunks)")
    assert text.splitlines()[-1] == "2 runs: 1 incomplete, 1 scored"
    assert main(["ls", "runs", str(tmp_path / "none")]) == 2


def test_a_reader_leaving_early_is_not_an_error(tmp_path: Path) -> None:
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        f"{sys.executable} -m mop_bench.cli ls settings | head -1; exit ${{PIPESTATUS[0]}}",
        shell=True,
        executable="/bin/bash",
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert proc.stdout.startswith("settings (--set KEY=VALUE")
