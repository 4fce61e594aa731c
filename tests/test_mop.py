"""MoP: trainer on a planted problem, scoring cache, determinism, every baseline config.

Everything runs on a fake LM (tests/fake_lm.py) and a hashed bag-of-words encoder, so
the whole file takes seconds.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from mop_bench.mop import MoPSimulator
from mop_bench.mop.candidates import select_pairs
from mop_bench.mop.fit import fit_mixture
from mop_bench.mop.gates import MixtureGates
from mop_bench.mop.mixture import Mixture, make_slots
from mop_bench.mop.prompts import CardPrompt
from mop_bench.mop.scoring import ScoreCache
from mop_bench.prompt_spec import PromptSpec
from mop_bench.registry import cards_dir
from mop_bench.simulators import SimulationInputs, load_simulator_file
from mop_bench.spec import BudgetSpec, FitSpec, RunSpec, SimulatorSpec
from mop_bench.types import Context, Example
from tests.fake_lm import FakeLM

#: The tagged chat layout: the planted likelihoods below read its <Persona>/<Example> tags.
TAGGED = PromptSpec(style="chat_tagged", stop=(), cut_marker=" ...")

POS = ["great", "tasty", "friendly", "lovely", "fresh", "delicious", "wonderful"]
NEG = ["awful", "rude", "cold", "stale", "slow", "dirty", "terrible"]
CATS = ["Bars", "Cafes", "Pizza"]


class HashEncoder:
    """Deterministic bag-of-words vectors (unit norm), standing in for MiniLM."""

    identity = "hash-bow-64"

    def __init__(self, dim: int = 64) -> None:
        self.dim = dim

    def encode(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for r, text in enumerate(texts):
            for tok in re.findall(r"[a-z]+", text.lower()):
                h = int(hashlib.sha1(tok.encode()).hexdigest(), 16)
                out[r, h % self.dim] += 1.0 if (h >> 8) % 2 else -1.0
            out[r] /= max(np.linalg.norm(out[r]), 1e-9)
        return out


def make_pool(n: int = 24) -> list[Example]:
    pool = []
    for i in range(n):
        label = i % 2
        words = POS if label else NEG
        sentiment = "positive" if label else "negative"
        cat = CATS[i % 3]
        text = " ".join(words[(i + t) % len(words)] for t in range(6)) + f" visit {i}"
        pool.append(
            Example(
                text=text,
                label=label,
                context=f"a {sentiment} review of a restaurant in the category {cat}",
                fields={"label_name": sentiment, "category": cat},
                uid=f"train:{i}",
            )
        )
    return pool


def make_task(pool: list[Example]) -> SimpleNamespace:
    card = SimpleNamespace(
        name="toy", request_template="Please write {context}.", label_names=["negative", "positive"]
    )
    return SimpleNamespace(card=card, pool=pool, golden=pool[:4], heldout=[])


def contexts(n: int, start: int = 0) -> list[Context]:
    out = []
    for i in range(start, start + n):
        sentiment = "positive" if i % 2 else "negative"
        out.append(
            Context(
                index=i,
                text=f"a {sentiment} review of a restaurant in the category Bars",
                label=i % 2,
            )
        )
    return out


TINY_FIT = FitSpec(top_m=2, n_train=16, epochs=3, proj_dim=16, persona_cluster_samples=3)


def make_inputs(sim: SimulatorSpec, tmp: Path, lm: FakeLM, **kw) -> SimulationInputs:
    calls = kw.pop("calls", None)

    def factory() -> FakeLM:
        if calls is not None:
            calls.append(1)
        return lm

    spec = RunSpec(
        task="toy",
        simulator=sim,
        budget=BudgetSpec(n_samples=8, max_new_tokens=16, chunk_size=4),
        fit=kw.pop("fit", TINY_FIT),
        prompt=kw.pop("prompt", TAGGED),
        seed=kw.pop("seed", 3),
    )
    return SimulationInputs(
        spec=spec,
        task=make_task(make_pool()),
        encoder=HashEncoder(),
        lm_factory=factory,
        artifacts_dir=tmp,
        **kw,
    )


# --------------------------------------------------------------------------- trainer


TOPICS = ["apples", "boats", "cities", "dances", "engines", "forests"]
PERSONAS = [f"You are persona number {i} who writes about {w}." for i, w in enumerate(TOPICS)]


def planted(prompt: str, cont: str) -> float:
    """Persona 2 explains positive texts, persona 5 negative ones; the rest explain badly."""
    m = re.search(r"<Persona> You are persona number (\d)", prompt)
    k = int(m.group(1)) if m else -1
    positive = any(w in cont for w in POS)
    return -10.0 if (k == 2 and positive) or (k == 5 and not positive) else -30.0


GATE_LR = 0.1


def planted_problem(tmp: Path | None, epochs: int = 3, **fit_kw):
    pool = make_pool(24)
    enc = HashEncoder()
    mixture = Mixture(
        personas=PERSONAS,
        exemplar_slots=make_slots("gated", pool, 1, 0),
        exemplar_mode="gated",
        card=CardPrompt("Please write {context}."),
        prompt=TAGGED,
    )
    g, e = mixture.features(enc.encode)
    x = enc.encode([ex.context for ex in pool])
    fit = FitSpec(
        **{
            "n_train": 24,
            "epochs": epochs,
            "lr": 0.1,
            "gate_lr": GATE_LR,
            "proj_dim": 16,
            "train_batch_size": 8,
            **fit_kw,
        }
    )
    gates = MixtureGates(
        64, 16, 6, persona_gate=True, exemplar_gate=True, temperature="per_persona",
        tau_range=(0.5, 2.0), fixed_temperature=1.0, generator=torch.Generator().manual_seed(0),
        scale_max=fit.gate_scale_max,
    )  # fmt: skip
    grid = fit.temperature_grid
    lm = FakeLM(planted)
    cache = ScoreCache(tmp / "scores.jsonl" if tmp else None, len(grid))
    record = fit_mixture(mixture, gates, pool, x, g, e, lm, cache, fit=fit, grid=grid, seed=0)
    return pool, x, g, e, gates, lm, record, fit


def test_planted_persona_gate_learns_where_mass_belongs(tmp_path: Path) -> None:
    pool, x, g, _, gates, _, record, _ = planted_problem(tmp_path)
    with torch.no_grad():
        pi = gates.log_gates(torch.from_numpy(x), torch.from_numpy(g), None).exp()[:, :, 0]
    labels = np.array([ex.label for ex in pool])
    pi_pos = pi[labels == 1].mean(0)
    pi_neg = pi[labels == 0].mean(0)
    assert int(pi_pos.argmax()) == 2 and float(pi_pos[2]) > 0.5, pi_pos
    assert int(pi_neg.argmax()) == 5 and float(pi_neg[5]) > 0.5, pi_neg
    losses = [ep["loss"] for ep in record["epochs"]]
    assert losses[-1] < losses[0]
    # The taus of the planted personas learn; "trained" means the tau moved from its
    # start, and every persona with posterior mass at the end is among them.
    trained = record["personas_trained"]
    assert {2, 5} <= set(trained)
    first = record["epochs"][0]["taus"]
    mass = record["persona_responsibility"]
    assert all(k in trained for k, m in enumerate(mass) if m >= 1.0)
    assert sum(mass) == pytest.approx(24, rel=1e-6)  # one unit of posterior per row
    assert len(first) == len(mass) == 6


def test_scoring_is_counted_never_repeated_and_resumes(tmp_path: Path) -> None:
    _, _, _, _, gates, lm, record, fit = planted_problem(tmp_path)
    scored = [pair for call in lm.score_calls for pair in call]
    assert len(scored) == len(set(scored)) == record["lm_scorings"] > 0
    assert record["score_sequences"] == len(scored)
    # One LM call per block and epoch at most; a block scores its rows x its pairs.
    assert len(lm.score_calls) <= record["blocks"] * fit.epochs
    assert all(len(call) <= 8 * fit.candidates for call in lm.score_calls)
    assert sum(ep["new_scorings"] for ep in record["epochs"]) == len(scored)
    # Never an example as its own exemplar.
    for prompt, cont in scored:
        assert f": {cont}\n" not in prompt
    # A rerun on the persisted cache does no LM work and ends at the same gates.
    _, _, _, _, gates2, lm2, record2, _ = planted_problem(tmp_path)
    assert lm2.score_calls == [] and record2["cache_hits_from_disk"] == len(scored)
    for a, b in zip(gates.parameters(), gates2.parameters(), strict=True):
        assert torch.equal(a, b)


def test_rows_of_a_block_share_their_pairs(tmp_path: Path) -> None:
    """Sampled candidates are drawn per block: every row of a block is scored under the
    same (persona, exemplar) prompts, so the LM runs each prompt prefix once."""
    _, _, _, _, _, lm, record, _ = planted_problem(tmp_path, epochs=1)
    for call in lm.score_calls:
        prefixes = Counter(re.sub(r"Please write .*", "", prompt, flags=re.S) for prompt, _ in call)
        # 8 rows per block: a pair is shared by all of them (bar a row's own exemplar).
        assert max(prefixes.values()) >= 6, prefixes.most_common(2)
    cands = record["candidates"]
    assert cands["personas_never_compared"] == [] and cands["distinct_exemplars"] > 6


def test_torn_cache_line_is_rescored(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    cache = ScoreCache(path, 2)
    cache.add_many(["a", "b"], [np.array([-1.0, -2.0]), np.array([-3.0, -4.0])], [1, 1])
    with open(path, "a") as fh:
        fh.write('{"key": "c", "logp')
    again = ScoreCache(path, 2)
    assert len(again) == 2 and "c" not in again


def test_select_pairs_distinct_personas_and_exclusion() -> None:
    log_w = np.log(np.array([[0.5, 0.3, 0.1], [0.05, 0.03, 0.02]]))
    log_w[0, 0] = -np.inf  # excluded exemplar
    zero = np.zeros_like(log_w)
    assert select_pairs(log_w, 2, "pairs", zero) == [(0, 1), (0, 2)]
    assert select_pairs(log_w, 2, "distinct_personas", zero) == [(0, 1), (1, 0)]
    assert select_pairs(log_w, 4, "distinct_personas", zero) == [(0, 1), (1, 0), (0, 2), (1, 1)]
    assert len(select_pairs(log_w, 10, "pairs", zero)) == 5


# --------------------------------------------------------------------------- simulator


def baseline_specs() -> list[SimulatorSpec]:
    """Every bundled MoP configuration (literature generators: test_literature_*.py)."""
    paths = sorted(p for p in cards_dir("baselines").glob("*.yaml") if p.stem != "real")
    return [s for s in map(load_simulator_file, paths) if s.kind == "mop"]


def test_all_baselines_present() -> None:
    names = {s.name for s in baseline_specs()}
    assert {
        "mop", "fixed-few-shot", "temperature-only", "persona-only", "mop-no-exemplars",
        "mop-keyword-personas", "mop-random-personas", "mop-uniform-gating",
    } <= names  # fmt: skip
    assert all(s.description for s in baseline_specs())


@pytest.mark.parametrize("sim", baseline_specs(), ids=lambda s: s.name)
def test_each_baseline_prepares_and_simulates(sim: SimulatorSpec, tmp_path: Path) -> None:
    sim = SimulatorSpec(**{**sim.__dict__, "n_personas": 3})
    if sim.exemplar_selection == "picle":  # trains a LoRA: tests/test_picle.py, tiny Llama
        sim = SimulatorSpec(**{**sim.__dict__, "exemplar_selection": "seeded"})
    lm = FakeLM()
    simulator = MoPSimulator(make_inputs(sim, tmp_path, lm))
    record = simulator.prepare()
    assert (tmp_path / "fit.json").is_file() and (tmp_path / "gates.pt").is_file()
    chunks = [contexts(4), contexts(4, start=4)]
    gens = [g for chunk in simulator.simulate(chunks) for g in chunk]
    assert [g.index for g in gens] == list(range(8))
    sampling = [c for c in lm.generate_calls if "Describe the writer" not in c[0][0]]
    assert len(sampling) == 2  # one LM call per chunk
    for g in gens:
        d = g.details
        assert g.text and not g.text.startswith("Sure")
        assert (d["persona"] is None) == (sim.personas == "none")
        n_ex = 0 if sim.exemplars == "none" else sim.exemplars_per_prompt
        assert len(d["exemplar_uids"]) == n_ex
        if sim.temperature == "fixed":
            assert d["temperature"] == 1.0
    trains = record["train"]
    fits_something = sim.temperature != "fixed" or sim.gating == "learned"
    assert trains["trained"] == fits_something
    assert (trains["lm_scorings"] > 0) == fits_something
    assert len(record["personas"]) == (0 if sim.personas == "none" else 3)


def spec_named(name: str) -> SimulatorSpec:
    spec = next(s for s in baseline_specs() if s.name == name)
    return SimulatorSpec(**{**spec.__dict__, "n_personas": 3})


def test_temperature_only_fits_planted_temperature(tmp_path: Path) -> None:
    lm = FakeLM(best_tau=0.7, curvature=5.0)
    fit = FitSpec(n_train=16, epochs=8, lr=0.1)
    record = MoPSimulator(
        make_inputs(spec_named("temperature-only"), tmp_path, lm, fit=fit)
    ).prepare()
    assert record["taus"][0] == pytest.approx(0.7, abs=0.08)
    assert record["train"]["lm_scorings"] == 16  # one triple per example, scored once


def test_generation_is_deterministic_and_chunk_independent(tmp_path: Path) -> None:
    sim = spec_named("mop")
    a = MoPSimulator(make_inputs(sim, tmp_path / "a", FakeLM()))
    both = list(a.simulate([contexts(4), contexts(4, start=4)]))
    b = MoPSimulator(make_inputs(sim, tmp_path / "b", FakeLM()))
    alone = list(b.simulate([contexts(4, start=4)]))
    assert [g.to_json() for g in both[1]] == [g.to_json() for g in alone[0]]
    assert a.prepare()["taus"] == b.prepare()["taus"]
    other = MoPSimulator(make_inputs(sim, tmp_path / "c", FakeLM(), seed=4))
    assert [g.text for g in next(other.simulate([contexts(4)]))] != [g.text for g in both[0]]


def test_prepare_is_idempotent_and_refits_on_change(tmp_path: Path) -> None:
    sim = spec_named("mop")
    first = MoPSimulator(make_inputs(sim, tmp_path, FakeLM())).prepare()
    calls: list[int] = []
    again = MoPSimulator(make_inputs(sim, tmp_path, FakeLM(), calls=calls))
    record = again.prepare()
    assert record["reused"] and record["taus"] == first["taus"] and calls == []
    # Gates and personas were loaded, not refitted: generation still works.
    assert len(next(again.simulate([contexts(2)]))) == 2
    lm = FakeLM()
    changed = MoPSimulator(make_inputs(sim, tmp_path, lm, fit=TINY_FIT.__class__(
        **{**TINY_FIT.__dict__, "epochs": 1})))  # fmt: skip
    record = changed.prepare()
    assert not record["reused"] and len(record["train"]["epochs"]) == 1
    # Personas (same settings) are reused; the score cache is too: no rescoring.
    assert lm.generate_calls == [] and lm.score_calls == []


def test_gates_from_transfers_without_fitting(tmp_path: Path) -> None:
    sim = spec_named("mop")
    source = MoPSimulator(make_inputs(sim, tmp_path / "run1" / "fit", FakeLM())).prepare()
    other_lm = FakeLM(name="other-lm")
    target = MoPSimulator(
        make_inputs(sim, tmp_path / "run2" / "fit", other_lm, gates_from=tmp_path / "run1")
    )
    record = target.prepare()
    assert record["gates_from"].endswith("run1/fit")
    assert record["taus"] == source["taus"]
    assert [p["text"] for p in record["personas"]] == [p["text"] for p in source["personas"]]
    assert other_lm.score_calls == [] and other_lm.generate_calls == []
    assert len(next(target.simulate([contexts(3)]))) == 3
    wrong = MoPSimulator(
        make_inputs(
            spec_named("persona-only"), tmp_path / "run3", FakeLM(), gates_from=tmp_path / "run1"
        )
    )
    with pytest.raises(ValueError, match="exemplars"):
        wrong.prepare()


def test_fixed_few_shot_never_shows_own_example_when_fitting(tmp_path: Path) -> None:
    sim = SimulatorSpec(
        name="fs", personas="none", exemplars="fixed", exemplars_per_prompt=3,
        gating="uniform", temperature="one_fitted",
    )  # fmt: skip
    lm = FakeLM()
    fit = FitSpec(n_train=24, epochs=1)
    record = MoPSimulator(make_inputs(sim, tmp_path, lm, fit=fit)).prepare()
    (slot,) = record["fixed_exemplar_uids"]  # one set for every request without matching
    fixed = set(slot)
    pool = {ex.uid: ex for ex in make_pool()}
    n_examples = Counter()
    for prompt, cont in (p for call in lm.score_calls for p in call):
        assert f": {cont}\n" not in prompt
        n_examples[prompt.count("<Example>")] += 1
    assert n_examples == Counter({3: 24 - 3, 2: 3})
    assert all(uid in pool for uid in fixed)
