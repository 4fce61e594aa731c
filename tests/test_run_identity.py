"""Never a silently wrong result (issue 12), through the real CLI: transferred gates are
part of a run's identity, `score` refuses damaged generations, a failed run is marked
and skipped, hostile names and oversized runs are refused.

Runs use the fake LM backend and a hashed bag-of-words encoder (as tests/_fake_cli.py
does, but in process), so each CLI call takes a second or two.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mop_bench import embed, store
from mop_bench.cli import main
from mop_bench.lm.registry import LM_BACKENDS
from tests.fake_lm import FakeLM
from tests.test_runner import HashEncoder

WORDS = {0: "rain storm cold grey wet dark", 1: "sun bright warm happy clear blue"}


@pytest.fixture(autouse=True)
def fakes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(embed, "Encoder", lambda spec=None, **kw: HashEncoder())
    LM_BACKENDS.register("fake", lambda spec, **kw: FakeLM(name="fake"), replace=True)
    monkeypatch.setenv("MOP_BENCH_CACHE", str(tmp_path / "cache"))


def _csv(path: Path, n: int = 240, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    rows = ["text,label"]
    for i in range(n):
        label = i % 2
        words = [*rng.choice(WORDS[label].split(), size=8).tolist(), f"w{rng.integers(50)}"]
        rows.append(f"{' '.join(words)},{'pos' if label else 'neg'}")
    path.write_text("\n".join(rows) + "\n")
    return path


def _args(data: Path, out: Path, *extra: str, task: str = "toy", sim: str = "mop") -> list[str]:
    return [
        "run", "--task", task, "--sim", sim, "--preset", "smoke",
        "--data", str(data), "--text-column", "text", "--label-column", "label",
        "--backend", "fake", "--n", "16",
        "--set", "budget.chunk_size=8", "--set", "pool=60", "--set", "golden=80",
        "--set", "personas=2", "--set", "fit.n_train=8", "--set", "fit.epochs=1",
        "--set", "metrics.mauve_seeds=25", "--set", "fit.train_batch_size=8",
        "--out", str(out), "--no-progress", "-q", *extra,
    ]  # fmt: skip


def _run(capsys, args: list[str]) -> Path:
    assert main(args) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    return Path(out.split()[0])


# ------------------------------------------------------------------ item 1: transfer


def test_gates_from_is_part_of_the_run_identity(tmp_path: Path, capsys) -> None:
    data = _csv(tmp_path / "toy.csv")
    out = tmp_path / "res"
    plain = _run(capsys, _args(data, out))
    # The transfer source: another fit (seed 1), in its own results folder.
    source = _run(capsys, _args(data, tmp_path / "src", "--seed", "1"))

    transfer = _run(capsys, _args(data, out, "--gates-from", str(source)))
    assert transfer != plain, "a transfer run reused the plain run's generations"
    config = store.read_json(transfer / "config.json")
    src = config["gates_from"]
    assert src["path"] == str(source / "fit") and len(src["content_hash"]) == 16
    assert config["comparable_key"]["gates_from"] == src["content_hash"]
    assert "gates_from" not in store.read_json(plain / "config.json")["comparable_key"]
    fit = store.read_json(transfer / "fit" / "fit.json")
    assert fit["gates_from"] == str(source / "fit")
    assert fit["gates_source"]["content_hash"] == src["content_hash"]
    # Its personas are the source's, not the plain run's.
    personas = [p["text"] for p in fit["personas"]]
    assert personas == [p["text"] for p in store.read_json(source / "fit" / "fit.json")["personas"]]

    # The reverse: a plain run after the transfer gets the plain run back.
    assert _run(capsys, _args(data, out)) == plain
    # The same transfer again is reused (same content hash, same directory).
    assert _run(capsys, _args(data, out, "--gates-from", str(source))) == transfer

    # Other weights under the same path (a refit in place) are a new identity.
    import torch

    path = source / "fit" / "gates.pt"
    ckpt = torch.load(path, weights_only=True)

    def perturb(obj) -> bool:  # the first float tensor anywhere in the checkpoint
        for key, value in obj.items():
            if isinstance(value, dict) and perturb(value):
                return True
            if isinstance(value, torch.Tensor) and value.is_floating_point() and value.numel():
                obj[key] = value + 0.5
                return True
        return False

    assert perturb(ckpt)
    torch.save(ckpt, path)
    again = _run(capsys, _args(data, out, "--gates-from", str(source)))
    assert again not in (transfer, plain)


def test_foreign_gates_are_refused_unless_allowed_and_recorded(tmp_path: Path, capsys) -> None:
    source = _run(capsys, _args(_csv(tmp_path / "toy.csv"), tmp_path / "src"))
    news = _csv(tmp_path / "news.csv", seed=5)
    args = _args(news, tmp_path / "res", "--gates-from", str(source), task="news")
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "task 'toy' (this run: 'news')" in err
    assert "--allow-foreign-gates" in err
    assert not (tmp_path / "res").exists()  # refused before any run directory exists

    run_dir = _run(capsys, [*args, "--allow-foreign-gates"])
    src = store.read_json(run_dir / "config.json")["gates_from"]
    assert src["allow_foreign"] is True and src["foreign"] == ["task 'toy' (this run: 'news')"]

    # Another persona count (structure) is refused even with the flag...
    assert main([*args, "--allow-foreign-gates", "--set", "personas=3"]) == 2
    assert "n_personas=2" in capsys.readouterr().err
    # ...and so are gates trained on another encoder's features.
    fit = store.read_json(source / "fit" / "fit.json")
    fit["settings"]["encoder"] = "all-mpnet-base-v2|norm=True"
    store.write_json(source / "fit" / "fit.json", fit)
    assert main([*args, "--allow-foreign-gates"]) == 2
    assert "trained on features of encoder 'all-mpnet-base-v2" in capsys.readouterr().err


def test_gates_file_that_is_not_weights_is_one_line_error(tmp_path: Path, capsys) -> None:
    data = _csv(tmp_path / "toy.csv")
    source = _run(capsys, _args(data, tmp_path / "src"))
    import fractions

    import torch

    # A pickle holding a class the weights-only loader refuses (torch then suggests
    # weights_only=False, which would run whatever the file holds).
    torch.save({"x": fractions.Fraction(1, 3)}, source / "fit" / "gates.pt")
    assert main(_args(data, tmp_path / "res", "--gates-from", str(source))) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a gates weights file" in err
    assert "weights_only=False" not in err


# ------------------------------------------------------------------ item 2: score


def test_score_refuses_damaged_generations_and_keeps_metrics(tmp_path: Path, capsys) -> None:
    data = _csv(tmp_path / "toy.csv")
    run_dir = _run(capsys, _args(data, tmp_path / "res", sim="real"))
    gens = run_dir / "generations.jsonl"
    good = gens.read_bytes()
    metrics = (run_dir / "metrics.json").read_bytes()
    assert (run_dir / "generations.sha256").read_text().split() == [
        store.file_sha256(gens),
        "generations.jsonl",
    ]
    lines = good.decode().splitlines(keepends=True)
    damaged = {
        "deleted": "".join(lines[:5] + lines[6:]),
        "duplicated": "".join(lines + lines[3:4]),
        "edited": "".join(lines).replace(json.loads(lines[2])["text"], "forged text", 1),
    }
    expected = {"deleted": "index 5 missing", "duplicated": "index 3 repeated", "edited": "changed"}
    for what, text in damaged.items():
        gens.write_text(text)
        assert main(["score", str(run_dir), "-q"]) == 2, what
        err = capsys.readouterr().err
        assert expected[what] in err and err.count("\n") == 1, (what, err)
        assert (run_dir / "metrics.json").read_bytes() == metrics, what
    gens.write_bytes(good)
    assert main(["score", str(run_dir), "-q"]) == 0
    assert (run_dir / "metrics.json").read_bytes() == metrics

    # `run` on an edited file stops as well, instead of scoring forged text.
    gens.write_text(damaged["edited"])
    assert main(_args(data, tmp_path / "res", sim="real")) == 2
    assert "changed since it was generated" in capsys.readouterr().err
    # The failure is recorded: its (older) metrics are not shown as a result...
    assert main(["report", str(run_dir), "-q"]) == 2
    assert "the run failed: ValueError" in capsys.readouterr().err
    # ...until a run succeeds again.
    gens.write_bytes(good)
    assert _run(capsys, _args(data, tmp_path / "res", sim="real")) == run_dir
    assert not (run_dir / "failed.json").exists()
    assert main(["report", str(run_dir), "-q"]) == 0


# ------------------------------------------------------------------ items 4, 9, 10


def test_simulator_and_comparison_names_cannot_leave_the_results_dir(
    tmp_path: Path, capsys
) -> None:
    data = _csv(tmp_path / "toy.csv")
    out = tmp_path / "a" / "b" / "res"
    run_dir = _run(capsys, _args(data, out, "--set", "simulator.name=../../escaped", sim="real"))
    assert run_dir.resolve().is_relative_to(out.resolve())
    assert run_dir.parent.parent == out and run_dir.name.startswith("escaped-")
    assert not (tmp_path / "a" / "escaped").exists() and not (out.parent / "escaped").exists()
    args = _args(data, out, sim="real")
    compare = ["compare", "--task", "toy", "--sims", "real", "--name", "../../../evil", *args[5:]]
    assert main(compare) == 0, capsys.readouterr().err
    assert not (tmp_path / "evil").exists() and (out / "comparisons" / "evil").is_dir()


def test_oversized_run_is_refused_before_any_work(tmp_path: Path, capsys, monkeypatch) -> None:
    import mop_bench.runner

    def started(*args, **kwargs):  # were the guard missing, fail fast instead of filling RAM
        raise AssertionError("the run started")

    monkeypatch.setattr(mop_bench.runner, "simulate_stage", started)
    data = _csv(tmp_path / "toy.csv")
    args = _args(data, tmp_path / "res", sim="real")
    args[args.index("--n") + 1] = "10000000"
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "refusing to start: estimate: 10,000,000 samples in 1,250,000 chunks" in err
    assert "--yes" in err and err.count("\n") == 1
    assert not (tmp_path / "res").exists()
    # Out-of-range settings stop at once, all named in one line.
    assert (
        main(_args(data, tmp_path / "res", "--set", "budget.chunk_size=0", "--set", "lr=nan")) == 2
    )
    err = capsys.readouterr().err
    assert "budget.chunk_size must be >= 1, got 0" in err and "fit.lr must be > 0" in err


def test_failed_run_is_marked_and_report_skips_it(tmp_path: Path, capsys, caplog) -> None:
    # 40 rows, golden 20 (half the file) and pool 60: no held-out rows remain.
    data = _csv(tmp_path / "tiny.csv", n=40)
    args = _args(data, tmp_path / "res", sim="real")
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "the pool took all 20 rows of the 'train' split" in err
    assert "golden set took 20 rows" in err and "--set pool=N" in err
    (run_dir,) = (tmp_path / "res" / "toy").iterdir()
    assert store.read_json(run_dir / "failed.json")["error"] == "ValueError"
    assert main(["report", str(run_dir)]) == 2
    err = capsys.readouterr().err
    assert f"skipped {run_dir}: the run failed: ValueError" in err
    assert not (run_dir / "report.html").exists()
    # The leaderboard skips it with a note too; with no other run there is no board to
    # write, which is an error (an empty board never replaces a good one: issue 19).
    assert main(["leaderboard", str(tmp_path / "res")]) == 2
    assert f"leaderboard: skipped {run_dir}: the run failed" in caplog.text
    assert "no scored run" in capsys.readouterr().err
