"""Plots as self-contained SVG data URIs (matplotlib, imported lazily, no pyplot).

An `<img src="data:image/svg+xml;base64,...">` can never run script, so a label or
persona text that reaches a plot cannot inject markup into the page; text is drawn as
paths, so no font is needed offline. Figures are built with `Figure` directly (not
pyplot) to leave global matplotlib state alone.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from typing import Any

import numpy as np

REAL_COLOR = "#1f6fb4"
SYNTH_COLOR = "#d9632b"
SERIES_COLORS = ["#1f6fb4", "#d9632b", "#2a9d4b", "#8e44ad", "#c0392b", "#7f8c8d", "#b7950b"]


def plain(text: Any) -> str:
    """`text` as literal plot text. Matplotlib parses anything between two `$` as
    mathtext: a label such as `costs $5 to $10` rendered as italic math, and `a$^$b`
    raised a parse error that lost the whole plot. An escaped `\\$` is drawn as `$`."""
    return str(text).replace("$", r"\$")


def _figure(width: float = 6.0, height: float = 3.6) -> Any:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    return fig


def _to_uri(fig: Any) -> str:
    import matplotlib

    buf = io.BytesIO()
    # Fixed hash salt and no date: the same data gives byte-identical reports.
    with matplotlib.rc_context({"svg.hashsalt": "mop-bench", "svg.fonttype": "path"}):
        # dpi only affects rasterized artists (the projection scatter), not vector parts.
        fig.savefig(buf, format="svg", dpi=150, metadata={"Date": None})
    return "data:image/svg+xml;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def cosine_histogram(bins: Sequence[float], real: Sequence[float], synth: Sequence[float]) -> str:
    """Pairwise-cosine distributions (probabilities per bin) of real vs synthetic texts."""
    edges = np.asarray(bins, dtype=float)
    r, s = np.asarray(real, dtype=float), np.asarray(synth, dtype=float)
    if len(edges) != len(r) + 1 or len(r) != len(s):
        raise ValueError(
            f"kl_cosine details: {len(edges)} bin edges for {len(r)} real and {len(s)} "
            "synthetic bins (need edges = bins + 1)"
        )
    fig = _figure()
    ax = fig.add_subplot()
    ax.stairs(r, edges, fill=True, alpha=0.35, color=REAL_COLOR, label="real (golden)")
    ax.stairs(s, edges, fill=True, alpha=0.35, color=SYNTH_COLOR, label="synthetic")
    ax.stairs(r, edges, color=REAL_COLOR, linewidth=1.2)
    ax.stairs(s, edges, color=SYNTH_COLOR, linewidth=1.2)
    nonzero = np.nonzero((r > 1e-4) | (s > 1e-4))[0]
    if len(nonzero):  # zoom on the occupied range; cosines rarely go below 0
        lo, hi = edges[max(nonzero[0] - 1, 0)], edges[min(nonzero[-1] + 2, len(edges) - 1)]
        ax.set_xlim(lo, hi)
    ax.set_xlabel("pairwise cosine similarity")
    ax.set_ylabel("share of pairs")
    ax.legend(frameon=False)
    ax.grid(alpha=0.25)
    return _to_uri(fig)


def pca_2d(real: np.ndarray, synth: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Project both sets on the top-2 principal axes of their union (numpy SVD).

    Returns the two projections and the explained-variance ratio of the two axes.
    """
    both = np.concatenate([real, synth]).astype(np.float64)
    center = both.mean(axis=0)
    _, sv, vt = np.linalg.svd(both - center, full_matrices=False)
    axes = vt[:2].T
    var = sv**2
    ratio = var[:2] / var.sum() if var.sum() > 0 else np.zeros(2)
    return (real - center) @ axes, (synth - center) @ axes, ratio


def _thin(n: int, cap: int) -> np.ndarray:
    # Evenly spaced indices: deterministic, needs no random state.
    return np.arange(n) if n <= cap else np.linspace(0, n - 1, cap).round().astype(int)


def projection(
    real: np.ndarray,
    synth: np.ndarray,
    real_labels: np.ndarray | None = None,
    synth_labels: np.ndarray | None = None,
    label_names: Sequence[str] = (),
    cap: int = 1500,
) -> str:
    """Scatter of real vs synthetic embeddings in a shared 2-D PCA; markers by label."""
    if real.ndim != 2 or synth.ndim != 2 or real.shape[1] != synth.shape[1]:
        raise ValueError(
            f"embeddings.npz: real {real.shape} and synth {synth.shape} must be 2-D with "
            "the same width"
        )
    pr, ps, ratio = pca_2d(real, synth)
    return projection_2d(pr, ps, ratio, real_labels, synth_labels, label_names, cap)


def projection_2d(
    pr: np.ndarray,
    ps: np.ndarray,
    ratio: np.ndarray,
    real_labels: np.ndarray | None = None,
    synth_labels: np.ndarray | None = None,
    label_names: Sequence[str] = (),
    cap: int = 1500,
) -> str:
    """The projection plot from points already projected (a published run keeps these
    instead of its embeddings: report/manifest.py)."""
    ir, is_ = _thin(len(pr), cap), _thin(len(ps), cap)
    markers = ["o", "^", "s", "D", "v", "P", "X", "*"]
    fig = _figure(6.0, 5.0)
    ax = fig.add_subplot()

    def scatter(points: np.ndarray, labels: np.ndarray | None, color: str, who: str) -> None:
        if labels is None or len(labels) != len(points) or (labels < 0).all():
            ax.scatter(
                points[:, 0], points[:, 1], s=9, alpha=0.45, color=color, label=who, rasterized=True
            )
            return
        for lab in sorted(set(labels.tolist())):
            sel = labels == lab
            name = label_names[lab] if 0 <= lab < len(label_names) else f"label {lab}"
            ax.scatter(
                points[sel, 0],
                points[sel, 1],
                s=9,
                alpha=0.45,
                color=color,
                marker=markers[lab % len(markers)] if lab >= 0 else "x",
                label=plain(f"{who}: {name}"),
                rasterized=True,
            )

    scatter(pr[ir], None if real_labels is None else real_labels[ir], REAL_COLOR, "real")
    scatter(ps[is_], None if synth_labels is None else synth_labels[is_], SYNTH_COLOR, "synthetic")
    ax.set_xlabel(f"PC 1 ({ratio[0]:.0%} of variance)")
    ax.set_ylabel(f"PC 2 ({ratio[1]:.0%} of variance)")
    # Below the axes, so the legend never hides points.
    fig.legend(loc="outside lower center", frameon=False, fontsize=7, ncols=4, markerscale=1.6)
    ax.grid(alpha=0.25)
    return _to_uri(fig)


def interval_plot(
    series: Sequence[
        tuple[str, Sequence[float], Sequence[float], Sequence[float | None], Sequence[float | None]]
    ],
    xlabel: str,
    ylabel: str,
    categorical: bool = False,
) -> str:
    """Means with interval bars: one line per series (name, xs, means, lows, highs).

    A point without an interval (one seed) is drawn as a hollow marker, without a bar.
    """
    fig = _figure(5.2, 3.4)
    ax = fig.add_subplot()
    for i, (name, xs, means, lows, highs) in enumerate(series):
        color = SERIES_COLORS[i % len(SERIES_COLORS)]
        x = np.arange(len(xs)) if categorical else np.asarray(xs, dtype=float)
        m = np.asarray(means, dtype=float)
        if not categorical:
            ax.plot(x, m, color=color, linewidth=1.2, label=plain(name))
        for xi, mi, lo, hi in zip(x, m, lows, highs, strict=True):
            if lo is None or hi is None:
                ax.plot([xi], [mi], marker="o", mfc="white", color=color)
            else:
                ax.errorbar(
                    [xi], [mi], yerr=[[mi - lo], [hi - mi]], fmt="o", color=color, capsize=4
                )
        if categorical:
            ax.set_xticks(x, [plain(v) for v in xs], rotation=20, ha="right")
        elif len(xs) <= 12:
            ax.set_xticks(x, [f"{v:g}" for v in x])  # only the values actually swept
    ax.set_xlabel(plain(xlabel))
    ax.set_ylabel(plain(ylabel))
    if not categorical and len(series) > 1:
        ax.legend(frameon=False, fontsize=8)
    ax.grid(alpha=0.25)
    return _to_uri(fig)


#: Marker colour and fill per paired verdict against the reference.
_VERDICT_STYLE = {
    "better": ("#1e7b3a", True, "better than the reference (Holm-corrected)"),
    "worse": ("#c0392b", True, "worse than the reference (Holm-corrected)"),
    "tie": ("#5d6675", False, "tie (not separated after correction)"),
}


def difference_plot(
    rows: Sequence[tuple[str, float | None, float | None, float | None, str]],
    *,
    metric: str,
    reference: str,
    higher_is_better: bool,
) -> str:
    """Paired differences from `reference`, one row per (name, difference, low, high,
    verdict); verdict 'better'/'worse'/'tie' sets the marker, 'not tested' a note."""
    from matplotlib.lines import Line2D

    n = len(rows)
    fig = _figure(5.6, 1.5 + 0.42 * n)
    ax = fig.add_subplot()
    ys = np.arange(n)[::-1]  # the first row on top, as in the tables
    span: list[float] = [0.0]
    seen: list[str] = []
    for y, (_, diff, lo, hi, verdict) in zip(ys, rows, strict=True):
        if diff is None or lo is None or hi is None or verdict not in _VERDICT_STYLE:
            ax.text(0.0, y, "not tested", ha="center", va="center", fontsize=8, color="#5d6675")
            continue
        color, filled, _ = _VERDICT_STYLE[verdict]
        seen.append(verdict)
        span += [lo, hi]
        ax.errorbar(
            [diff],
            [y],
            xerr=[[diff - lo], [hi - diff]],
            fmt="o",
            color=color,
            mfc=color if filled else "white",
            mew=1.5,
            ms=7,
            capsize=4,
        )
    ax.axvline(0.0, color="#1d2330", linewidth=1.0, linestyle="--")
    lo_x, hi_x = min(span), max(span)
    pad = 0.08 * (hi_x - lo_x) or 1.0
    ax.set_xlim(lo_x - pad, hi_x + pad)
    ax.set_yticks(ys, [plain(r[0]) for r in rows])
    ax.set_ylim(-0.7, n - 0.3)
    ax.set_xlabel(plain(f"{metric}: simulator − {reference}"))
    # Which side is better, on the axes: a reader should not need the caption for it.
    left, right = ("worse", "better") if higher_is_better else ("better", "worse")
    ax.text(
        0.0,
        1.01,
        plain(f"← {left} than {reference}"),
        transform=ax.transAxes,
        ha="left",
        va="bottom",
        fontsize=8,
    )
    ax.text(
        1.0,
        1.01,
        plain(f"{right} than {reference} →"),
        transform=ax.transAxes,
        ha="right",
        va="bottom",
        fontsize=8,
    )
    handles = [
        Line2D(
            [],
            [],
            marker="o",
            linestyle="",
            color=color,
            mfc=color if filled else "white",
            mew=1.5,
            label=label,
        )
        for v, (color, filled, label) in _VERDICT_STYLE.items()
        if v in seen
    ]
    if handles:
        fig.legend(handles=handles, loc="outside lower center", frameon=False, fontsize=7, ncols=2)
    ax.grid(alpha=0.25, axis="x")
    return _to_uri(fig)


def persona_mass(
    mass: Sequence[float], taus: Sequence[float] | None, trained: set[int] | None
) -> str:
    """Per persona: share of the posterior mass (bars) and fitted temperature (diamonds)."""
    share = np.asarray(mass, dtype=float) / float(np.sum(mass))
    x = np.arange(len(share))
    colors = [
        SERIES_COLORS[0] if trained is None or k in trained else "#9aa3b0" for k in range(len(x))
    ]
    fig = _figure(6.0, 3.2)
    ax = fig.add_subplot()
    ax.bar(x, share, color=colors)
    ax.set_xlabel("persona (# of the persona table)")
    ax.set_ylabel("share of posterior mass")
    ax.set_xticks(x, [str(k) for k in x], fontsize=7 if len(x) > 20 else 9)
    ax.grid(alpha=0.25, axis="y")
    if taus is not None:
        right = ax.twinx()
        moved = [trained is None or k in trained for k in range(len(x))]
        right.scatter(x, taus, marker="D", s=16, c=[SYNTH_COLOR if m else "#9aa3b0" for m in moved])
        right.set_ylabel("fitted temperature", color=SYNTH_COLOR)
        lo, hi = min(taus), max(taus)
        right.set_ylim(min(0.0, lo - 0.1), hi + 0.1)
    return _to_uri(fig)


def loss_curve(xs: Sequence[float], ys: Sequence[float], xlabel: str) -> str:
    """A training loss over passes or epochs."""
    fig = _figure(5.0, 3.0)
    ax = fig.add_subplot()
    ax.plot(xs, ys, marker="o", color=REAL_COLOR)
    ax.set_xlabel(plain(xlabel))
    ax.set_ylabel("training loss")
    ax.grid(alpha=0.25)
    return _to_uri(fig)
