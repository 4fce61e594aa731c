"""Metrics against values computed independently of the code under test (closed forms,
hand-computed histograms, planted copies, separable clusters)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import linalg

from mop_bench.metrics import METRICS, register_metric, score_all
from mop_bench.metrics.copy_rate import copy_rate
from mop_bench.metrics.downstream import downstream_f1
from mop_bench.metrics.fid import FrechetNumericalError, fid, frechet_distance
from mop_bench.metrics.kl_cosine import kl_cosine, pairwise_cosines
from mop_bench.metrics.label_fidelity import label_fidelity
from mop_bench.metrics.mauve import mauve_score
from mop_bench.metrics.per_label import per_label
from mop_bench.spec import MetricSpec


def _rotation(d: int, rng: np.random.Generator) -> np.ndarray:
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    return q


def _commuting_case(rng: np.random.Generator, d: int = 4):
    """Two covariances sharing eigenvectors: FID has the closed form
    |mu1 - mu2|^2 + sum_i (sqrt(a_i) - sqrt(b_i))^2."""
    r = _rotation(d, rng)
    a, b = rng.uniform(0.5, 2.0, d), rng.uniform(0.5, 2.0, d)
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    expected = float(np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2))
    return mu1, (r * a) @ r.T, mu2, (r * b) @ r.T, expected


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


# ----------------------------------------------------------------------------- FID


def test_frechet_closed_form_on_exact_covariances() -> None:
    mu1, s1, mu2, s2, expected = _commuting_case(np.random.default_rng(1))
    value, terms = frechet_distance(mu1, s1, mu2, s2)
    assert value == pytest.approx(expected, rel=1e-10)
    assert terms["mean_term"] == pytest.approx(float(np.sum((mu1 - mu2) ** 2)))


def test_frechet_eigh_matches_scipy_sqrtm_on_non_commuting_covariances() -> None:
    rng = np.random.default_rng(2)
    d = 20
    a, b = rng.normal(size=(d, 3 * d)), rng.normal(size=(d, 3 * d))
    s1, s2 = a @ a.T / (3 * d), b @ b.T / (3 * d)
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    # Reference computed here, straight from the definition with scipy's sqrtm.
    root = linalg.sqrtm(s1 @ s2)
    ref = float(np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * np.real(root)))
    for method in ("svd", "eigh", "sqrtm"):
        value = frechet_distance(mu1, s1, mu2, s2, method=method)[0]
        assert value == pytest.approx(ref, rel=1e-9), method


def test_fid_of_samples_approaches_closed_form() -> None:
    rng = np.random.default_rng(3)
    mu1, s1, mu2, s2, expected = _commuting_case(rng)
    x = rng.multivariate_normal(mu1, s1, size=60_000)
    y = rng.multivariate_normal(mu2, s2, size=60_000)
    assert fid(x, y).value == pytest.approx(expected, rel=0.03)


def test_fid_identical_is_zero_and_shift_is_squared_norm() -> None:
    rng = np.random.default_rng(4)
    x = rng.normal(size=(500, 16)).astype(np.float32)
    shift = rng.normal(size=16).astype(np.float32)
    assert abs(fid(x, x).value) < 1e-8
    assert fid(x, x + shift).value == pytest.approx(
        float(shift.astype(np.float64) @ shift), rel=1e-5
    )


def test_fid_rank_deficient_covariance_fewer_texts_than_dims() -> None:
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(40, 100)), rng.normal(size=(30, 100)) + 0.1
    assert abs(fid(x, x).value) < 1e-10
    # With S = Xc^T Xc / (n-1), Tr((S_x S_y)^(1/2)) is the nuclear norm of
    # Xc Yc^T / sqrt((n_x-1)(n_y-1)): an independent route for singular covariances.
    xc, yc = x - x.mean(0), y - y.mean(0)
    nuclear = np.linalg.svd(xc @ yc.T / np.sqrt(39 * 29), compute_uv=False).sum()
    ref = (
        np.sum((x.mean(0) - y.mean(0)) ** 2)
        + np.trace(np.cov(x, rowvar=False))
        + np.trace(np.cov(y, rowvar=False))
        - 2 * nuclear
    )
    assert fid(x, y).value == pytest.approx(ref, rel=1e-10)


def test_frechet_rejects_non_psd_instead_of_returning_a_number() -> None:
    bad = np.diag([1.0, -1.0])
    with pytest.raises(FrechetNumericalError):
        frechet_distance(np.zeros(2), bad, np.zeros(2), np.eye(2))


def test_fid_needs_two_rows() -> None:
    with pytest.raises(ValueError, match="at least 2 rows"):
        fid(np.ones((1, 3)), np.ones((5, 3)))


# ----------------------------------------------------------------------------- KL-cosine


def test_kl_cosine_hand_computed_two_bins() -> None:
    e1 = np.array([1.0, 0.0], dtype=np.float32)
    # real cosines: (0,1)=1, (0,2)=-1, (1,2)=-1 -> bins [-1,0),[0,1]: counts [2, 1]
    real = np.stack([e1, e1, -e1])
    # synthetic cosines: all 1 -> counts [0, 3]
    synth = np.stack([e1, e1, e1])
    eps = 0.01
    p = (np.array([2 / 3, 1 / 3]) + eps) / (1 + 2 * eps)
    q = (np.array([0.0, 1.0]) + eps) / (1 + 2 * eps)
    expected = float(np.sum(p * np.log(p / q)))
    result = kl_cosine(real, synth, rng=np.random.default_rng(0), bins=2, epsilon=eps)
    assert result.value == pytest.approx(expected, rel=1e-9)
    assert result.details["bin_edges"] == [-1.0, 0.0, 1.0]
    assert result.details["real_hist"] == pytest.approx(p.tolist())


def test_kl_cosine_identical_zero_and_collapse_scores_far_worse() -> None:
    rng = np.random.default_rng(6)
    real = _unit(rng.normal(size=(300, 16)))
    diverse = _unit(rng.normal(size=(300, 16)))
    collapsed = _unit(rng.normal(size=16) + 0.05 * rng.normal(size=(300, 16)))
    kl = {
        name: kl_cosine(real, s, rng=np.random.default_rng(0)).value
        for name, s in [("same", real), ("diverse", diverse), ("collapsed", collapsed)]
    }
    assert kl["same"] == pytest.approx(0.0, abs=1e-12)
    assert kl["diverse"] < 0.1
    assert kl["collapsed"] > 5.0
    assert kl["collapsed"] > 50 * kl["diverse"]


def test_kl_cosine_subsampling_is_seeded_and_close_to_full() -> None:
    rng = np.random.default_rng(7)
    x = rng.normal(size=(400, 8)) + 0.5  # not unit-norm: cosine normalises rows itself
    full, info_full = pairwise_cosines(x, max_pairs=10**9, rng=np.random.default_rng(0))
    sub, info = pairwise_cosines(x, max_pairs=5000, rng=np.random.default_rng(1))
    again, _ = pairwise_cosines(x, max_pairs=5000, rng=np.random.default_rng(1))
    assert info_full == {
        "n_pairs_total": 400 * 399 // 2,
        "n_pairs_used": 79_800,
        "subsampled": False,
    }
    assert info["subsampled"] and sub.size == 5000
    np.testing.assert_array_equal(sub, again)
    assert abs(float(sub.mean()) - float(full.mean())) < 0.02
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    assert full.max() <= 1.0 and full[0] == pytest.approx(float(xn[0] @ xn[1]), abs=1e-5)


def test_kl_cosine_within_label_uses_only_same_label_pairs() -> None:
    e1 = np.array([1.0, 0.0])
    x = np.stack([e1, e1, -e1, -e1])
    labels = np.array([0, 0, 1, 1])
    within = kl_cosine(
        x,
        x,
        rng=np.random.default_rng(0),
        bins=2,
        epsilon=0.0,
        within_label=True,
        real_labels=labels,
        synth_labels=labels,
    )
    # Within labels every pair has cosine 1; globally 4 of the 6 pairs have -1.
    assert within.details["real_hist"] == [0.0, 1.0]
    glob = kl_cosine(x, x, rng=np.random.default_rng(0), bins=2, epsilon=0.0)
    assert glob.details["real_hist"] == pytest.approx([4 / 6, 2 / 6])
    assert within.settings["within_label"] is True


# ----------------------------------------------------------------------------- MAUVE


def test_mauve_same_distribution_high_separated_low() -> None:
    rng = np.random.default_rng(8)
    centers = rng.normal(size=(5, 16)) * 3

    def draw(n: int, offset: float = 0.0) -> np.ndarray:
        return (centers[rng.integers(0, 5, n)] + rng.normal(size=(n, 16)) + offset).astype(
            np.float32
        )

    real = draw(400)
    same = mauve_score(real, draw(400), seeds=(25,)).value
    far = mauve_score(real, draw(400, offset=20.0), seeds=(25,)).value
    assert same > 0.9
    assert far < 0.1


def test_mauve_reports_first_seed_and_spread() -> None:
    rng = np.random.default_rng(9)
    real, synth = rng.normal(size=(300, 8)), rng.normal(size=(300, 8)) + 0.3
    result = mauve_score(real, synth, seeds=(25, 26))
    per_seed = result.details["per_seed"]
    assert result.value == per_seed["25"]
    assert result.details["min"] == min(per_seed.values())
    assert result.details["num_buckets"] == 30  # library default n/10
    assert result.higher_is_better


# ----------------------------------------------------------------------------- copy rate


def test_copy_rate_finds_planted_embedding_copies() -> None:
    rng = np.random.default_rng(10)
    pool = _unit(rng.normal(size=(50, 32)))
    synth = _unit(rng.normal(size=(20, 32)))
    synth[3], synth[7] = pool[11], pool[42]
    texts = [f"synthetic text number {i}" for i in range(20)]
    pool_texts = [f"a pool text {i}" for i in range(50)]
    result = copy_rate(synth, pool, texts, pool_texts, cosine_threshold=0.95, ngram=8)
    assert result.value == pytest.approx(2 / 20)
    assert result.details["n_by_cosine"] == 2 and result.details["n_by_ngram"] == 0
    found = {(e["synth_index"], e["pool_index"]) for e in result.details["examples"]}
    assert found == {(3, 11), (7, 42)}


def test_copy_rate_ngram_path_is_case_and_punctuation_blind() -> None:
    rng = np.random.default_rng(11)
    pool = _unit(rng.normal(size=(3, 32)))
    synth = _unit(rng.normal(size=(3, 32)))
    pool_texts = ["x", "The food here was cold, the staff rude and the bill wrong.", "y"]
    synth_texts = [
        "honestly THE FOOD HERE WAS COLD the staff rude and the bill was fine",  # 8 shared
        "food here was cold the staff rude",  # only 7 words: too short to copy
        "a completely different review",
    ]
    result = copy_rate(synth, pool, synth_texts, pool_texts, ngram=8)
    assert result.details["n_by_ngram"] == 1
    example = result.details["examples"][0]
    assert example["synth_index"] == 0 and example["pool_index"] == 1
    assert example["ngram"] == "the food here was cold the staff rude"


# ----------------------------------------------------------------------------- classifiers


def _clusters(rng: np.random.Generator, n: int, k: int = 3, d: int = 16):
    centers = rng.normal(size=(k, d)) * 4
    y = rng.integers(0, k, n)
    return (centers[y] + rng.normal(size=(n, d))).astype(np.float32), y, centers


def test_downstream_and_label_fidelity_separable_vs_shuffled() -> None:
    rng = np.random.default_rng(12)
    _, _, centers = _clusters(rng, 1)

    def draw(n: int):
        y = rng.integers(0, 3, n)
        return (centers[y] + rng.normal(size=(n, 16))).astype(np.float32), y

    (synth, sy), (real, ry), (pool, py) = draw(300), draw(400), draw(200)
    names = ("a", "b", "c")
    good = downstream_f1(synth, sy, real, ry, pool, py, label_names=names, rng=rng)
    shuffled = rng.permutation(sy)
    bad = downstream_f1(synth, shuffled, real, ry, pool, py, label_names=names, rng=rng)
    assert good.value > 0.95 and good.details["real_pool_f1"] > 0.95
    assert bad.value < 0.6
    fid_good = label_fidelity(synth, sy, pool, py, label_names=names, rng=rng)
    fid_bad = label_fidelity(synth, shuffled, pool, py, label_names=names, rng=rng)
    assert fid_good.value > 0.95
    assert 0.15 < fid_bad.value < 0.55  # chance is 1/3
    cm = np.array(fid_good.details["confusion_matrix"])
    assert cm.sum() == 300 and np.trace(cm) == round(fid_good.value * 300)


def test_downstream_needs_two_synthetic_labels() -> None:
    rng = np.random.default_rng(13)
    x, y, _ = _clusters(rng, 60)
    with pytest.raises(ValueError, match="synthetic set has 1 distinct label"):
        downstream_f1(x, np.zeros(60, int), x, y, x, y, label_names=("a", "b", "c"), rng=rng)


def test_per_label_shift_and_skip() -> None:
    rng = np.random.default_rng(14)
    real = rng.normal(size=(200, 8))
    labels = np.repeat([0, 1], 100)
    shift = np.zeros(8)
    shift[0] = 0.5
    synth = real + np.where(labels[:, None] == 1, shift, 0.0)
    synth_labels = labels.copy()
    synth_labels[101:] = 2  # "b" keeps one synthetic text, "c" has no real text
    result = per_label(real, labels, synth, synth_labels, label_names=("a", "b", "c"), rng=rng)
    assert result.details["labels"]["a"]["fid"] == pytest.approx(0.0, abs=1e-8)
    assert "b" in result.details["skipped"] and "c" in result.details["skipped"]
    assert result.value == pytest.approx(0.0, abs=1e-8)

    shifted = per_label(real, labels, synth, labels, label_names=("a", "b"), rng=rng)
    assert shifted.details["labels"]["b"]["fid"] == pytest.approx(0.25, rel=1e-6)


# ----------------------------------------------------------------------------- score_all


def _inputs(rng: np.random.Generator, labelled: bool = True) -> dict:
    real, ry, _ = _clusters(rng, 300)
    synth, sy, _ = _clusters(rng, 250)
    pool, py, _ = _clusters(rng, 120)
    return {
        "real": real,
        "synth": synth,
        "real_labels": ry if labelled else None,
        "synth_labels": sy if labelled else None,
        "pool": pool,
        "pool_labels": py if labelled else None,
        "pool_texts": [f"pool {i}" for i in range(120)],
        "synth_texts": [f"synthetic {i}" for i in range(250)],
        "label_names": ("a", "b", "c"),
        "spec": MetricSpec(mauve_seeds=(25,)),
        "seed": 0,
    }


def test_score_all_every_metric_and_label_errors() -> None:
    results, errors = score_all(**_inputs(np.random.default_rng(15)))
    assert list(results) == [
        "fid",
        "mauve",
        "kl_cosine",
        "copy_rate",
        "format",
        "downstream_f1",
        "label_fidelity",
        "per_label",
    ]
    assert errors == {}
    assert results["kl_cosine"].settings["bins"] == 50
    for result in results.values():  # every result must survive the run directory's JSON
        json.dumps(result.to_json(), allow_nan=False)

    results, errors = score_all(**_inputs(np.random.default_rng(15), labelled=False))
    assert set(errors) == {"downstream_f1", "label_fidelity", "per_label"}
    assert "needs labels" in errors["per_label"]
    assert {"fid", "mauve", "kl_cosine", "copy_rate"} <= set(results)


def test_score_all_records_a_failing_metric_and_rejects_bad_input() -> None:
    args = _inputs(np.random.default_rng(16))
    args["synth_labels"] = np.zeros(250, dtype=int)
    results, errors = score_all(**args, names=["fid", "downstream_f1"])
    assert set(results) == {"fid"} and "at least 2" in errors["downstream_f1"]

    bad = _inputs(np.random.default_rng(16))
    bad["synth"][17, 3] = np.nan
    with pytest.raises(ValueError, match=r"synth: .*row 17"):
        score_all(**bad)
    bad = _inputs(np.random.default_rng(16))
    bad["pool_labels"][5] = 7
    with pytest.raises(ValueError, match="pool_labels: row 5 has label 7"):
        score_all(**bad)
    with pytest.raises(KeyError, match="did you mean 'mauve'"):
        score_all(**_inputs(np.random.default_rng(16)), names=["mauv"])


def test_user_metric_is_a_file(tmp_path) -> None:
    path = tmp_path / "mean_norm.py"
    path.write_text(
        "import numpy as np\n"
        "from mop_bench.types import MetricResult\n"
        "def score(inputs):\n"
        "    v = float(np.linalg.norm(inputs.synth, axis=1).mean())\n"
        "    return MetricResult('mean_norm', v, {}, {})\n"
    )
    register_metric("test_mean_norm", f"{path}:score")
    try:
        args = _inputs(np.random.default_rng(17))
        results, _ = score_all(**args, names=["test_mean_norm"])
        expected = float(np.linalg.norm(args["synth"], axis=1).mean())
        assert results["test_mean_norm"].value == pytest.approx(expected)
    finally:
        METRICS._entries.pop("test_mean_norm")


def test_importing_metrics_loads_no_heavy_library() -> None:
    import subprocess
    import sys

    code = (
        "import sys, mop_bench.metrics\n"
        "heavy = {'torch', 'sklearn', 'mauve', 'scipy', 'transformers', 'faiss'}\n"
        "print(sorted(heavy & set(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
