"""Proof against real inference engines (marked `engine` and `slow`; fixtures in
conftest.py start the servers from their own venvs, see tests/engines.py).

- vLLM's server: generation is deterministic per seed; its per-token log-probs agree
  with our in-process transformers backend (both float32) on 60 MoP (prompt,
  continuation) pairs; `mop-bench doctor` passes every capability.
- llama-cpp-python's server: the doctor flags its one-position shift of echoed
  log-probs and refuses scoring through it (run where .venv-llamacpp is built; CI
  builds only vLLM).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import engines
import numpy as np
import pytest

from mop_bench.lm.openai_compat import OpenAICompatLM

pytestmark = [pytest.mark.slow, pytest.mark.engine]

#: Per-token |Δ| between vLLM's float32 server and TransformersLM(float32), in nats.
#: Measured on these 60 pairs (3,022 tokens, mean log-prob -4.24): max 6.5e-5, mean
#: 9.5e-6, p99 2.9e-5; per-sequence sums within 6.1e-4 (docs/lm.md). That is float32
#: round-off over 30 layers in different kernels (vLLM's CPU attention and matmuls vs
#: our lean scoring path); a real defect (a shifted position, another template, a
#: missing or doubled BOS) costs whole nats per token. The bounds leave 10-15x headroom.
MAX_ABS_DIFF = 1e-3
MEAN_ABS_DIFF = 1e-4

PERSONAS = [
    "You are a budget-conscious parent who reviews family restaurants.",
    "You are a frequent business traveller who cares about quiet rooms and fast wifi.",
    "You are a food enthusiast who writes long, detailed reviews.",
    "You are a student who values cheap eats and late opening hours.",
    "You are a retiree who notices the service more than the food.",
    "You are a nightlife regular who judges bars by their cocktails.",
]


def _reviews() -> tuple[list[str], list[str]]:
    """Yelp reviews and categories from the data mirror, or fixed synthetic ones."""
    root = Path(os.environ.get("MOP_BENCH_DATA_DIR", "/work/shared/data")) / "yelp"
    if (root / "train.parquet").is_file():
        import pandas as pd

        frame = pd.read_parquet(root / "train.parquet", columns=["text", "category"])
        frame = frame.iloc[:200]
        return frame["text"].tolist(), frame["category"].tolist()
    texts = [
        f"Visit {i}: the staff were friendly, the fries were cold and the bill was €{i}. "
        f"Would I come back? Maybe — if they fix the music!" * 2
        for i in range(200)
    ]
    return texts, ["Restaurants", "Nightlife"] * 100


def mop_pairs(n: int = 60, seed: int = 0) -> tuple[list[list[dict[str, str]]], list[str]]:
    """`n` MoP prompts (chat messages, as the fit scores them) and real reviews."""
    from mop_bench.mop.prompts import CardPrompt, render_prompt
    from mop_bench.prompt_spec import PromptSpec
    from mop_bench.types import Example

    tagged = PromptSpec(style="chat_tagged", stop=(), exemplar_words=60, cut_marker=" ...")
    card = CardPrompt("Please write {context}.")

    texts, cats = _reviews()
    rng = np.random.default_rng(seed)
    prompts, conts = [], []
    for _ in range(n):
        ex, tg = (int(i) for i in rng.integers(len(texts), size=2))
        example = Example(texts[ex], None, f"a review of a business in the category {cats[ex]}")
        context = f"a review of a business in the category {cats[tg]}"
        persona = PERSONAS[int(rng.integers(len(PERSONAS)))]
        prompts.append(
            render_prompt(
                tagged, card, context=context, fields={}, persona=persona, exemplars=[example]
            )
        )
        conts.append(texts[tg])
    return prompts, conts


@pytest.fixture(scope="module")
def reference():
    from mop_bench.lm.hf import TransformersLM

    return TransformersLM.from_pretrained("smollm2-135m-instruct", dtype="float32", batch_size=16)


def _adapter(server: engines.Server, **kw) -> OpenAICompatLM:
    return OpenAICompatLM(server.base_url, server.model, timeout=300, retries=1, **kw)


def test_vllm_generation_is_deterministic_per_seed(vllm_server: engines.Server) -> None:
    prompts, _ = mop_pairs(8, seed=1)
    lm = _adapter(vllm_server, concurrency=4)
    seeds = list(range(8))
    kwargs = {"temperatures": [1.0] * 8, "max_new_tokens": 24}
    first = lm.generate(prompts, seeds=seeds, **kwargs)
    again = lm.generate(prompts, seeds=seeds, **kwargs)
    assert [c.text for c in first] == [c.text for c in again]
    assert all(c.n_tokens > 0 for c in first)
    # one request at a time (another batching on the server): the same texts
    alone = _adapter(vllm_server, concurrency=1).generate(prompts, seeds=seeds, **kwargs)
    assert [c.text for c in alone] == [c.text for c in first]
    other = lm.generate(prompts, seeds=[s + 100 for s in seeds], **kwargs)
    assert sum(a.text != b.text for a, b in zip(first, other, strict=True)) >= 6


def test_vllm_logprobs_agree_with_transformers(vllm_server: engines.Server, reference) -> None:
    """Per-token log-probs of 60 MoP (prompt, continuation) pairs, both float32."""
    prompts, conts = mop_pairs(60)
    lm = _adapter(vllm_server, concurrency=8)
    ours = lm.score(prompts, conts, max_tokens=64, per_token=True)
    ref = reference.score(prompts, conts, max_tokens=64, per_token=True)
    counts = [(a.n_tokens, b.n_tokens) for a, b in zip(ours, ref, strict=True)]
    assert all(a == b for a, b in counts), counts
    diffs = np.concatenate(
        [
            np.abs(a.token_logprobs[:, 0] - b.token_logprobs[:, 0])
            for a, b in zip(ours, ref, strict=True)
        ]
    )
    sums = np.array([abs(a.logprob[0] - b.logprob[0]) for a, b in zip(ours, ref, strict=True)])
    record = {
        "pairs": len(prompts),
        "tokens": int(diffs.size),
        "max_abs": float(diffs.max()),
        "mean_abs": float(diffs.mean()),
        "p99_abs": float(np.quantile(diffs, 0.99)),
        "seq_max_abs": float(sums.max()),
        "mean_logprob": float(np.mean(np.concatenate([b.token_logprobs[:, 0] for b in ref]))),
    }
    print("agreement:", json.dumps(record))
    assert diffs.size >= 50 * 20
    assert diffs.max() < MAX_ABS_DIFF and diffs.mean() < MEAN_ABS_DIFF, record


def test_doctor_passes_vllm(vllm_server: engines.Server, reference, tmp_path, monkeypatch) -> None:
    from mop_bench.lm.doctor import cached_report, require_scoring_ok, run_doctor, save_report

    monkeypatch.setenv("MOP_BENCH_CACHE", str(tmp_path))
    lm = _adapter(vllm_server)
    report = run_doctor(lm, reference=reference)
    print("\n".join(report.lines()))
    statuses = {c.name: c.status for c in report.checks}
    assert "FAIL" not in statuses.values(), report.lines()
    for name in ("echo", "text_offset", "alignment", "reference raw", "reference chat", "seed"):
        assert statuses[name] == "pass", report.lines()
    assert report.scoring_ok
    save_report(report)
    assert cached_report({"backend": "openai", **lm.server_info()}).scoring_ok
    require_scoring_ok(lm)


def test_doctor_cli_against_vllm(
    vllm_server: engines.Server, tmp_path, monkeypatch, capsys
) -> None:
    from mop_bench.cli import main

    monkeypatch.setenv("MOP_BENCH_CACHE", str(tmp_path))
    # --reference none: the reference checks already ran in test_doctor_passes_vllm
    args = ["--base-url", vllm_server.base_url, "--model", vllm_server.model]
    rc = main(["doctor", *args, "--reference", "none"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "scoring: OK" in out and "FAIL" not in out
    rc = main(
        ["doctor", "--base-url", vllm_server.base_url, "--model", "nope", "--reference", "none"]
    )
    err = capsys.readouterr().err
    assert rc == 2 and "does not serve model 'nope'; it serves: smollm2-135m-instruct" in err


def test_doctor_flags_llamacpp_scoring_shift(
    llamacpp_server: engines.Server, reference, tmp_path, monkeypatch
) -> None:
    from mop_bench.lm.doctor import ScoringRefused, require_scoring_ok, run_doctor

    monkeypatch.setenv("MOP_BENCH_CACHE", str(tmp_path))
    lm = _adapter(llamacpp_server)
    report = run_doctor(lm, reference=reference)
    print("\n".join(report.lines()))
    checks = {c.name: c for c in report.checks}
    assert checks["server"].detail.startswith("llama-cpp-python")
    assert checks["alignment"].status == "FAIL"
    assert checks["reference raw"].status == "FAIL"
    assert "off by one position" in checks["reference raw"].detail
    assert (
        checks["text_offset"].status == "FAIL" and "empty strings" in checks["text_offset"].detail
    )
    assert checks["echo"].status == "warn" and "generated token is missing" in checks["echo"].detail
    assert checks["max_tokens"].status == "warn" and "'unlimited'" in checks["max_tokens"].detail
    assert (
        checks["token-id prompts"].status == "warn"
        and "HTTP 500" in checks["token-id prompts"].detail
    )
    assert not report.scoring_ok
    with pytest.raises(ScoringRefused, match="alignment"):
        require_scoring_ok(lm)
    lm.generate(["Say hi."], temperatures=[1.0], seeds=[0], max_new_tokens=4)  # still allowed


def test_run_killed_during_server_generation_resumes_identically(
    vllm_server: engines.Server, tmp_path
) -> None:
    """`mop-bench run --backend openai` against vLLM, SIGKILLed part-way through
    generation and started again, ends byte-identical to an uninterrupted run: each
    text depends only on its own (prompt, seed), not on which requests shared the
    server's batches."""
    import signal
    import subprocess
    import sys
    import time

    from test_resume import _csv

    data = _csv(tmp_path / "toy.csv")
    env = {**os.environ, "MOP_BENCH_CACHE": str(tmp_path / "cache")}

    def cmd(out: Path) -> list[str]:
        sets = ["budget.chunk_size=4", "budget.max_new_tokens=24", "pool=120", "golden=150"]
        sets += ["metrics.heldout_n=8"]
        return [
            sys.executable,
            str(Path(__file__).resolve().parent / "_server_cli.py"),
            "run",
            "--task", "toy", "--sim", "fixed-few-shot", "--preset", "smoke",
            "--data", str(data), "--text-column", "text", "--label-column", "label",
            "--backend", "openai", "--base-url", vllm_server.base_url,
            "--model", vllm_server.model, "--n", "48",
            *(a for s in [*sets, "metrics.mauve_seeds=25"] for a in ("--set", s)),
            "--out", str(out), "--no-progress", "-q",
        ]  # fmt: skip

    def generations(out: Path) -> Path:
        (path,) = out.glob("toy/fixed-few-shot-*/generations.jsonl")
        return path

    subprocess.run(cmd(tmp_path / "ref"), env=env, check=True, timeout=600)
    reference = generations(tmp_path / "ref").read_bytes()
    assert reference.count(b"\n") == 48

    proc = subprocess.Popen(cmd(tmp_path / "killed"), env=env)
    deadline = time.time() + 300
    while time.time() < deadline:
        files = list((tmp_path / "killed").glob("toy/fixed-few-shot-*/generations.jsonl"))
        if files and files[0].read_bytes().count(b"\n") >= 8:
            break
        time.sleep(0.02)
    else:
        proc.kill()
        pytest.fail("the run never started writing generations")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = generations(tmp_path / "killed").read_bytes().count(b"\n")
    assert 0 < partial < 48, "the kill must land part-way through generation"
    subprocess.run(cmd(tmp_path / "killed"), env=env, check=True, timeout=600)
    assert generations(tmp_path / "killed").read_bytes() == reference


def test_transfer_gates_fitted_in_process_to_a_server(vllm_server: engines.Server, tmp_path):
    """The paper's transfer (its Table 3): fit MoP in process, then generate through the
    server with those gates. Both LMs and the gates' source are recorded; the held-out
    likelihood at the fitted temperatures is not something a server can score, and the
    run says so instead of inventing it."""
    import subprocess
    import sys

    from test_resume import _csv

    from mop_bench import store

    data = _csv(tmp_path / "toy.csv")
    env = {**os.environ, "MOP_BENCH_CACHE": str(tmp_path / "cache")}
    common = [
        sys.executable, str(Path(__file__).resolve().parent / "_server_cli.py"), "run",
        "--task", "toy", "--sim", "mop", "--preset", "smoke", "--n", "8",
        "--data", str(data), "--text-column", "text", "--label-column", "label",
        "--set", "pool=60", "--set", "golden=60", "--set", "personas=2",
        "--set", "fit.n_train=16", "--set", "metrics.heldout_n=8",
        "--set", "metrics.mauve_seeds=25", "--no-progress", "-q",
    ]  # fmt: skip
    subprocess.run([*common, "--out", str(tmp_path / "fit")], env=env, check=True, timeout=900)
    (source,) = (tmp_path / "fit" / "toy").glob("mop-*")
    served = ["--backend", "openai", "--base-url", vllm_server.base_url]
    served += ["--model", vllm_server.model, "--gates-from", str(source)]
    out = tmp_path / "served"
    subprocess.run([*common, *served, "--out", str(out)], env=env, check=True, timeout=900)
    (run_dir,) = (out / "toy").glob("mop-*")
    config = store.read_json(run_dir / "config.json")
    assert config["spec"]["lm"]["backend"] == "openai"
    assert config["gates_from"]["lm"]["backend"] == "transformers"
    assert config["gates_from"]["content_hash"] == config["comparable_key"]["gates_from"]
    assert len(store.read_generations(run_dir)) == 8
    metrics = store.read_json(run_dir / "metrics.json")
    assert "heldout_nll" not in metrics and "not available" in metrics["_errors"]["heldout_nll"]
    page = (run_dir / "report.html").read_text()
    assert "Transfer: two language models" in page and vllm_server.model in page
