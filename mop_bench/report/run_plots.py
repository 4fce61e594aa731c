"""The run page's plots: the pairwise-cosine histograms and the 2-D projection (from
the embeddings, or from a published copy's projected points)."""

from __future__ import annotations

from mop_bench.report.load import RunData
from mop_bench.report.manifest import PROJECTION, left_out_note


def cosine_plot(run: RunData) -> dict[str, str]:
    res = run.metrics.get("kl_cosine")
    if res is None:
        failed = run.errors.get("kl_cosine")
        return {
            "error": f"kl_cosine failed ({failed})"
            if failed
            else "no kl_cosine result in metrics.json"
        }
    d = res.get("details") or {}
    edges = d.get("bin_edges", d.get("bins"))
    if not isinstance(edges, list) or "real_hist" not in d or "synth_hist" not in d:
        return {"error": "metrics.json: kl_cosine.details lacks bin_edges / real_hist / synth_hist"}
    from mop_bench.report import plots

    try:
        return {"uri": plots.cosine_histogram(edges, d["real_hist"], d["synth_hist"])}
    except ValueError as exc:
        return {"error": f"metrics.json: {exc}"}


def projection(run: RunData) -> dict[str, str]:
    path = run.path / "embeddings.npz"
    if not path.is_file():
        return _published_projection(run) or {"error": f"{path.name} not found"}
    import numpy as np

    from mop_bench.report import plots

    with np.load(path, allow_pickle=False) as npz:
        missing = [k for k in ("real", "synth") if k not in npz.files]
        if missing:
            return {
                "error": f"{path.name}: arrays {', '.join(missing)} missing "
                f"(has {', '.join(npz.files)})"
            }
        arrays = {k: npz[k] for k in npz.files}
    try:
        uri = plots.projection(
            arrays["real"],
            arrays["synth"],
            arrays.get("real_labels"),
            arrays.get("synth_labels"),
            run.label_names,
        )
    except ValueError as exc:
        return {"error": f"{path.name}: {exc}"}
    return {"uri": uri, "n_real": str(len(arrays["real"])), "n_synth": str(len(arrays["synth"]))}


def _published_projection(run: RunData) -> dict[str, str] | None:
    """The projection from a published copy's projected points (projection.npz)."""
    note = left_out_note(run.path, "embeddings.npz")
    path = run.path / PROJECTION
    if note is None or not path.is_file():
        return {"error": note} if note else None
    import numpy as np

    from mop_bench.report import plots

    try:
        with np.load(path, allow_pickle=False) as npz:
            a = {k: npz[k] for k in npz.files}
        uri = plots.projection_2d(
            a["real"],
            a["synth"],
            a["ratio"],
            a.get("real_labels"),
            a.get("synth_labels"),
            run.label_names,
        )
    except (KeyError, OSError, ValueError) as exc:
        return {"error": f"{path.name}: unreadable ({exc})"}
    return {"uri": uri, "n_real": str(len(a["real"])), "n_synth": str(len(a["synth"]))}
