"""`--device`: resolved once, recorded in config.json, hashed only off the CPU; a run on a
tiny in-code model with `--device cpu` and `--device auto` (no GPU here) gives one run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from tiny_llama import tiny_lm

from mop_bench import embed
from mop_bench.cli import main
from mop_bench.devices import resolve_device
from mop_bench.lm.registry import LM_BACKENDS
from mop_bench.runtime import fingerprinted
from tests.test_run_identity import _args, _csv
from tests.test_runner import HashEncoder


def test_resolve_device_names_and_refusals(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_device("cpu") == "cpu"
    assert resolve_device(" CPU ") == "cpu"
    for bad in ("gpu", "cuda:x", "cpu:0", "tpu"):
        with pytest.raises(ValueError, match="unknown device"):
            resolve_device(bad)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert resolve_device("auto") == "cpu"
    with pytest.raises(ValueError, match="sees no CUDA GPU"):
        resolve_device("cuda")
    with pytest.raises(ValueError, match="no Apple MPS"):
        resolve_device("mps")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("auto") == "cuda"
    assert resolve_device("cuda:1") == "cuda:1"
    with pytest.raises(ValueError, match="sees 2 CUDA GPU"):
        resolve_device("cuda:2")


def test_device_enters_the_fingerprint_only_off_the_cpu() -> None:
    base = {"lm_dtype": "bfloat16", "cpu_capability": "AVX512", "threads": 2}
    assert fingerprinted({**base, "device": "cpu"}) == fingerprinted(base)
    assert "device" not in fingerprinted({**base, "device": "cpu"})
    assert fingerprinted({**base, "device": "cuda"})["device"] == "cuda"


def test_threads_enter_every_cpu_fingerprint_with_two_written_by_omission() -> None:
    bf16 = {"lm_dtype": "bfloat16", "cpu_capability": "AVX512", "device": "cpu"}
    fp32 = {"lm_dtype": "float32", "cpu_capability": "AVX2", "device": "cpu"}
    for kind in (bf16, fp32, {**fp32, "lm_dtype": None}):  # None: real calibration, servers
        counts = [fingerprinted({**kind, "threads": n}) for n in (1, 2, 3, 16)]
        assert len({repr(c) for c in counts}) == 4  # each count its own run
        # 2 (every published run) by omission: those runs keep their names
        assert "threads" not in counts[1] and counts[0]["threads"] == 1
    assert "threads" not in fingerprinted({**fp32, "device": "cuda", "threads": 1})


def test_tiny_model_run_with_device_cpu_and_auto(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setattr(embed, "Encoder", lambda spec=None, **kw: HashEncoder())
    monkeypatch.setenv("MOP_BENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    devices: list[str] = []

    def tiny(spec, *, batch_size, progress, device="cpu"):
        devices.append(device)
        return tiny_lm(seed=3)

    LM_BACKENDS.register("tiny", tiny, replace=True)
    data = _csv(tmp_path / "toy.csv")
    runs = []
    for device in ("cpu", "auto"):
        args = _args(data, tmp_path / device, "--device", device)
        args[args.index("fake")] = "tiny"
        assert main(args) == 0, capsys.readouterr().err
        runs.append(Path(capsys.readouterr().out.split()[0]))
    assert devices == ["cpu", "cpu"]  # auto found no GPU: the CPU, passed as the default
    configs = [json.loads((run / "config.json").read_text()) for run in runs]
    assert [c["runtime"]["device"] for c in configs] == ["cpu", "cpu"]
    assert runs[0].name == runs[1].name  # one fingerprint
    texts = [(run / "generations.jsonl").read_bytes() for run in runs]
    assert texts[0] == texts[1] and texts[0]


def test_environment_names_the_cpu_and_its_kernel_flags(tmp_path: Path, monkeypatch) -> None:
    from mop_bench import environment

    info = tmp_path / "cpuinfo"
    info.write_text(
        "processor\t: 0\nmodel name\t: Some Xeon\nflags\t\t: fpu sse2 avx2 fma avx512f "
        "avx512_bf16 amx_tile\n\nprocessor\t: 1\nmodel name\t: Other\n"
    )
    monkeypatch.setattr(environment, "_CPUINFO", info)
    env = environment.capture()
    assert env["cpu_model"] == "Some Xeon"
    assert env["cpu_flags"] == ["amx_tile", "avx2", "avx512_bf16", "avx512f", "fma"]
    monkeypatch.setattr(environment, "_CPUINFO", tmp_path / "absent")
    assert "cpu_model" not in environment.capture()
