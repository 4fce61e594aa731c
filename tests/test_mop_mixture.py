"""MoP stays a mixture: planted exemplars are found, flat landscapes do not collapse, the
collapse detector fires on a fit that does, and the held-out likelihood is exact or
unbiased as it claims. Fake LM and hashed bag-of-words features: seconds, not minutes.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from mop_bench.mop import MoPSimulator
from mop_bench.mop.diagnostics import gate_diagnostics, generation_diagnostics, verdict
from mop_bench.mop.fit import fit_mixture
from mop_bench.mop.fitted import FittedModel
from mop_bench.mop.gates import MixtureGates
from mop_bench.mop.heldout import heldout_loglik
from mop_bench.mop.mixture import Mixture, make_slots
from mop_bench.mop.prompts import CardPrompt
from mop_bench.mop.sample import FittedMixture
from mop_bench.mop.scoring import ScoreCache
from mop_bench.spec import FitSpec, SimulatorSpec
from tests.fake_lm import FakeLM
from tests.test_mop import TAGGED, HashEncoder, contexts, make_inputs, make_pool, spec_named

SENTIMENT = re.compile(r"(positive|negative) review")


def label_planted(prompt: str, cont: str) -> float:
    """+3 nats when the exemplar's sentiment is the request's, whatever the text."""
    ex = re.search(r"<Example> You have written a (positive|negative)", prompt)
    req = re.search(r"Please write a (positive|negative)", prompt)
    same = ex is not None and req is not None and ex.group(1) == req.group(1)
    return -20.0 + (3.0 if same else 0.0)


def noise_planted(prompt: str, cont: str) -> float:
    """A flat landscape: every exemplar equally good up to +-1 nat of per-pair noise."""
    ex = re.search(r"<Example> (.*)", prompt)
    h = hashlib.sha256(f"{ex.group(1) if ex else ''}|{cont}".encode()).digest()
    return -20.0 + (int.from_bytes(h[:4], "little") / 2**32 * 2 - 1)


def exemplar_problem(planted, n_pool: int = 40, *, match: tuple[str, ...] = (), **fit_kw):
    pool = make_pool(n_pool)
    enc = HashEncoder()
    mixture = Mixture(
        personas=[],
        exemplar_slots=make_slots("gated", pool, 1, 0),
        exemplar_mode="gated",
        card=CardPrompt("Please write {context}."),
        prompt=TAGGED,
        exemplar_match=match,
    )
    _, e = mixture.features(enc.encode)
    x = enc.encode([ex.context for ex in pool])
    fit = FitSpec(
        **{
            "n_train": n_pool,
            "epochs": 4,
            "lr": 0.1,
            "proj_dim": 16,
            "train_batch_size": 8,
            **fit_kw,
        }
    )
    gates = MixtureGates(
        64, 16, 1, persona_gate=False, exemplar_gate=True, temperature="one_fitted",
        tau_range=(0.5, 2.0), fixed_temperature=1.0, generator=torch.Generator().manual_seed(0),
        scale_max=fit.gate_scale_max, logits=fit.gate_logits,
    )  # fmt: skip
    lm = FakeLM(planted)
    cache = ScoreCache(None, len(fit.temperature_grid))
    record = fit_mixture(
        mixture, gates, pool, x, None, e, lm, cache, fit=fit, grid=fit.temperature_grid, seed=0
    )
    with torch.no_grad():
        allowed = torch.from_numpy(mixture.allowed(pool))
        log_w = gates.log_gates(torch.from_numpy(x), None, torch.from_numpy(e), allowed).numpy()
    return pool, mixture, gates, log_w, record


def test_planted_exemplars_take_the_mass_without_collapsing() -> None:
    """An exemplar of the request's label is worth +3 nats: after the fit at least 0.9
    of the exemplar gate's mass is on label-matching exemplars, spread over many."""
    pool, _, _, log_w, _ = exemplar_problem(label_planted)
    omega = np.exp(log_w[:, 0, :])
    labels = np.array([ex.label for ex in pool])
    same = labels[:, None] == labels[None, :]
    mass = (omega * same).sum(1)
    assert mass.mean() >= 0.9, mass
    diag = gate_diagnostics(log_w, None)
    # 19 label-matching exemplars per row (own excluded): far more than one in use.
    assert diag["effective_exemplars"] >= 5, diag


def test_flat_landscape_stays_spread_and_the_legacy_fit_is_flagged() -> None:
    """Nothing to learn (per-pair noise only): the default fit keeps the gate spread.
    The legacy configuration (deterministic top-M, renormalised, the paper's unbounded
    dot-product logits) collapses on the same problem, and the collapse verdict says so."""
    *_, log_w, _record = exemplar_problem(noise_planted)
    diag = gate_diagnostics(log_w, None)
    assert diag["effective_exemplars"] >= 15, diag  # of 39 allowed
    assert diag["top_exemplar_weight_mean"] < 0.2, diag
    assert not verdict(diag, None, gated=True, personas=1)["collapsed"]
    # An aggressive gate learning rate: the legacy gate (deterministic top-4,
    # renormalised, unbounded dot products) collapses; the default gate does not.
    *_, legacy_w, legacy_rec = exemplar_problem(
        noise_planted,
        selection="distinct_personas",
        renormalize_top_m=True,
        gate_logits="dot",
        gate_entropy=0.0,
        inner_steps=1,
        gate_lr=0.3,
    )
    legacy = gate_diagnostics(legacy_w, None)
    assert legacy["effective_exemplars"] < 2, legacy
    assert legacy_rec["candidates"]["distinct_exemplars"] < 20  # rich get richer
    assert verdict(legacy, None, gated=True, personas=1)["collapsed"]
    *_, fast_w, _ = exemplar_problem(noise_planted, gate_lr=0.3)
    assert gate_diagnostics(fast_w, None)["effective_exemplars"] >= 5


def test_exemplar_match_restricts_fit_and_generation() -> None:
    pool, mixture, gates, log_w, _ = exemplar_problem(noise_planted, match=("label",), epochs=1)
    labels = np.array([ex.label for ex in pool])
    mismatch = labels[:, None] != labels[None, :]
    assert np.all(np.exp(log_w[:, 0, :])[mismatch] == 0)
    enc = HashEncoder()
    _, e = mixture.features(enc.encode)
    fitted = FittedMixture.build(mixture, gates, None, e)
    h = enc.encode([pool[3].context]).astype(np.float64)[0]
    probs = fitted.exemplar_probs(h, 0, mixture.allowed([pool[3]])[0])
    assert probs[labels != pool[3].label].sum() == 0 and probs[3] == 0  # own example too


def test_numpy_sampling_gates_match_the_torch_gates() -> None:
    pool, mixture, gates, log_w, _ = exemplar_problem(label_planted, epochs=1)
    enc = HashEncoder()
    _, e = mixture.features(enc.encode)
    fitted = FittedMixture.build(mixture, gates, None, e)
    allowed = mixture.allowed(pool)
    x = enc.encode([ex.context for ex in pool]).astype(np.float64)
    for r in (0, 7, 21):
        probs = fitted.exemplar_probs(x[r], 0, allowed[r])
        np.testing.assert_allclose(probs, np.exp(log_w[r, 0]), rtol=1e-9, atol=1e-12)


def test_diagnostics_and_verdict() -> None:
    w = np.full((4, 2, 5), 1 / 10)
    d = gate_diagnostics(np.log(w), trained_personas=[0])
    assert d["effective_personas"] == pytest.approx(2)
    assert d["effective_exemplars"] == pytest.approx(5)
    assert d["taus_never_trained"] == [1] and d["share_taus_never_trained"] == 0.5
    rows = [
        {"label": 1, "details": {"exemplar_uids": ["a"], "exemplar_labels": [1], "persona_index": 0}},
        {"label": 0, "details": {"exemplar_uids": ["a"], "exemplar_labels": [1], "persona_index": 0}},
        {"label": 0, "details": {"exemplar_uids": ["b"], "exemplar_labels": [0], "persona_index": 1}},
    ]  # fmt: skip
    g = generation_diagnostics(rows)
    assert g["distinct_exemplars"] == 2 and g["top_exemplar"] == "a"
    assert g["top_exemplar_share"] == pytest.approx(2 / 3)
    assert g["exemplar_label_match"] == pytest.approx(2 / 3)
    v = verdict(d, g, gated=True, personas=2)
    assert v["collapsed"] and "one exemplar (a)" in v["reasons"][0]
    assert not verdict(d, g, gated=False, personas=2)["collapsed"]


# --------------------------------------------------------------------------- held out


def _persona_mixture(
    n_pool: int = 12,
) -> tuple[list, Mixture, MixtureGates, np.ndarray, np.ndarray]:
    pool = make_pool(n_pool)
    enc = HashEncoder()
    mixture = Mixture(
        personas=["You are a poet.", "You are a chef.", "You are a critic."],
        exemplar_slots=make_slots("gated", pool, 1, 0),
        exemplar_mode="gated",
        card=CardPrompt("Please write {context}."),
        prompt=TAGGED,
    )
    g, e = mixture.features(enc.encode)
    gates = MixtureGates(
        64, 16, 3, persona_gate=True, exemplar_gate=True, temperature="per_persona",
        tau_range=(0.5, 2.0), fixed_temperature=1.0, generator=torch.Generator().manual_seed(1),
        tau_init=0.8,
    )  # fmt: skip
    with torch.no_grad():  # a non-uniform gate, so importance weights matter
        gates.scale_pi.fill_(1.0)
        gates.scale_omega.fill_(1.0)
    return pool, mixture, gates, g, e


def _golden(n: int) -> list:
    return [replace(ex, uid=f"test:{ex.uid}") for ex in make_pool(n)]


def test_heldout_exact_sum_when_pairs_are_few() -> None:
    _pool, mixture, gates, g, e = _persona_mixture(n_pool=4)  # 3 x 4 = 12 pairs
    golden = _golden(6)
    x = HashEncoder().encode([ex.context for ex in golden])
    lm = FakeLM(noise_planted, best_tau=0.8)
    model = FittedModel.build(mixture, gates, g, e)
    res, _ = heldout_loglik(
        model, golden, x, lm, cache_path=None, draws=12, block_size=3,
        max_tokens=32, seed=0,
    )  # fmt: skip
    assert res["estimator"] == "exact"
    with torch.no_grad():
        log_w = gates.log_gates(
            torch.from_numpy(x), torch.from_numpy(g), torch.from_numpy(e),
            torch.from_numpy(mixture.allowed(golden)),
        ).numpy()  # fmt: skip
    taus = gates.taus().detach().numpy()
    for r, ex in enumerate(golden):
        terms = []
        for k in range(3):
            for j in range(4):
                msgs, _ = mixture.render(ex.context, ex.fields, k, j)
                lp = lm.score([msgs], [ex.text], temperatures=(float(taus[k]),))[0].logprob[0]
                terms.append(log_w[r, k, j] + lp)
        assert res["rows"][r]["logprob"] == pytest.approx(np.logaddexp.reduce(terms), abs=1e-9)
    assert res["value"] == pytest.approx(
        -sum(row["logprob"] for row in res["rows"]) / sum(row["n_tokens"] for row in res["rows"])
    )


def test_heldout_sampled_estimate_is_unbiased_and_a_bound_in_expectation() -> None:
    _pool, mixture, gates, g, e = _persona_mixture(n_pool=12)  # 36 pairs, 4 drawn
    golden = _golden(4)
    x = HashEncoder().encode([ex.context for ex in golden])
    lm = FakeLM(noise_planted, best_tau=0.8)
    model = FittedModel.build(mixture, gates, g, e)
    exact, _ = heldout_loglik(
        model, golden, x, lm, cache_path=None, draws=64, block_size=4,
        max_tokens=32, seed=0,
    )  # fmt: skip
    assert exact["estimator"] == "exact"
    runs = [
        heldout_loglik(
            model,
            golden,
            x,
            lm,
            cache_path=None,
            draws=4,
            block_size=4,
            max_tokens=32,
            seed=s,
        )[0]
        for s in range(300)
    ]
    assert {r["estimator"] for r in runs} == {"importance_sampled"}
    for i in range(len(golden)):
        truth = exact["rows"][i]["logprob"]
        logs = np.array([r["rows"][i]["logprob"] for r in runs])
        # E[p_hat] = p (relative error of a 300-draw mean), E[log p_hat] <= log p.
        ratio = math.exp(np.logaddexp.reduce(logs) - math.log(len(logs)) - truth)
        assert ratio == pytest.approx(1.0, abs=0.1)
        assert logs.mean() <= truth + 1e-9


def test_persona_label_match_restricts_the_gate_everywhere(tmp_path: Path) -> None:
    """With `persona_label_match`, a request is served only by personas whose cluster
    majority is its label: in generation, in the gate weights the fit and `heldout_nll`
    use, and in the fit's candidate blocks. Without it, both labels' personas serve."""
    from mop_bench.mop.candidates import make_blocks

    spec = SimulatorSpec(**{**spec_named("mop").__dict__, "n_personas": 4})
    matched = SimulatorSpec(**{**spec.__dict__, "persona_label_match": True})
    sim = MoPSimulator(make_inputs(matched, tmp_path / "m", FakeLM()))
    sim.prepare()
    mix = sim._model.mixture
    labels = mix.persona_labels
    assert set(labels) == {0, 1}  # the planted pool's clusters split by sentiment
    gens = [g for c in sim.simulate([contexts(8)]) for g in c]
    assert all(labels[g.details["persona_index"]] == g.label for g in gens)
    rows = make_pool()[:6]
    log_w = sim._model.log_weights(rows, sim._encode([r.context for r in rows]))
    for r, row in enumerate(rows):
        other = [k for k, lab in enumerate(labels) if lab != row.label]
        assert np.isneginf(log_w[r, other]).all()
        assert np.isfinite(log_w[r]).any()
    for block in make_blocks(rows, mix, mix.allowed(rows), 4, np.random.default_rng(0)):
        want = {rows[i].label for i in block.rows}
        assert len(want) == 1
        ok = block.allowed.any(axis=1)
        assert all(ok[k] == (lab in want) for k, lab in enumerate(labels))
    free = MoPSimulator(make_inputs(spec, tmp_path / "f", FakeLM()))
    drawn = [g for c in free.simulate([contexts(8)]) for g in c]
    assert any(labels[g.details["persona_index"]] != g.label for g in drawn)
