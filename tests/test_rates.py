"""The estimate's rates follow the machine: recorded runs of another kind of machine are
not used, and the reference is the one measured on this kind (or scaled by a probe)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mop_bench import rates as rates_mod
from mop_bench.rates import (
    AVX2_REFERENCE_RATES,
    REFERENCE_RATES,
    matmul_gflops,
    recorded_rates,
    reference_rates,
)
from mop_bench.runner import build_spec

AVX2 = {"device": "cpu", "lm_dtype": "float32", "cpu_capability": "AVX2", "threads": 2}
AVX512 = {"device": "cpu", "lm_dtype": "bfloat16", "cpu_capability": "AVX512", "threads": 2}


def _finished_run(root: Path, name: str, spec, runtime: dict, gen: tuple[int, float]) -> None:
    run = root / "yelp" / name
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"spec": spec.to_json(), "runtime": runtime}))
    totals = {"lm_generate_tokens": gen[0], "lm_generate_seconds": gen[1]}
    (run / "timing.json").write_text(json.dumps({"totals": totals}))


def test_recorded_rates_use_only_runs_of_this_kind_of_machine(tmp_path: Path) -> None:
    spec = build_spec("yelp", "mop")
    _finished_run(tmp_path, "mop-a", spec, AVX512, (9000, 100.0))  # 90 tok/s, bf16 machine
    _finished_run(tmp_path, "mop-b", spec, AVX2, (3000, 100.0))  # 30 tok/s, this kind
    here = recorded_rates(tmp_path, spec.lm, runtime=AVX2)
    assert here.generate == pytest.approx(30.0)
    assert here.score == AVX2_REFERENCE_RATES.score  # nothing scored: this kind's reference
    there = recorded_rates(tmp_path, spec.lm, runtime=AVX512)
    assert there.generate == pytest.approx(90.0) and there.score == REFERENCE_RATES.score
    one_thread = recorded_rates(tmp_path, spec.lm, runtime=AVX2 | {"threads": 1}, limit=0)
    assert one_thread.generate <= AVX2_REFERENCE_RATES.generate  # no run of that kind


def test_the_reference_is_the_one_measured_on_this_kind_of_machine(monkeypatch) -> None:
    def no_probe(*a, **k):
        raise AssertionError("a known kind of machine needs no probe")

    monkeypatch.setattr(rates_mod, "matmul_gflops", no_probe)
    assert reference_rates(AVX2) == AVX2_REFERENCE_RATES
    assert reference_rates(AVX512) == REFERENCE_RATES
    assert reference_rates(AVX2 | {"device": "cuda"}) == REFERENCE_RATES  # errs high on a GPU
    assert reference_rates(None) == REFERENCE_RATES


@pytest.mark.parametrize(("gflops", "factor"), [(34.0, 0.5), (1.7, 0.025), (1000.0, 1.0)])
def test_another_machine_scales_the_avx2_reference_by_its_matmul_speed(
    monkeypatch, gflops: float, factor: float
) -> None:
    seen = []
    monkeypatch.setattr(
        rates_mod, "matmul_gflops", lambda dtype, *a, **k: seen.append(dtype) or gflops
    )
    emulated = AVX2 | {"lm_dtype": "bfloat16"}  # bf16 without bf16 instructions
    got = reference_rates(emulated)
    assert seen == ["bfloat16"]
    assert got.generate == pytest.approx(AVX2_REFERENCE_RATES.generate * factor)
    assert got.score == pytest.approx(AVX2_REFERENCE_RATES.score * factor)
    assert "bfloat16 matrix products" in got.source and got.describe()


def test_the_probe_measures_a_real_matrix_product() -> None:
    assert matmul_gflops("float32", size=64, repeats=1) > 0.01


def test_rates_recorded_in_full_need_no_probe(tmp_path: Path, monkeypatch) -> None:
    def no_probe(*a, **k):
        raise AssertionError("both rates were recorded: no reference, no probe")

    monkeypatch.setattr(rates_mod, "matmul_gflops", no_probe)
    spec = build_spec("yelp", "mop")
    other = AVX2 | {"threads": 3}  # a kind with no reference run
    run = tmp_path / "yelp" / "mop-c"
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"spec": spec.to_json(), "runtime": other}))
    totals = {"lm_generate_tokens": 3000, "lm_generate_seconds": 100.0}
    totals |= {"lm_score_tokens": 6000, "lm_score_seconds": 100.0}
    (run / "timing.json").write_text(json.dumps({"totals": totals}))
    got = recorded_rates(tmp_path, spec.lm, runtime=other)
    assert (got.generate, got.score) == (pytest.approx(30.0), pytest.approx(60.0))
