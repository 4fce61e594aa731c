"""Reading what a run contributes to a paired comparison, checked before it is trusted.

A run contributes its `embeddings.npz` (golden and synthetic embeddings, synthetic rows
in sample-index order), its recorded metric values and settings, and its held-out NLL
rows. Whatever is absent is recorded as a reason (shown in the paired table), never
replaced by a default; whatever is present but inconsistent stops with a one-line error
naming the file.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mop_bench.report import bootstrap as bs
from mop_bench.report.load import METRICS, RunData
from mop_bench.report.manifest import omitted

EMBEDDINGS = "embeddings.npz"
#: Golden embeddings of two runs of one seed closer than this are the same golden set.
SAME_GOLDEN_ATOL = 1e-5


@dataclass
class RunInputs:
    """What a run contributes to the bootstrap, and why a metric cannot (by metric)."""

    run: RunData
    real: np.ndarray | None = None
    synth: np.ndarray | None = None
    real_labels: np.ndarray | None = None
    synth_labels: np.ndarray | None = None
    nll: tuple[tuple[str, ...], np.ndarray, np.ndarray] | None = None
    """(uids sorted, logprob, n_tokens) of the held-out NLL rows, in uid order."""
    missing: dict[str, str] = field(default_factory=dict)
    sizes: tuple[int, int] | None = None
    """(synthetic, golden) row counts: of the embeddings, or as a published copy records."""
    golden: str | None = None
    """golden_digest of the golden embeddings (published copies record it)."""
    published: bool = False
    """A published copy: no embeddings, so FID, MAUVE and KL-cosine draws come only
    from the cache (report/manifest.py)."""


def load_inputs(run: RunData) -> RunInputs:
    """A run's embeddings and NLL rows, checked; what is absent is recorded, not invented."""
    out = RunInputs(run)
    for m in bs.PAIRED_METRICS:
        if run.value(m) is None:
            out.missing[m] = f"{run.sim} has no {m}"
    path = run.path / EMBEDDINGS
    entry = None if path.is_file() else omitted(run.path, EMBEDDINGS)
    if path.is_file():
        _read_embeddings(path, out)
        assert out.real is not None and out.synth is not None
        out.sizes = (len(out.synth), len(out.real))
    elif entry is not None and _published_sizes(entry) is not None:
        out.published, out.sizes = True, _published_sizes(entry)
        out.golden = str(entry.get("golden") or "") or None
    else:
        for m in ("fid", "mauve", "kl_cosine"):
            out.missing.setdefault(m, f"{run.sim}: {EMBEDDINGS} not found")
    if "heldout_nll" not in out.missing:
        out.nll = _nll_rows(run)
    return out


def _published_sizes(entry: dict[str, Any]) -> tuple[int, int] | None:
    n_synth, n_real = entry.get("n_synth"), entry.get("n_real")
    ok = all(isinstance(n, int) and n > 0 for n in (n_synth, n_real))
    return (int(n_synth), int(n_real)) if ok else None


def _read_embeddings(path: Path, out: RunInputs) -> None:
    from mop_bench.metrics.base import check_embeddings

    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: unreadable ({exc})") from exc
    for key in ("real", "synth"):
        if key not in arrays:
            raise ValueError(f"{path}: array {key!r} missing (has {', '.join(arrays)})")
    try:
        out.real = check_embeddings("real", arrays["real"])
        out.synth = check_embeddings("synth", arrays["synth"], dim=out.real.shape[1])
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
    for key, n in (("real_labels", len(out.real)), ("synth_labels", len(out.synth))):
        labels = arrays.get(key)
        if labels is not None and labels.shape != (n,):
            raise ValueError(f"{path}: {key} has shape {labels.shape}, expected ({n},)")
        setattr(out, key, labels)
    # Embeddings written by an older scoring than metrics.json would pair the wrong texts.
    for m in ("fid", "mauve"):
        details = (out.run.metrics.get(m) or {}).get("details") or {}
        for key, arr in (("n_real", out.real), ("n_synth", out.synth)):
            if isinstance(details.get(key), int) and details[key] != len(arr):
                raise ValueError(
                    f"{path}: {key} is {len(arr)} but {out.run.path / METRICS} records "
                    f"{details[key]} for {m}; re-score the run"
                )


def _nll_rows(run: RunData) -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
    where = f"{run.path / METRICS}: heldout_nll.details.rows"
    rows = (run.metrics["heldout_nll"].get("details") or {}).get("rows")
    if not isinstance(rows, list) or not rows:
        raise ValueError(f"{where} must be a non-empty list")
    parsed: dict[str, tuple[float, int]] = {}
    for n, row in enumerate(rows):
        uid = row.get("uid") if isinstance(row, dict) else None
        lp = row.get("logprob") if isinstance(row, dict) else None
        nt = row.get("n_tokens") if isinstance(row, dict) else None
        ok = isinstance(uid, str) and isinstance(lp, int | float) and math.isfinite(lp)
        if not ok or lp > 0 or not isinstance(nt, int) or isinstance(nt, bool) or nt < 1:
            raise ValueError(f"{where}[{n}]: needs uid (str), logprob (<= 0), n_tokens (>= 1)")
        if uid in parsed:
            raise ValueError(f"{where}[{n}]: uid {uid!r} appears twice")
        parsed[uid] = (float(lp), nt)
    uids = tuple(sorted(parsed))
    logprob = np.array([parsed[u][0] for u in uids])
    n_tokens = np.array([parsed[u][1] for u in uids], dtype=np.float64)
    value = -logprob.sum() / n_tokens.sum()
    recorded = run.value("heldout_nll")
    if recorded is None or not math.isclose(value, recorded, rel_tol=1e-6, abs_tol=1e-9):
        raise ValueError(f"{where} give {value:.6g} nats/token, but the value is {recorded}")
    return uids, logprob, n_tokens


# ----------------------------------------------------------------------------- settings


def _setting(run: RunData, metric: str, key: str, spec_key: str) -> Any:
    """A metric setting as metrics.json recorded it, else the run spec's MetricSpec."""
    settings = (run.metrics.get(metric) or {}).get("settings") or {}
    if key in settings:
        return settings[key]
    spec = run.spec.get("metrics") or {}
    if spec_key in spec:
        value = spec[spec_key]
        return value[0] if spec_key == "mauve_seeds" else value
    raise ValueError(f"{run.path / METRICS}: {metric} records no setting {key!r}")


def kl_settings(run: RunData) -> bs.KLSettings:
    return bs.KLSettings(
        bins=int(_setting(run, "kl_cosine", "bins", "kl_bins")),
        epsilon=float(_setting(run, "kl_cosine", "epsilon", "kl_epsilon")),
        max_pairs=int(_setting(run, "kl_cosine", "max_pairs", "kl_max_pairs")),
        within_label=bool(_setting(run, "kl_cosine", "within_label", "kl_within_label")),
    )


def mauve_settings(run: RunData) -> tuple[int, float]:
    from mop_bench.metrics.mauve import LIBRARY_DEFAULTS

    recorded = (run.metrics.get("mauve") or {}).get("settings") or {}
    for key, default in LIBRARY_DEFAULTS.items():
        if key in recorded and recorded[key] != default:
            raise ValueError(
                f"{run.path / METRICS}: MAUVE ran with {key}={recorded[key]!r}; this "
                f"version computes it with {default!r}, so its bootstrap would differ"
            )
    seed = int(_setting(run, "mauve", "reported_seed", "mauve_seeds"))
    return seed, float(_setting(run, "mauve", "scaling", "mauve_scaling"))


def check_pairing(inputs: list[RunInputs]) -> None:
    """Runs of one seed must share the golden set and the sample count to be paired
    (published copies, without embeddings: the same recorded golden digest)."""
    ref = next((i for i in inputs if i.real is not None), None)
    ref = ref or next((i for i in inputs if i.sizes is not None), None)
    if ref is None or ref.sizes is None:
        return
    for i in inputs:
        if i is ref or i.sizes is None:
            continue
        if i.real is not None and ref.real is not None:
            same = i.sizes == ref.sizes and np.allclose(
                i.real, ref.real, rtol=0.0, atol=SAME_GOLDEN_ATOL
            )
        else:
            key = golden_key(ref)
            same = i.sizes == ref.sizes and key is not None and golden_key(i) == key
        if not same:
            why = (
                f"{i.run.sim}: golden set or sample count differs from {ref.run.sim}'s (not paired)"
            )
            for m in ("fid", "mauve", "kl_cosine"):
                i.missing.setdefault(m, why)
            i.real = i.synth = i.sizes = None
            i.published = False


def golden_digest(real: np.ndarray) -> str:
    """SHA-256 of golden embeddings and their shape (published copies record it)."""
    return hashlib.sha256(real.tobytes() + str(real.shape).encode()).hexdigest()


def golden_key(i: RunInputs) -> str | None:
    """Runs with equal keys hold byte-identical golden embeddings (they share work)."""
    if i.real is not None:
        return golden_digest(i.real)
    return i.golden
