"""Paired comparisons: every pair of simulators in a comparable group, per metric, with a
bootstrap difference, a Holm-corrected verdict, and ranks from those verdicts.

The inputs are each run's `embeddings.npz` (golden and synthetic embeddings, synthetic
rows in sample-index order) and `metrics.json` (values, settings, held-out NLL rows).
They are checked before use: a run whose golden set or sample count does not match the
rest of its seed is not paired (and the table says so), and held-out NLL rows must add
up to the recorded value. Draws are cached per run in `<comparison>/paired_cache/`,
keyed by the SHA-256 of the run's metrics.json and embeddings.npz and the bootstrap
settings, so re-rendering a comparison does not recompute them. A published copy of a
run keeps no embeddings.npz, but its published.json records the file's SHA-256: its key
is the full run's, and its draws (hence its verdicts) are the full run's.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mop_bench.report import bootstrap as bs
from mop_bench.report.aggregate import Group
from mop_bench.report.load import METRICS, RunData
from mop_bench.report.manifest import omitted
from mop_bench.report.paired_inputs import (
    EMBEDDINGS,
    RunInputs,
    check_pairing,
    golden_key,
    kl_settings,
    load_inputs,
    mauve_settings,
)

log = logging.getLogger(__name__)

CACHE_DIR = "paired_cache"


@dataclass
class PairResult:
    metric: str
    a: str
    b: str
    seeds: list[int]
    draws: int
    test: bs.DiffTest | None = None
    note: str = ""
    """Why the pair was not tested, or which seeds it had to leave out."""
    p_holm: float | None = None
    better: str | None = None
    """The simulator the Holm-corrected test finds better; None for a tie or no test."""

    @property
    def verdict(self) -> str:
        if self.test is None:
            return "not tested"
        return "tie" if self.better is None else f"{self.better} better"


@dataclass
class PairedAnalysis:
    settings: bs.BootstrapSettings
    metrics: list[str]
    pairs: dict[str, list[PairResult]]
    n_synth: list[int]
    n_real: list[int]
    seeds: list[int]
    seconds: dict[str, float]
    """Seconds spent computing draws in this call, per metric (empty when all came
    from the cache)."""
    draws: dict[tuple[str, int], dict[str, np.ndarray]] = field(default_factory=dict)
    """Each (simulator, seed)'s draws per metric: the paired simulators' and those of
    `analyse(also=...)` (kept for the normalised score, report/normalised.py)."""
    sizes: dict[int, tuple[int, int]] = field(default_factory=dict)
    """(synthetic, golden) row counts per seed: what `bootstrap.resample_indices` drew."""


# ----------------------------------------------------------------------------- draws


def _digest(run: RunData, name: str) -> bytes:
    path = run.path / name
    if path.is_file():
        return hashlib.sha256(path.read_bytes()).digest()
    entry = omitted(run.path, name)  # a published copy: the left-out file's digest
    return bytes.fromhex(entry["sha256"]) if entry is not None else b"<absent>"


def _run_key(run: RunData, settings: bs.BootstrapSettings) -> str:
    h = hashlib.sha256(json.dumps(settings.draw_key(), sort_keys=True).encode())
    h.update(f"\0{run.sim}\0{run.seed}\0".encode())
    for name in (METRICS, EMBEDDINGS):
        h.update(_digest(run, name))
    return h.hexdigest()[:32]


def _legacy_key(run: RunData, settings: bs.BootstrapSettings) -> str | None:
    """The key caches were written under before it hashed digests (the files' bytes
    themselves): those entries are still found, and copied under the current key."""
    if not (run.path / EMBEDDINGS).is_file():
        return None
    h = hashlib.sha256(json.dumps(settings.draw_key(), sort_keys=True).encode())
    h.update(f"\0{run.sim}\0{run.seed}\0".encode())
    for name in (METRICS, EMBEDDINGS):
        h.update((run.path / name).read_bytes())
    return h.hexdigest()[:32]


def _read_cache(path: Path, wanted: list[str], settings: bs.BootstrapSettings) -> dict | None:
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            got = {k: npz[k] for k in npz.files}
    except (OSError, ValueError):
        log.warning("%s: unreadable cache entry, recomputing", path)
        return None
    ok = all(k in got and got[k].shape == (settings.draws_for(k),) for k in wanted)
    return got if ok else None


def _write_cache(path: Path, draws: dict[str, np.ndarray]) -> None:
    import io
    import os

    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    np.savez(buf, **draws)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(buf.getvalue())
    os.replace(tmp, path)


@contextlib.contextmanager
def _timed(timing: dict[str, float], key: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        timing[key] = timing.get(key, 0.0) + time.perf_counter() - start


def seed_draws(
    inputs: list[RunInputs],
    seed: int,
    settings: bs.BootstrapSettings,
    timing: dict[str, float] | None = None,
) -> dict[str, dict[str, np.ndarray]]:
    """Draws per simulator and metric for the runs of one seed. Each run is resampled
    against its own golden embeddings (runs with byte-identical ones share the work), so
    a run's draws do not depend on which runs are computed with it. Pure: no cache.
    Seconds spent per metric are added to `timing`."""
    timing = {} if timing is None else timing
    out: dict[str, dict[str, np.ndarray]] = {i.run.sim: {} for i in inputs}
    by_golden: dict[bytes, list[RunInputs]] = {}
    for i in inputs:
        if i.real is not None and i.synth is not None:
            by_golden.setdefault(golden_key(i), []).append(i)
    for members in by_golden.values():
        for sim, draws in _embedding_draws(members, seed, settings, timing).items():
            out[sim].update(draws)
    for i in inputs:
        if i.nll is not None:
            _, logprob, n_tokens = i.nll
            gen = bs.rng(settings, seed, "heldout_nll")
            with _timed(timing, "heldout_nll"):
                idx = gen.integers(0, len(logprob), (settings.draws, len(logprob)))
                out[i.run.sim]["heldout_nll"] = bs.nll_draws(logprob, n_tokens, idx)
    return out


def _embedding_draws(
    members: list[RunInputs], seed: int, settings: bs.BootstrapSettings, timing: dict[str, float]
) -> dict[str, dict[str, np.ndarray]]:
    """FID, KL-cosine and MAUVE draws of runs sharing one golden set and sample count."""
    real = members[0].real
    assert real is not None and members[0].synth is not None
    out: dict[str, dict[str, np.ndarray]] = {i.run.sim: {} for i in members}
    idx_s, idx_r = bs.resample_indices(settings, seed, len(members[0].synth), len(real))
    n, m = settings.draws, settings.mauve_draws
    fid_runs = [i for i in members if "fid" not in i.missing]
    if fid_runs:
        with _timed(timing, "fid"):
            vals = bs.fid_draws(real, [i.synth for i in fid_runs], idx_s[:n], idx_r[:n])
        for k, i in enumerate(fid_runs):
            out[i.run.sim]["fid"] = vals[k]
    kl_runs = [i for i in members if "kl_cosine" not in i.missing]
    for cfg in sorted({kl_settings(i.run) for i in kl_runs}, key=repr):
        same = [i for i in kl_runs if kl_settings(i.run) == cfg]
        with _timed(timing, "kl_cosine"):
            real_pairs = bs.pair_bins(
                real, members[0].real_labels, cfg, bs.rng(settings, seed, "kl_real")
            )
            synth_pairs = [
                bs.pair_bins(i.synth, i.synth_labels, cfg, bs.rng(settings, seed, "kl_synth"))
                for i in same
            ]
            vals = bs.kl_draws(real_pairs, synth_pairs, idx_s[:n], idx_r[:n], cfg)
        for k, i in enumerate(same):
            out[i.run.sim]["kl_cosine"] = vals[k]
    for i in members:
        if "mauve" not in i.missing:
            kseed, scaling = mauve_settings(i.run)
            with _timed(timing, "mauve"):
                out[i.run.sim]["mauve"] = bs.mauve_draws(
                    real, i.synth, idx_s[:m], idx_r[:m], kmeans_seed=kseed, scaling=scaling
                )
    return out


def _draws_with_cache(
    inputs: list[RunInputs],
    seed: int,
    settings: bs.BootstrapSettings,
    cache: Path | None,
    timing: dict[str, float],
    read_also: tuple[Path, ...] = (),
) -> dict[str, dict[str, np.ndarray]]:
    got: dict[str, dict[str, np.ndarray]] = {}
    todo: list[RunInputs] = []
    paths: dict[str, Path] = {}
    for i in inputs:
        wanted = [m for m in bs.PAIRED_METRICS if m not in i.missing]
        name = f"{_run_key(i.run, settings)}.npz"
        if cache is not None:
            paths[i.run.sim] = cache / name
        entry, found = None, None
        legacy = _legacy_key(i.run, settings)
        for key in [name] + ([f"{legacy}.npz"] if legacy else []):
            for folder in ([cache] if cache is not None else []) + list(read_also):
                entry = _read_cache(folder / key, wanted, settings)
                if entry is not None:
                    found = folder / key
                    break
            if entry is not None:
                break
        if entry is None:
            todo.append(i)
            continue
        got[i.run.sim] = {m: entry[m] for m in wanted}
        if cache is not None and found != paths[i.run.sim]:
            _write_cache(paths[i.run.sim], got[i.run.sim])
    if todo:
        fresh = seed_draws(todo, seed, settings, timing)
        for i in todo:
            got[i.run.sim] = fresh[i.run.sim]
            if i.published:  # no embeddings to draw from: those metrics are not paired
                why = f"{i.run.sim}: {EMBEDDINGS} was not published and no cached draws match"
                for m in ("fid", "mauve", "kl_cosine"):
                    i.missing.setdefault(m, why)
            elif cache is not None:
                _write_cache(paths[i.run.sim], fresh[i.run.sim])
    return got


# ----------------------------------------------------------------------------- pairs


def analyse(
    group: Group,
    cache: Path | None,
    settings: bs.BootstrapSettings | None = None,
    *,
    read_also: tuple[Path, ...] = (),
    also: tuple[str, ...] = (),
) -> PairedAnalysis:
    """Paired tests for every pair of non-calibration simulators in `group`.

    A run's draws depend only on the run and `settings`, so entries cached by another
    page (`read_also`: e.g. the comparisons' caches, for the leaderboard) are reused
    as they are, and the tests come out identical to that page's. Simulators named in
    `also` (the calibration row, for the normalised score) get draws from the same
    resamples, checked against the same golden set, but are never paired or ranked.
    """
    settings = settings or bs.BootstrapSettings()
    sims = [s for s in sorted(group.sims) if s not in group.calibration]
    extra = [s for s in also if s in group.sims and s not in sims]
    # One simulator (beside the calibration row) has nothing to be paired with.
    metrics = [m for m in bs.PAIRED_METRICS if m in group.metrics] if len(sims) > 1 else []
    if not metrics:
        return PairedAnalysis(settings, [], {}, [], [], [], {})
    by_seed: dict[int, list[RunInputs]] = {}
    for sim in sims + extra:
        seen: set[int] = set()
        for run in group.runs_of(sim):
            if run.seed not in seen:  # one run per simulator and seed
                seen.add(run.seed)
                by_seed.setdefault(run.seed, []).append(load_inputs(run))
    draws: dict[tuple[str, int], dict[str, np.ndarray]] = {}
    seconds: dict[str, float] = {}
    for seed, inputs in sorted(by_seed.items()):
        check_pairing(inputs)
        got = _draws_with_cache(inputs, seed, settings, cache, seconds, read_also)
        for sim, d in got.items():
            draws[(sim, seed)] = d
    if seconds:
        log.info(
            "paired bootstrap draws computed (cached in %s): %s",
            cache,
            ", ".join(f"{m} {t:.1f} s" for m, t in seconds.items()),
        )
    sizes = {seed: i.sizes for seed, ins in by_seed.items() for i in ins if i.sizes is not None}
    # Only the paired simulators' runs: the power line describes their design.
    by_seed = {seed: [i for i in ins if i.run.sim in sims] for seed, ins in by_seed.items()}
    index = {(i.run.sim, s): i for s, ins in by_seed.items() for i in ins}
    pairs: dict[str, list[PairResult]] = {}
    for m in metrics:
        hib = group.higher_is_better(m)
        results = [
            _pair(m, a, b, index, draws, settings) for a, b in itertools.combinations(sims, 2)
        ]
        tested = [r for r in results if r.test is not None]
        for r, adj in zip(tested, bs.holm([r.test.p for r in tested if r.test]), strict=True):
            r.p_holm = adj
            if adj <= settings.alpha and r.test is not None and r.test.difference != 0:
                a_better = (r.test.difference > 0) == hib
                r.better = r.a if a_better else r.b
        pairs[m] = results
    emb = [i.sizes for ins in by_seed.values() for i in ins if i.sizes is not None]
    return PairedAnalysis(
        settings=settings,
        metrics=metrics,
        pairs=pairs,
        n_synth=sorted({n for n, _ in emb}),
        n_real=sorted({n for _, n in emb}),
        seeds=sorted(by_seed),
        seconds=seconds,
        draws=draws,
        sizes=sizes,
    )


def _pair(
    metric: str,
    a: str,
    b: str,
    index: dict[tuple[str, int], RunInputs],
    draws: dict[tuple[str, int], dict[str, np.ndarray]],
    settings: bs.BootstrapSettings,
) -> PairResult:
    seeds_a = {s for (sim, s) in index if sim == a}
    seeds_b = {s for (sim, s) in index if sim == b}
    used, skipped = [], []
    for s in sorted(seeds_a | seeds_b):
        ia, ib = index.get((a, s)), index.get((b, s))
        why = (
            f"{a if ia is None else b} has no run"
            if ia is None or ib is None
            else ia.missing.get(metric) or ib.missing.get(metric)
        )
        if why is None and metric == "heldout_nll" and ia.nll and ib.nll and ia.nll[0] != ib.nll[0]:
            why = "the two runs scored different held-out subsets"
        (skipped if why else used).append((s, why))
    result = PairResult(metric, a, b, [s for s, _ in used], settings.draws_for(metric))
    by_reason: dict[str, list[int]] = {}
    for s, why in skipped:
        by_reason.setdefault(str(why), []).append(s)
    result.note = "; ".join(
        f"{why} (seed{'s' * (len(ss) > 1)} {', '.join(map(str, ss))})"
        for why, ss in by_reason.items()
    )
    if not used:
        return result
    diff = np.mean(
        [index[(a, s)].run.value(metric) - index[(b, s)].run.value(metric) for s, _ in used]
    )
    pooled = np.mean([draws[(a, s)][metric] - draws[(b, s)][metric] for s, _ in used], axis=0)
    result.test = bs.diff_test(float(diff), pooled, settings.alpha, settings.power)
    return result


def apply_ranks(group: Group, analysis: PairedAnalysis) -> None:
    """Rank = 1 + the number of simulators that beat this one in a corrected paired test."""
    for m in analysis.metrics:
        for sim in group.sims:
            cell = group.cells[(sim, m)]
            if cell.rank is None:
                continue
            cell.rank = 1 + sum(
                1 for r in analysis.pairs[m] if sim in (r.a, r.b) and r.better not in (None, sim)
            )
