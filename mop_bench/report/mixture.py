"""The run report's view of a MoP-family fit: personas by their real index, what the
samples drew, gate diagnostics, and a visible flag when the mixture has collapsed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mop_bench.report.load import RunData, read_json_file


def personas_view(personas_path: Path, mixture: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Personas in index order (the index `generations.jsonl` records as
    `persona_index`), each with its share of the samples and a statistics line."""
    raw = read_json_file(personas_path)
    if isinstance(raw, dict):  # MoP writes {"personas": [...], "settings": {...}}
        raw = raw.get("personas")
    if not isinstance(raw, list):
        raise ValueError(f"{personas_path}: expected a list of personas")
    shares = ((mixture or {}).get("generation") or {}).get("persona_shares") or {}
    out = []
    for n, p in enumerate(raw):
        if not isinstance(p, dict) or "text" not in p:
            raise ValueError(f"{personas_path}: entry {n}: needs a 'text' field")
        out.append(
            {
                "index": n,
                "text": p["text"],
                "source": p.get("source", ""),
                "cluster_size": p.get("cluster_size"),
                "share": shares.get(str(n), 0.0 if shares else None),
                "stats": _stats_line(p.get("stats")),
                "raw": p.get("raw") if p.get("source") != "synthesized" else None,
                "examples": p.get("example_texts") or [],
            }
        )
    return out


def _stats_line(stats: dict[str, Any] | None) -> str:
    if not isinstance(stats, dict):
        return ""
    bits = [f"{name} {share:.0%}" for name, share in (stats.get("labels") or [])[:2]]
    for field, values in (stats.get("fields") or {}).items():
        bits.append(f"{field}: " + ", ".join(f"{v} {s:.0%}" for v, s in values[:2]))
    if stats.get("median_words"):
        bits.append(f"median {stats['median_words']} words")
    if stats.get("keywords"):
        bits.append("words: " + ", ".join(stats["keywords"]))
    return "; ".join(bits)


def diagnostics_view(run: RunData) -> dict[str, Any] | None:
    """Rows for the diagnostics table and the collapse flag (None for non-MoP runs)."""
    mix = run.mixture
    if not mix:
        return None
    fit = mix.get("fit") or {}
    held = mix.get("heldout_gates") or {}
    gen = mix.get("generation") or {}
    rows: list[tuple[str, Any]] = []

    def add(label: str, value: Any) -> None:
        if value is not None:
            rows.append((label, value))

    add("effective personas per context (fit)", fit.get("effective_personas"))
    add("effective personas over all contexts (fit)", fit.get("effective_personas_marginal"))
    add("effective exemplars per context (fit)", fit.get("effective_exemplars"))
    add("effective exemplars over all contexts (fit)", fit.get("effective_exemplars_marginal"))
    add("effective exemplars per context (held-out contexts)", held.get("effective_exemplars"))
    add("temperatures never trained (share)", fit.get("share_taus_never_trained"))
    add("samples", gen.get("samples"))
    add("distinct exemplars drawn", gen.get("distinct_exemplars"))
    if gen.get("top_exemplar"):
        add(
            "top exemplar (share of samples)",
            f"{gen['top_exemplar']} ({gen['top_exemplar_share']:.1%})",
        )
    add("distinct personas drawn", gen.get("distinct_personas"))
    add("top persona share", gen.get("top_persona_share"))
    add("exemplar label = requested label", gen.get("exemplar_label_match"))
    sources = mix.get("persona_sources") or {}
    if sources:
        add("persona sources", ", ".join(f"{k} {v}" for k, v in sorted(sources.items())))
    return {
        "rows": rows,
        "collapsed": bool(mix.get("collapsed")),
        "reasons": mix.get("reasons") or [],
    }


# ----------------------------------------------------------------------------- the fit

#: Fewer points than this make a line that says nothing (two epochs: a 2-point "curve").
MIN_CURVE_POINTS = 3


def fit_view(run_dir: Path, mixture: dict[str, Any] | None) -> dict[str, Any] | None:
    """Personas, fit plots, cost and settings of a MoP-family fit (None without a fit).

    Plots only what the fit record can show: each persona's posterior mass at the end of
    the fit beside its temperature (`train.persona_responsibility`, `taus`), and the
    training loss per pass over the blocks (`train.steps`) when there are at least
    MIN_CURVE_POINTS passes; an old record's per-epoch `curve` likewise. Else no plot.
    """
    fit_path = run_dir / "fit" / "fit.json"
    personas_path = run_dir / "fit" / "personas.json"
    if not fit_path.is_file() and not personas_path.is_file():
        return None
    out: dict[str, Any] = {"personas": [], "plots": [], "cost": [], "settings": []}
    if personas_path.is_file():
        out["personas"] = personas_view(personas_path, mixture)
    if not fit_path.is_file():
        return out
    from mop_bench.report.render import flatten, show

    fit = read_json_file(fit_path)
    if not isinstance(fit, dict):
        raise ValueError(f"{fit_path}: expected a JSON object")
    train = fit.get("train") or {}
    try:
        out["plots"] = _fit_plots(fit, train)
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{fit_path}: unreadable fit record for its plots ({exc})") from exc
    scoring = fit.get("scoring") or {
        k: train[k]
        for k in ("lm_scorings", "score_tokens", "score_seconds", "blocks", "cache_hits_from_disk")
        if k in train
    }
    out["cost"] = [(f"scoring.{k}", v) for k, v in scoring.items()]
    synthesis = fit.get("persona_synthesis") or {}
    out["cost"] += [(f"persona_synthesis.{k}", v) for k, v in synthesis.items()]
    if "wall_seconds" in fit:
        out["cost"].append(("wall_seconds", fit["wall_seconds"]))
    out["settings"] = [(k, show(v)) for k, v in flatten(fit.get("settings") or {})]
    return out


def _fit_plots(fit: dict[str, Any], train: dict[str, Any]) -> list[dict[str, str]]:
    from mop_bench.report import plots

    out = []
    mass = train.get("persona_responsibility")
    if isinstance(mass, list) and len(mass) > 1 and sum(float(m) for m in mass) > 0:
        taus = fit.get("taus") if isinstance(fit.get("taus"), list) else None
        trained = train.get("personas_trained")
        out.append(
            {
                "uri": plots.persona_mass(
                    [float(m) for m in mass],
                    [float(t) for t in taus] if taus and len(taus) == len(mass) else None,
                    set(trained) if isinstance(trained, list) else None,
                ),
                "caption": "Each persona's share of the training texts' posterior mass at the "
                "end of the fit (bars; the weight its temperature's gradient gets) and its "
                "fitted temperature (diamonds). Grey: a temperature that never moved from its "
                "start. A mixture that uses few personas piles its mass on few bars.",
            }
        )
    passes = _pass_losses(train)
    if passes is not None:
        xs, ys, label = passes
        out.append(
            {
                "uri": plots.loss_curve(xs, ys, "pass over the training blocks"),
                "caption": f"Training loss of the gates and temperatures ({label}; the "
                "entropy penalty included). A new epoch re-selects the candidates it scores, "
                "so the loss can step there.",
            }
        )
    elif len(fit.get("curve") or []) >= MIN_CURVE_POINTS:  # records before `train`
        curve = fit["curve"]
        out.append(
            {
                "uri": plots.loss_curve(
                    [float(p["epoch"]) for p in curve],
                    [float(p["loss"]) for p in curve],
                    "epoch",
                ),
                "caption": "Training loss of the gates and temperatures per epoch.",
            }
        )
    return out


def _pass_losses(train: dict[str, Any]) -> tuple[list[float], list[float], str] | None:
    """Mean loss per pass over the training blocks (every block once per pass)."""
    steps, blocks = train.get("steps"), train.get("blocks")
    if not isinstance(steps, list) or not isinstance(blocks, int) or blocks < 1:
        return None
    n = len(steps) // blocks
    if n < MIN_CURVE_POINTS:
        return None
    means = [sum(map(float, steps[k * blocks : (k + 1) * blocks])) / blocks for k in range(n)]
    label = f"mean over the {blocks} block(s) of each pass, {n} passes"
    return [float(k + 1) for k in range(n)], means, label
