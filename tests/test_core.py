"""Run specs, overrides, the registry and the crash-safe generation log."""

from __future__ import annotations

import json
import os

import pytest

from mop_bench.overrides import with_overrides
from mop_bench.registry import Registry, UnknownNameError
from mop_bench.spec import RunSpec, SimulatorSpec
from mop_bench.store import GenerationLog, write_json
from mop_bench.types import Generation


def _spec(**kw) -> RunSpec:
    return RunSpec(task="yelp", simulator=SimulatorSpec(name="mop"), **kw)


def test_fingerprint_ignores_non_output_fields_and_tracks_output_fields():
    base = _spec()
    assert base.fingerprint() == _spec().fingerprint()
    # Where the data lives and the preset's name do not change the output...
    assert with_overrides(base, {"data.data_dir": "/elsewhere"}).fingerprint() == base.fingerprint()
    # ...every budget, data-size, model or seed change does.
    for change in ({"n": 10}, {"pool": 7}, {"seed": 3}, {"model": "other"}, {"fit.top_m": 2}):
        assert with_overrides(base, change).fingerprint() != base.fingerprint(), change
    assert base.fingerprint(extra={"data_hash": "a"}) != base.fingerprint(extra={"data_hash": "b"})


def test_overrides_coerce_strings_and_reject_unknown_settings():
    spec = with_overrides(
        _spec(),
        {"n": "12", "fit.lr": "0.5", "encoder.normalize": "false", "metrics.mauve_seeds": "1,2"},
    )
    assert spec.budget.n_samples == 12 and spec.fit.lr == 0.5
    assert spec.encoder.normalize is False and spec.metrics.mauve_seeds == (1, 2)
    with pytest.raises(KeyError, match="did you mean"):
        with_overrides(_spec(), {"fit.epoch": 3})
    with pytest.raises(ValueError, match="must be int"):
        with_overrides(_spec(), {"n": "many"})
    with pytest.raises(ValueError, match="must be one of"):
        with_overrides(_spec(), {"simulator.gating": "sometimes"})


def test_spec_round_trips_through_json():
    spec = with_overrides(_spec(), {"metrics.mauve_seeds": "4,5", "n": 9})
    again = RunSpec.from_json(json.loads(json.dumps(spec.to_json())))
    assert again == spec and again.fingerprint() == spec.fingerprint()


def test_registry_did_you_mean_and_lazy_entries():
    reg: Registry[object] = Registry("widget")
    reg.register("json-dumps", "json:dumps")  # imported only on first get
    reg.register("alpha", 1)
    assert reg.get("json-dumps") is json.dumps
    with pytest.raises(UnknownNameError, match=r"did you mean 'alpha'"):
        reg.get("alpah")


def _gens(indices):
    return [Generation(index=i, context=f"c{i}", label=i % 2, text=f"text {i} ü") for i in indices]


def test_generation_log_drops_torn_and_partial_chunks(tmp_path):
    chunks = [[0, 1], [2, 3], [4, 5]]
    log = GenerationLog(tmp_path, chunks)
    assert log.missing_chunks() == [0, 1, 2]
    log.append_chunk(_gens([0, 1]))
    log.append_chunk(_gens([2, 3]))
    # Simulate a crash mid-write: half a chunk plus a torn line.
    with open(tmp_path / "generations.jsonl", "a", encoding="utf-8") as fh:
        fh.write(json.dumps(_gens([4])[0].to_json()) + "\n" + '{"index": 5, "cont')
    log2 = GenerationLog(tmp_path, chunks)
    assert log2.missing_chunks() == [2]
    assert sorted(log2.rows) == [0, 1, 2, 3]
    log2.append_chunk(_gens([4, 5]))
    log2.finalize()
    # The resumed file is byte-identical to one written without interruption.
    fresh = tmp_path / "fresh"
    log3 = GenerationLog(fresh, chunks)
    for c in chunks:
        log3.append_chunk(_gens(c))
    log3.finalize()
    assert (tmp_path / "generations.jsonl").read_bytes() == (
        fresh / "generations.jsonl"
    ).read_bytes()


def test_write_json_is_atomic(tmp_path):
    path = tmp_path / "x.json"
    write_json(path, {"a": (1, 2)})
    assert json.loads(path.read_text()) == {"a": [1, 2]}
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]  # no temp files left behind
    assert not any(name.endswith(".tmp") for name in os.listdir(tmp_path))


def test_real_is_compared_under_the_simulators_lm_dtype():
    """`real` runs no LM (lm_dtype None in its fingerprint) but must share the
    comparable key of the in-process simulators beside it; every comparison left the
    calibration row out before ("lm_dtype: null")."""
    from mop_bench.runner import build_spec
    from mop_bench.runtime import comparable_lm_dtype, runtime_identity

    real, mop = (build_spec("yelp", sim, preset="smoke") for sim in ("real", "mop"))
    rt_real, rt_mop = runtime_identity(real), runtime_identity(mop)
    assert rt_real["lm_dtype"] is None and rt_mop["lm_dtype"] in ("bfloat16", "float32")
    assert comparable_lm_dtype(real, rt_real) == comparable_lm_dtype(mop, rt_mop)
    served = build_spec("yelp", "real", preset="smoke", overrides={"lm.backend": "openai"})
    assert comparable_lm_dtype(served, runtime_identity(served)) is None
